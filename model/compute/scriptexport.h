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
// dict; the cast is LibTorch's module.to(dtype). Planning reads and resolves only (no LibTorch).
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
// back (every weight's name, shape and dtype, and without a cast its bytes). `notes` receives what
// loading the weights noticed. `cancelled` is asked before writing.
ConversionResult executeScriptExport(const ScriptExport &e, const WriteOptions &w, std::vector<std::string> *notes = nullptr,
                                     const std::function<bool()> &cancelled = {});

// Writes TorchScript bytes LibTorch produced for `source`'s weights to `output` safely: into a
// temporary file, read back (as executeScriptExport checks it), then renamed. What
// `ckpt predict --export-torchscript` and executeScriptExport both write with.
ConversionResult writeScriptExport(const std::string &bytes, const Document &source, std::optional<DType> cast,
                                   const std::string &output, const WriteOptions &w);

// conversionToJson's document with "target": "torchscript", the architecture and the notes.
nlohmann::ordered_json scriptExportToJson(const ScriptExport &e, const ConversionResult *result,
                                          const std::vector<std::string> &notes);

} // namespace ckpt
