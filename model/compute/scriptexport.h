#pragma once

#include "architecture.h"
#include "convert.h"
#include "document.h"

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ckpt {

// A TorchScript export planned: the file's architecture (or the one asked for) with its weights,
// as a TorchScript archive Python's torch.jit.load runs — `ckpt convert --to torchscript`, and the
// window's TorchScript target. The weight edits (drop, prefixes, EMA) apply first, as for a state
// dict; the cast is Python's module.to(dtype): the floating parameters and buffers, and whatever
// holds the same tensors (an RNN's _flat_weights). Planning reads and resolves only (no LibTorch).
struct ScriptExport {
    ConversionPlan plan;                       // kept, dropped, not written, cast counts, warnings
    Architecture architecture;
    std::optional<DType> cast;                 // none: the weights as they are
    std::shared_ptr<const Document> source;    // the document with its state dict edited
};

// What to say when `doc` carries a normalisation (input_mean/input_std, a preprocessing entry)
// that an exported TorchScript module does not apply; nothing when it carries none. Convert's
// export and `ckpt predict --export-torchscript` say it in these words.
std::optional<std::string> scriptNormalisationWarning(const Document &doc);

// `edits`: a state-dict conversion's options (target and dtype are set here). Throws FormatError
// when the file cannot be exported (no architecture, edits on a TorchScript source, a TorchScript
// architecture file that cannot be opened, ...).
ScriptExport planScriptExport(const Document &doc, const std::string &output, ConvertOptions edits,
                              const ArchitectureRequest &request);

// Builds the module with LibTorch (the compute module is loaded), writes it safely and reads it
// back (every weight's name, shape and dtype, and without a cast its bytes; with a cast, the
// module runs a sample in the dtype written where it ran one before). `notes` receives what
// loading the weights and the check noticed. `cancelled` is asked before writing.
ConversionResult executeScriptExport(const ScriptExport &e, const WriteOptions &w, std::vector<std::string> *notes = nullptr,
                                     const std::function<bool()> &cancelled = {});

// Writes TorchScript bytes LibTorch produced for `source`'s weights to `output` safely, cast to
// `cast` where one is given (the archive's floating parameters and buffers, as Python's
// module.to(dtype) then torch.jit.save write them; give LibTorch's module uncast): into a
// temporary file, read back (as executeScriptExport checks it; a cast module must run a sample
// in the dtype written where the uncast one runs it), then renamed. `notes` receives what the
// check ran. What `ckpt predict --export-torchscript` and executeScriptExport both write with.
ConversionResult writeScriptExport(const std::string &bytes, const Document &source, std::optional<DType> cast,
                                   const std::string &output, const WriteOptions &w,
                                   std::vector<std::string> *notes = nullptr);

// `bytes`, a TorchScript archive LibTorch wrote, with the storages of its module's floating
// parameters and buffers (each class's declared ones, submodules included) cast to `to` with the
// bits torch gives; every other record as it was. Throws FormatError (`where` names the file)
// for an archive it cannot cast faithfully.
std::string castScriptArchive(const std::string &bytes, DType to, const std::string &where);

// conversionToJson's document with "target": "torchscript", the architecture and the notes.
nlohmann::ordered_json scriptExportToJson(const ScriptExport &e, const ConversionResult *result,
                                          const std::vector<std::string> &notes);

} // namespace ckpt
