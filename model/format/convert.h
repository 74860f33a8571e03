#pragma once

#include "architecture.h"
#include "atomicwrite.h"
#include "document.h"
#include "dtypecast.h"
#include "loramerge.h"

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ckpt {

// What a conversion writes.
enum class ConvertTarget {
    StateDict,    // what torch.save(model.state_dict()) writes
    Checkpoint,   // the seed's comprehensive training checkpoint
    Inference,    // the seed's inference package, with its <name>_metadata.json sidecar
    FullModel,    // a pickled module tree: a full model re-saved, or built from weights + architecture
    Safetensors,
};

// "state-dict", "checkpoint", "inference", "full-model", "safetensors".
std::string convertTargetName(ConvertTarget t);
std::optional<ConvertTarget> convertTargetFromName(const std::string &name);
// "float16"/"fp16"/"half", "bfloat16"/"bf16", "float32"/"fp32"/"float", "float64".
std::optional<DType> castDTypeFromName(const std::string &name);

// A value the user can give for the output.
enum class ConvertField { ModelConfig, ClassNames, Preprocessing, Epoch, TrainLoss, ValLoss, Architecture };
// Whether `target` writes `field` when it is given: a checkpoint writes config, epoch and losses
// at the root and class names and preprocessing under additional_info; an inference package
// config, class names and preprocessing; a full model from weights its architecture; a state dict
// and safetensors none. planConversion refuses a given value the target has no place for.
bool targetWrites(ConvertTarget target, ConvertField field);
// The command-line option of a field ("--class-names").
std::string convertFieldOption(ConvertField field);

// Options of a conversion, with chainable setters (ConvertOptions().target(...).dtype(...)).
struct ConvertOptions {
    ConvertTarget to = ConvertTarget::StateDict;
    std::optional<DType> castTo;               // floating tensors of the model cast to this type
    std::string strip;                         // key prefix removed ("module.")
    std::string add;                           // key prefix added
    bool promoteEma = false;                   // EMA weights become the model's
    std::vector<std::string> drops;            // glob patterns of state-dict keys to leave out
    bool dropTraining = false;                 // optimizer, scheduler, GradScaler, RNG state left out
    bool keepDevices = false;                  // keep saved device tags (default: remapped to cpu)
    bool pruneRemove = false;                  // torch.nn.utils.prune's X_orig * X_mask written as X (prune.remove)
    std::optional<nlohmann::ordered_json> config;      // model_config, keys in the order given
    std::optional<nlohmann::ordered_json> preprocess;  // preprocessing ({mean, std} or anything)
    std::optional<std::vector<std::string>> classes;
    std::optional<std::int64_t> epochValue;
    std::optional<double> trainLoss;
    std::optional<double> valLoss;
    bool sidecar = false;                      // also write <name>_metadata.json (always for inference)
    bool moduleExport = false;                 // a state dict planned for a module written elsewhere
                                               // (TorchScript): what it cannot hold is said so
    bool overwrite = false;                    // replace existing outputs (--force)
    std::vector<std::string> protectedPaths;   // other inputs of the run (never written either)
    ArchitectureRequest architecture;          // full-model from weights: the layers (default: the
                                               // package's spec, else an MLP read from the weights)
    std::function<bool(double)> progress;      // fraction written; returning false cancels
    std::shared_ptr<const LoraAdapterFiles> lora;  // --merge-lora: the adapter merged into the weights
    LoraMergeFunction loraCompute;             // makes each merged weight (the compute module)
    std::uint64_t maxShardSize = 0;            // state-dict/safetensors in shards of at most this many
                                               // tensor bytes, with an index (0: one file)

    ConvertOptions &target(ConvertTarget t) { to = t; return *this; }
    ConvertOptions &dtype(DType t) { castTo = t; return *this; }
    ConvertOptions &stripPrefix(std::string p) { strip = std::move(p); return *this; }
    ConvertOptions &addPrefix(std::string p) { add = std::move(p); return *this; }
    ConvertOptions &ema(bool v) { promoteEma = v; return *this; }
    ConvertOptions &drop(std::string pattern) { drops.push_back(std::move(pattern)); return *this; }
    ConvertOptions &dropTrainingState(bool v) { dropTraining = v; return *this; }
    ConvertOptions &keepDevice(bool v) { keepDevices = v; return *this; }
    ConvertOptions &applyPruning(bool v) { pruneRemove = v; return *this; }
    ConvertOptions &modelConfig(nlohmann::ordered_json j) { config = std::move(j); return *this; }
    ConvertOptions &preprocessing(nlohmann::ordered_json j) { preprocess = std::move(j); return *this; }
    ConvertOptions &classNames(std::vector<std::string> c) { classes = std::move(c); return *this; }
    ConvertOptions &epoch(std::int64_t e) { epochValue = e; return *this; }
    ConvertOptions &losses(std::optional<double> train, std::optional<double> val) { trainLoss = train; valLoss = val; return *this; }
    ConvertOptions &metadataJson(bool v) { sidecar = v; return *this; }
    ConvertOptions &force(bool v) { overwrite = v; return *this; }
    ConvertOptions &forModuleExport(bool v) { moduleExport = v; return *this; }
    ConvertOptions &protect(std::string path) { protectedPaths.push_back(std::move(path)); return *this; }
    ConvertOptions &arch(ArchitectureRequest r) { architecture = std::move(r); return *this; }
    ConvertOptions &onProgress(std::function<bool(double)> p) { progress = std::move(p); return *this; }
    ConvertOptions &mergeLora(std::shared_ptr<const LoraAdapterFiles> a, LoraMergeFunction f) { lora = std::move(a); loraCompute = std::move(f); return *this; }
    ConvertOptions &shardSize(std::uint64_t bytes) { maxShardSize = bytes; return *this; }
};

// Everything a conversion will do, known before a byte is written: the keys kept and dropped,
// the non-tensor values carried over or lost (with why), sizes, cast counts and warnings.
struct ConversionPlan {
    struct Loss {
        std::string entry;
        std::string reason;
    };
    std::string input;
    std::string output;
    std::string sidecarPath;                // empty when no sidecar is written
    ConvertTarget target = ConvertTarget::StateDict;
    std::vector<std::string> kept;          // state-dict keys written, in order (after renames)
    std::vector<Loss> dropped;              // source keys left out
    std::vector<std::string> carried;       // non-tensor entries written ("epoch", "additional_info/args")
    std::vector<Loss> lost;                 // non-tensor entries not written
    std::vector<std::string> detectedPrefixes;  // prefixes every key carries ("module.")
    std::vector<std::string> warnings;
    std::uint64_t bytesBefore = 0;          // tensor bytes of the kept keys as stored
    std::uint64_t bytesAfter = 0;           // after the cast
    std::optional<DType> castTo;
    CastCounts cast;
    std::string loraAdapter;                // --merge-lora: the adapter's weights file
    LoraMergeSummary lora;                  // what the merge did (merged, replaced, renamed keys)

    // What gets written (filled by planConversion, used by executeConversion).
    ValuePtr root;                                   // torch targets
    bool weightsOnly = true;                         // torch targets other than full-model
    std::vector<std::pair<std::string, ValuePtr>> tensors;  // safetensors
    std::map<std::string, std::string> safetensorsMetadata;
    nlohmann::ordered_json sidecar;
    std::map<const StorageRef *, DType> casts;       // storages written as another dtype
    // Full model with --dtype: tensors written on a storage of their own, as Module.to casts each
    // Parameter and buffer apart (see PickleWriterOptions::tensorAs), by the value the tree holds.
    std::unordered_map<const Value *, std::shared_ptr<const TensorRef>> castApart;

    // A sharded output (ConvertOptions::maxShardSize, when the tensors do not fit one shard):
    // `output`'s stem numbered as transformers numbers shards (model-00001-of-00003.safetensors)
    // and `output` + ".index.json"; `output` itself is not written then.
    struct Shard {
        std::string path;
        std::vector<std::string> names;  // its tensors (aliases included), in the state dict's order
        std::uint64_t bytes = 0;         // tensor bytes counted for the packing
    };
    std::vector<Shard> shards;                       // empty: one file, `output`
    std::string indexPath;
    std::uint64_t totalSize = 0;                     // the index's metadata.total_size
    nlohmann::ordered_json shardIndex;               // what indexPath holds
    // Files of a previous output under `output`'s name that this one does not take over: a sharded
    // set's shards (`<stem>-NNNNN-of-NNNNN<ext>` in the folder, as save_pretrained finds them) that
    // the new output does not name, the set's index when one file is written now, `output` itself
    // when shards are. Only with --force (a plan without it refuses them); removed once the new
    // files have their names, the index or single file first. A set with an input among its files
    // is left whole (and not listed).
    std::vector<std::string> superseded;
};

struct ConversionResult {
    std::string output;
    std::string sidecarPath;
    std::uint64_t bytes = 0;          // size of the written file
    std::size_t tensorsVerified = 0;  // storages (torch) or tensors (safetensors) compared after reading back
    bool verified = false;
    std::vector<std::string> shards;  // the shards written (`output` is their index then)
    std::vector<std::string> removed;     // the plan's `superseded` files removed after the write
    std::vector<std::string> notRemoved;  // those that could not be, each with why
};

// --max-shard-size as transformers' max_shard_size reads it: bytes, or a whole number with KB, MB,
// GB, TB (powers of 10) or KiB, MiB, GiB, TiB (powers of 2), any case but a final lowercase 'b'
// (bits to transformers). Throws FormatError for anything else, zero or a size past 2^64.
std::uint64_t parseShardSize(const std::string &text);

// `<stem>_<target><ext>` beside the input (or in `outDir`), never the input's own name (numbered
// `_2`, `_3` then); a suffix the stem already ends with is not repeated.
std::string defaultOutputPath(const std::string &input, const ConvertOptions &options, const std::string &outDir = {});
// The same with a suffix and extension of one's own ("_torchscript", ".pt"): `<stem><suffix>[_fp16]<ext>`.
std::string defaultOutputPathFor(const std::string &input, const std::string &suffix, const std::string &ext,
                                 const std::optional<DType> &castTo, const std::string &outDir = {});

// Write options that refuse every file `doc` was read from (the file, its shards, its sidecar),
// so that no output of a run replaces one of its inputs, --force or not.
WriteOptions protectingInputs(const Document &doc, bool overwrite);

// Reads a file just written to `temporary` (before it is renamed to `output`); a failure is said
// of `output`, the temporary file being gone by the time the user reads it.
Document readWrittenBack(const std::string &temporary, const std::string &output);

// Refuses an output whose name says another format than the one written: a torch file (`what`
// names it, "a state-dict conversion writes a torch zip") named .safetensors, or a safetensors file
// named .pth/.pt/.ckpt, which torch.load would be handed. Throws FormatError naming the file.
void checkOutputExtension(const std::string &output, bool safetensors, const std::string &what);
inline constexpr const char *kScriptExportWrites = "a TorchScript export writes a TorchScript archive (torch.jit.load's format)";

// Plans converting `doc` to `output`. Throws FormatError when the conversion cannot be done
// (no state dict, a full model asked from weights alone, edits that collide, a tensor type the
// target cannot hold).
ConversionPlan planConversion(const Document &doc, const std::string &output, const ConvertOptions &options);

// Writes the plan: a temporary file in the target folder, streamed, read back with the project's
// own reader and compared (every storage's bytes and the structure), then renamed; the sidecar
// likewise. Never writes over an input; over an existing file only with `force`. Cancelling
// through the progress callback or any failure leaves the folder as it was. Throws FormatError.
ConversionResult executeConversion(const Document &doc, const ConversionPlan &plan, const ConvertOptions &options);

// The plan (and the result, when given) as the JSON `ckpt convert --json` prints.
nlohmann::ordered_json conversionToJson(const ConversionPlan &plan, const ConversionResult *result);

} // namespace ckpt
