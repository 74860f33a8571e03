#pragma once

#include "document.h"

#include <optional>
#include <string>
#include <vector>

namespace ckpt {

// One parameter an optimizer keeps state for, with the state-dict tensor it most likely belongs to.
struct OptimizerParameter {
    std::int64_t id = -1;
    std::string key;               // the optimizer's key where it is a name (torch.distributed's layout)
    std::size_t group = 0;         // index into param_groups
    std::string name;              // state-dict name, empty when it cannot be told
    ValuePtr state;                // the per-parameter state dict (step, exp_avg, ...), may be null
    bool shapeAgrees = true;       // every state tensor has the parameter's shape
};

// The optimizer's parameters mapped to state-dict names. Where the optimizer recorded the names
// itself, they are used: torch >= 2.6 lists `param_names` beside each group's `params` when the
// optimizer was built from named_parameters(), and torch.distributed's optimizer state dicts (FSDP,
// get_optimizer_state_dict) key parameters by their fully qualified name instead of an integer.
// Otherwise PyTorch numbers parameters in the order
// they were registered in param_groups; the state dict lists parameters (and buffers) in the same
// registration order, so the k-th id is the k-th parameter. Buffers (BatchNorm running stats) are
// told apart by name in a plain state dict, exactly in a pickled module, and by dtype (an optimizer
// holds only floating and complex tensors); floating buffers no name tells apart are skipped where
// the state's shapes fit no parameter. Every mapped tensor's state is checked by shape.
struct OptimizerMap {
    std::vector<OptimizerParameter> parameters;
    bool certain = false;
    std::string note;  // why the mapping is or is not certain
};

std::optional<OptimizerMap> mapOptimizer(const Document &doc);

} // namespace ckpt
