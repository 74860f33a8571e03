#include "metadata.h"

#include "frameworkfiles.h"
#include "jsonexport.h"
#include "picklemachine.h"
#include "safetensorswriter.h"
#include "valuetree.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <string_view>

namespace ckpt {

namespace {

bool startsWith(const KeyPath &path, const KeyPath &prefix)
{
    return !prefix.empty() && path.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
}

// A list of schedulers (Lightning keeps one per configured scheduler) is listed item by item, at
// most this many of one list: a pickle can list one scheduler a million times through its memo, and
// each item's key repeats the list's key.
constexpr std::size_t kMaxListedSchedulers = 64;

// A dict with all of `keys`; for a list (Lightning keeps a list of schedulers), its first item.
bool dictHas(ValuePtr v, std::initializer_list<const char *> keys)
{
    if (v && v->isSequence() && !v->items().empty())
        v = v->items()[0];  // one level only: a list may contain itself
    return v && v->isDict() && std::all_of(keys.begin(), keys.end(), [&v](const char *k) { return v->get(k) != nullptr; });
}

struct FieldSynonyms {
    const char *label;
    std::array<const char *, 8> keys;
};

// Labels in display order, each with the keys the field's libraries and scripts use for it.
constexpr FieldSynonyms kFields[] = {
    {"Epoch", {"epoch", "epochs", "current_epoch"}},
    // DeepSpeed saves its engine's count of optimizer steps as global_steps.
    {"Step", {"global_step", "global_steps", "step", "iteration", "iter", "updates"}},
    {"Training loss", {"train_loss", "loss", "training_loss"}},
    {"Validation loss", {"val_loss", "valid_loss", "validation_loss"}},
    {"Best validation loss", {"best_val_loss", "best_loss"}},
    // Only a key that says "best" is the best; val_acc is the last epoch's, whatever it was.
    {"Accuracy", {"val_acc", "val_accuracy", "valid_acc", "accuracy", "acc", "test_acc"}},
    {"Best metric", {"best_acc1", "best_acc", "best_prec1", "best_fitness", "best_metric", "best_score", "best_accuracy"}},
    {"Timestamp", {"timestamp", "saved_at", "date", "datetime", "created_at"}},
    {"PyTorch version", {"pytorch_version", "torch_version"}},
    {"Lightning version", {"pytorch-lightning_version", "lightning_version"}},
    {"Model config", {"model_config", "config", "cfg", "model_args"}},
    {"Hyperparameters", {"hyper_parameters", "hparams", "hyperparameters"}},
    {"Arguments", {"args", "opt", "opts"}},
    {"Class names", {"class_names", "classes", "labels", "idx_to_class", "class_to_idx", "names"}},
    {"Preprocessing", {"preprocessing", "transforms", "normalization"}},
    {"Input mean", {"input_mean", "mean"}},
    {"Input std", {"input_std", "std"}},
};

bool oneOf(const std::string &key, std::initializer_list<std::string_view> names)
{
    return std::find(names.begin(), names.end(), key) != names.end();
}

// JSON text as a value; null when it is not JSON (or nests past the limit).
ValuePtr parsedJson(const std::string &text)
{
    // Linear-time parse; past the nesting limit jsonToValue would refuse it anyway.
    const auto j = parseOrderedJson(text, PickleLimits::kMaxDepth + 1);
    if (j.is_discarded())
        return nullptr;
    try {
        return jsonToValue(j);
    } catch (const std::exception &) {
        return nullptr;
    }
}

} // namespace

bool isWriterBookkeeping(std::string_view key)
{
    return key == kSafetensorsJsonKeys || key == kSafetensorsKeyOrder || key == kSafetensorsStateDictMetadata;
}

std::vector<std::pair<std::string, ValuePtr>> formatMetadataEntries(const Document &doc)
{
    std::vector<std::pair<std::string, ValuePtr>> out;
    if (!doc.formatMetadata || !doc.formatMetadata->isDict())
        return out;
    const bool safetensors = doc.format == ContainerFormat::Safetensors;
    for (const auto &e : doc.formatMetadata->entries()) {
        const std::string k = e.key ? keyText(*e.key) : std::string();
        // This tool's bookkeeping and tied names are no fact about the model.
        if (isWriterBookkeeping(k) || k.starts_with("alias:") || k == (safetensors ? "format" : "total_size"))
            continue;
        const auto decoded = formatMetadataValue(doc, k);
        out.emplace_back(k, decoded ? decoded : e.value);
    }
    return out;
}

ValuePtr formatMetadataValue(const Document &doc, const std::string &key)
{
    if (!doc.formatMetadata || !doc.formatMetadata->isDict() || isWriterBookkeeping(key) || key.starts_with("alias:"))
        return nullptr;
    const auto v = doc.formatMetadata->get(key);
    if (!v || !v->isString())
        return v;  // a shard index's metadata is JSON already
    const std::string &text = v->text();
    if (const auto marker = doc.formatMetadata->get(std::string(kSafetensorsJsonKeys)); marker && marker->isString()) {
        // This tool's file: the marker says exactly which values are JSON; the others are text.
        const auto keys = parsedJson(marker->text());
        const bool marked = keys && keys->isSequence() &&
                            std::any_of(keys->items().begin(), keys->items().end(),
                                        [&key](const ValuePtr &k) { return k && k->isString() && k->text() == key; });
        const auto decoded = marked ? parsedJson(text) : nullptr;
        return decoded ? decoded : v;
    }
    // Other writers' strings: numbers and structures where the key says what it holds.
    ValuePtr decoded;
    if (oneOf(key, {"epoch", "epochs", "current_epoch", "global_step", "global_steps", "step", "iteration"})) {
        if ((decoded = parsedJson(text)) && !decoded->isInt())
            decoded = nullptr;
    } else if (oneOf(key, {"train_loss", "val_loss", "loss", "best_val_loss", "best_loss", "valid_loss"})) {
        if ((decoded = parsedJson(text)) && decoded->kind() != Value::Kind::Float && !decoded->isInt())
            decoded = nullptr;
    } else if (oneOf(key, {"model_config", "config", "preprocessing", "normalization", "normalize", "class_names",
                           "classes", "labels", "names", "idx_to_class", "class_to_idx", "input_mean", "input_std",
                           "feature_names", "features", "input_names", "columns"})) {
        if ((decoded = parsedJson(text)) && !decoded->isDict() && !decoded->isSequence())
            decoded = nullptr;
    }
    return decoded ? decoded : v;
}

std::vector<MetadataEntry> metadataEntries(const Document &doc)
{
    std::vector<MetadataEntry> out;
    if (!doc.root)
        return out;
    // The file is the optimizer (torch.save(optimizer.state_dict()) alone, or a pickled optimizer):
    // its state and param groups are the optimizer's, shown as such, not again as metadata.
    if (doc.optimizer && doc.optimizerPath.empty())
        return out;
    // A pickled object at the root that is not a model (Hugging Face's training_args.bin, a
    // TrainingArguments): its attributes are the metadata, as the object's __dict__ holds them.
    const bool objectRoot = doc.root->kind() == Value::Kind::Object && !isModule(*doc.root) &&
                            !isScriptModule(*doc.root) && !(doc.hasStateDict && doc.stateDictPath.empty());
    if (!doc.root->isDict() && !objectRoot)
        return out;
    std::size_t attributes = 0, more = 0;
    // Labels deferred: a state dict at the root has 20,000 keys this skips without their text.
    for (const auto &c : childrenOf(*doc.root, ChildLabels::Deferred)) {
        if (c.role != (objectRoot ? ChildRole::Attribute : ChildRole::Key))
            continue;
        if (objectRoot && attributes++ >= kMaxObjectAttributes) {
            ++more;  // an object of a million attributes: the first ones, and how many more
            continue;
        }
        if (doc.stateDictPath.empty() && doc.hasStateDict && c.value && c.value->isTensor())
            continue;  // the root is the state dict: its tensors are listed there (checked first: cheap)
        const std::string label = childLabel(c);
        const KeyPath p{label};
        if (startsWith(p, doc.stateDictPath) || startsWith(p, doc.optimizerPath))
            continue;
        MetadataEntry e{label, c.value, MetadataEntry::Role::Plain};
        if (std::any_of(doc.otherWeightSets.begin(), doc.otherWeightSets.end(),
                        [&p](const KeyPath &w) { return startsWith(p, w); }))
            e.role = MetadataEntry::Role::OtherWeights;
        else if ((doc.stateDictPath.size() > 1 && doc.stateDictPath[0] == label) ||
                 (doc.optimizerPath.size() > 1 && doc.optimizerPath[0] == label))
            e.role = MetadataEntry::Role::HoldsWeights;
        out.push_back(std::move(e));
    }
    if (more)
        out.push_back({"…", Value::string(std::to_string(more) + " more attributes of the " + className(*doc.root) +
                                          " object, not listed here (ckpt show lists them all)"),
                       MetadataEntry::Role::Plain});
    return out;
}

std::vector<KnownField> knownFields(const Document &doc)
{
    std::vector<KnownField> out;
    const auto meta = metadataEntries(doc);
    for (const auto &field : kFields) {
        bool found = false;
        for (const char *key : field.keys) {
            if (!key || found)
                continue;
            for (const auto &e : meta)
                if (e.role == MetadataEntry::Role::Plain && e.key == key && e.value && !e.value->isNone()) {
                    out.push_back({field.label, key, e.value, false});
                    found = true;
                    break;
                }
        }
        for (const char *key : field.keys)
            if (key && !found)
                if (auto v = formatMetadataValue(doc, key); v && !v->isNone()) {
                    out.push_back({field.label, key, v, false, true});
                    found = true;
                }
        if (found || !doc.sidecar || !doc.sidecar->isDict())
            continue;
        for (const char *key : field.keys)
            if (key && !found)
                if (auto v = doc.sidecar->get(key); v && !v->isNone()) {
                    out.push_back({field.label, key, v, true});
                    found = true;
                }
    }
    // Lightning keeps what a run's ModelCheckpoint tracked (the metric it monitors, the best score
    // and the file that holds it) and EarlyStopping's patience in its callbacks' states: the first
    // of each kind that says something (a ModelCheckpoint without a monitor only saves the last).
    const auto callbacks = lightningCallbacks(doc);
    const auto firstOf = [&callbacks](const std::string &name, const std::string &needed) -> const CallbackState * {
        const CallbackState *first = nullptr;
        for (const auto &c : callbacks)
            if (c.name == name) {
                if (const auto v = c.field(needed); v && !v->isNone())
                    return &c;
                if (!first)
                    first = &c;
            }
        return first;
    };
    const auto add = [&out](const CallbackState *c, const char *label, const std::string &field) {
        if (const auto v = c ? c->field(field) : nullptr; v && !v->isNone())
            out.push_back({label, "callbacks/" + c->key + "/" + field, v, false});
    };
    const CallbackState *checkpoint = firstOf("ModelCheckpoint", "monitor");
    add(checkpoint, "Monitored metric", "monitor");
    add(checkpoint, "Best score", "best_model_score");
    add(checkpoint, "Best checkpoint", "best_model_path");
    const CallbackState *stopping = firstOf("EarlyStopping", "best_score");
    add(stopping, "Early stopping best score", "best_score");
    add(stopping, "Early stopping wait count", "wait_count");
    return out;
}

std::string trainingStateName(TrainingState::Kind kind)
{
    switch (kind) {
    case TrainingState::Kind::LrScheduler: return "LR scheduler";
    case TrainingState::Kind::GradScaler: return "GradScaler";
    case TrainingState::Kind::Rng: return "RNG";
    }
    return {};
}

std::vector<TrainingState> trainingStates(const Document &doc)
{
    std::vector<TrainingState> out;
    for (const auto &e : metadataEntries(doc)) {
        if (e.role != MetadataEntry::Role::Plain || !e.value)
            continue;
        if (e.key.find("rng") != std::string::npos) {
            out.push_back({TrainingState::Kind::Rng, e.key, e.value});
        } else if (dictHas(e.value, {"scale", "growth_factor"})) {
            out.push_back({TrainingState::Kind::GradScaler, e.key, e.value});
        } else if (dictHas(e.value, {"last_epoch", "base_lrs"})) {
            if (e.value->isSequence()) {  // Lightning: one per configured scheduler
                for (std::size_t i = 0; i < e.value->items().size() && i < kMaxListedSchedulers; ++i)
                    out.push_back({TrainingState::Kind::LrScheduler, e.key + "/" + std::to_string(i), e.value->items()[i]});
            } else {
                out.push_back({TrainingState::Kind::LrScheduler, e.key, e.value});
            }
        }
    }
    return out;
}

} // namespace ckpt
