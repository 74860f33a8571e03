#pragma once

#include "document.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckpt {

// A top-level entry of a checkpoint that is not weights: epoch, losses, config, arguments, ...
struct MetadataEntry {
    enum class Role {
        Plain,           // a value to show as it is
        HoldsWeights,    // a container on the way to the state dict or optimizer state
        OtherWeights,    // a weight set besides the model's (EMA, a second network)
    };
    std::string key;
    ValuePtr value;
    Role role = Role::Plain;
};

// Every root entry of a dict-shaped checkpoint except the state dict, the optimizer state and,
// when the root is the state dict, its tensors. One definition serves the JSON export and the views.
// A file whose root is a pickled object other than a model (training_args.bin) has its attributes
// as entries: the first kMaxObjectAttributes, then one entry "…" that says how many more there are.
inline constexpr std::size_t kMaxObjectAttributes = 1000;
std::vector<MetadataEntry> metadataEntries(const Document &doc);

// The key this tool's safetensors writer adds to __metadata__: a JSON list of the keys whose values
// it wrote as JSON text (epoch, losses, config, ...); every other value is a string as it was.
inline constexpr std::string_view kSafetensorsJsonKeys = "checkpoint_studio.json_keys";

// Whether a __metadata__ key is this tool's writer's own bookkeeping (which values are JSON, the
// state dict's order: kSafetensorsJsonKeys, kSafetensorsKeyOrder), no fact about the model.
bool isWriterBookkeeping(std::string_view key);

// A safetensors file's (or shard index's) __metadata__ entry as the value it was written from:
// JSON text decoded where this tool's writer marked it so; in other writers' files, where the key
// names a count (epoch, step), a loss or a structure (config, class names, mean/std) and the text
// is one. Otherwise the string itself. Null when absent; the marker and aliases are not values.
ValuePtr formatMetadataValue(const Document &doc, const std::string &key);

// The container's own metadata that describes the model, decoded (formatMetadataValue), in the
// file's order: everything but the marker, aliases and the writers' bookkeeping (safetensors'
// "format" tag, an index's "total_size" of its shards), which describe the source's layout.
std::vector<std::pair<std::string, ValuePtr>> formatMetadataEntries(const Document &doc);

// A value a researcher looks for first ("Epoch", "Validation loss", "Class names"), with the key
// it was found under and where: the file itself or its metadata JSON sidecar.
struct KnownField {
    std::string label;
    std::string key;
    ValuePtr value;
    bool fromSidecar = false;
    bool fromFormatMetadata = false;  // a safetensors file's __metadata__ (decoded)
};

// The known fields of the file, in a fixed order of labels; each label once (the file's value,
// else its decoded __metadata__ entry, else the sidecar's; among a label's synonyms the first present).
std::vector<KnownField> knownFields(const Document &doc);

// Training state kept beside the weights and the optimizer: learning-rate schedulers, AMP
// GradScalers, RNG states; found under any top-level key by their content.
struct TrainingState {
    enum class Kind { LrScheduler, GradScaler, Rng };
    Kind kind = Kind::LrScheduler;
    std::string key;  // "lr_scheduler", "lr_schedulers/0"
    ValuePtr value;
};
std::string trainingStateName(TrainingState::Kind kind);  // "LR scheduler", "GradScaler", "RNG"
std::vector<TrainingState> trainingStates(const Document &doc);

} // namespace ckpt
