#pragma once

#include "architecture.h"
#include "value.h"

namespace ckpt {

// The module tree torch.save(model) pickles for `arch` built of standard torch.nn classes, so that
// torch.load(weights_only=False) gives a working nn.Module without any user code: each layer an
// instance of its class (class, NEWOBJ, BUILD with the __dict__ PyTorch 1.13 gives it: the hook
// dictionaries, _parameters, _buffers, _modules, training, and its constructor's attributes),
// parameters as nn.Parameter and buffers as plain tensors over the weights' own storages (a tensor
// used twice stays one object), absent optional weights as None, layers with dotted names nested
// in Sequentials, the whole in eval mode. Throws FormatError for an architecture that cannot be
// written this way (TorchScript, a module tree, names that would reorder the layers).
ValuePtr moduleTreeValue(const Architecture &arch);

// Every tensor torch's Module.to(dtype) converts in the pickled module tree at `module`: each
// module's _parameters and _buffers, the non-persistent buffers that state_dict() leaves out
// included, named as named_parameters() and named_buffers() name them (a tensor or module reached
// twice is listed once, under the first name). Casting their floating storages is Module.to.
std::vector<NamedTensor> moduleToTensors(const Value &module);

// The Python class (module path) torch.nn gives a supported layer type:
// "Linear" -> "torch.nn.modules.linear.Linear"; empty for an unknown type.
std::string torchModuleClass(const std::string &type);

} // namespace ckpt
