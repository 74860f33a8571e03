#include "frameworkfiles.h"

#include "inferencemeta.h"
#include "pythonrepr.h"
#include "textcodec.h"
#include "valuetree.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace ckpt {

ValuePtr CallbackState::field(const std::string &name) const
{
    for (const auto &[k, v] : fields)
        if (k == name)
            return v;
    return nullptr;
}

namespace {

// A 0-d tensor as Python's .item() gives it (a float, or an int for an integer tensor); any other
// value as it is.
ValuePtr itemOf(const ValuePtr &v)
{
    if (!v || !v->isTensor() || !v->tensorRef())
        return v;
    const TensorRef &t = *v->tensorRef();
    if (!t.shape.empty() || !t.problem.empty())
        return v;
    const auto numbers = vectorTensorNumbers(t);
    if (numbers.size() != 1)
        return v;
    if (dtypeIsIntegral(t.dtype) && std::abs(numbers[0]) < 9e15)
        return Value::integer(static_cast<std::int64_t>(numbers[0]));
    if (t.dtype == DType::Bool)
        return Value::boolean(numbers[0] != 0);
    return Value::floating(numbers[0]);
}

// The quoted value after "'name': '" in a state key ("EarlyStopping{'monitor': 'val_loss', ...}").
ValuePtr keyField(const std::string &key, const std::string &name)
{
    const std::string start = "'" + name + "': '";
    const auto at = key.find(start);
    if (at == std::string::npos)
        return nullptr;
    const auto from = at + start.size();
    const auto end = key.find('\'', from);
    if (end == std::string::npos)
        return nullptr;
    return Value::string(key.substr(from, end - from));
}

// Which callback a key of `callbacks` is: Lightning >= 1.5 keys by state_key
// ("ModelCheckpoint{...}"), older ones by the class itself.
std::string callbackName(const std::string &key)
{
    for (const char *name : {"ModelCheckpoint", "EarlyStopping"}) {
        const std::string_view n(name);
        if (key.starts_with(n) || key.ends_with("." + std::string(n)) || key.ends_with(n))
            return name;
    }
    return {};
}

std::string_view moduleOf(std::string_view name)
{
    const auto dot = name.rfind('.');
    return dot == std::string_view::npos ? std::string_view() : name.substr(0, dot);
}

// Where LoRA's own tensors begin in a name ("….q_proj.lora_A.weight"), npos when it is not one.
std::size_t loraPart(std::string_view name, bool &isA)
{
    for (const char *part : {".lora_A", ".lora_embedding_A", ".lora_B", ".lora_embedding_B", ".lora_magnitude_vector"}) {
        const std::string_view p(part);
        for (std::size_t at = name.find(p); at != std::string_view::npos; at = name.find(p, at + 1))
            if (at + p.size() == name.size() || name[at + p.size()] == '.') {
                isA = p.ends_with("_A");
                return at;
            }
    }
    return std::string_view::npos;
}

// A module's name without PEFT's wrapper ("base_model.model.") and a whole copy's marker.
std::string peftModuleName(std::string_view module)
{
    for (std::string_view prefix : {"base_model.model.", "base_model."})
        if (module.starts_with(prefix)) {
            module.remove_prefix(prefix.size());
            break;
        }
    if (const auto at = module.find(".modules_to_save"); at != std::string_view::npos)
        module = module.substr(0, at);
    return std::string(module);
}

std::string joined(const std::vector<std::string> &names, std::size_t shown = 8)
{
    std::string text;
    for (std::size_t i = 0; i < names.size() && i < shown; ++i)
        text += (i ? ", " : "") + names[i];
    if (names.size() > shown)
        text += " and " + std::to_string(names.size() - shown) + " more";
    return text;
}

constexpr std::size_t kMaxListed = 64;  // names kept for a sentence: bounded for a hostile file

} // namespace

std::vector<CallbackState> lightningCallbacks(const Document &doc)
{
    std::vector<CallbackState> out;
    const ValuePtr callbacks = doc.root && doc.root->isDict() ? doc.root->get("callbacks") : nullptr;
    if (!callbacks || !callbacks->isDict())
        return out;
    constexpr std::size_t kMaxCallbacks = 8;
    for (const auto &e : callbacks->entries()) {
        if (out.size() >= kMaxCallbacks)
            break;
        if (!e.key || !e.value || !e.value->isDict())
            continue;
        const std::string key = keyText(*e.key);
        const std::string name = callbackName(key);
        if (name.empty())
            continue;
        CallbackState c{name, key, {}};
        const auto add = [&c](const std::string &field, const ValuePtr &v) {
            if (v)
                c.fields.emplace_back(field, itemOf(v));
        };
        if (name == "ModelCheckpoint") {
            add("monitor", e.value->get("monitor"));
            add("mode", keyField(key, "mode"));
            for (const char *k : {"best_model_score", "best_model_path", "current_score", "kth_value",
                                  "kth_best_model_path", "last_model_path"})
                add(k, e.value->get(k));
        } else {
            const ValuePtr monitor = e.value->get("monitor");
            add("monitor", monitor ? monitor : keyField(key, "monitor"));
            add("mode", keyField(key, "mode"));
            for (const char *k : {"wait_count", "patience", "best_score", "stopped_epoch"})
                add(k, e.value->get(k));
        }
        if (!c.fields.empty())
            out.push_back(std::move(c));
    }
    return out;
}

std::string callbackText(const CallbackState &c, std::size_t maxValueChars)
{
    std::string text = c.name + ":";
    bool first = true;
    for (const auto &[k, v] : c.fields) {
        text += (first ? " " : ", ") + k + " " +
                (v ? pythonRepr(*v, ReprLimits{.maxChars = maxValueChars, .maxItems = 8}) : std::string("None"));
        first = false;
    }
    return text;
}

std::optional<LoraAdapter> loraAdapter(const Document &doc)
{
    LoraAdapter a;
    bool anyB = false;
    std::unordered_map<std::string, bool> targetSeen, wholeSeen;
    // The modules LoRA adapts, by name: a tensor of one of them that is not LoRA's is its base weight.
    std::unordered_set<std::string_view> adapted;
    for (const auto &t : doc.stateDict) {
        bool isA = false;
        if (const std::size_t at = loraPart(t.name, isA); at != std::string_view::npos)
            adapted.insert(std::string_view(t.name).substr(0, at));
    }
    if (adapted.empty())
        return std::nullopt;
    for (const auto &t : doc.stateDict) {
        bool isA = false;
        const std::size_t at = loraPart(t.name, isA);
        if (at == std::string_view::npos) {
            std::string_view owner = moduleOf(t.name);
            if (owner.ends_with(".base_layer"))
                owner.remove_suffix(std::string_view(".base_layer").size());
            if (adapted.contains(owner)) {
                a.withBaseWeights = true;
                continue;
            }
            ++a.savedWholeTensors;
            const std::string module = peftModuleName(moduleOf(t.name));
            if (wholeSeen.size() < kMaxListed && wholeSeen.try_emplace(module, true).second)
                a.savedWhole.push_back(module.empty() ? t.name : module);
            continue;
        }
        if (!isA) {
            anyB = true;
            continue;
        }
        const auto &shape = t.ref().shape;
        if (shape.size() < 2)  // lora_A is [r, in_features] (a Conv's [r, in, k, k]); a 1-d tensor is no factor
            continue;
        ++a.modules;
        a.minRank = a.modules == 1 ? shape[0] : std::min(a.minRank, shape[0]);
        a.maxRank = std::max(a.maxRank, shape[0]);
        const std::string_view module = std::string_view(t.name).substr(0, at);
        const auto dot = module.rfind('.');
        const std::string target(dot == std::string_view::npos ? module : module.substr(dot + 1));
        if (targetSeen.size() < kMaxListed && targetSeen.try_emplace(target, true).second)
            a.targets.push_back(target);
    }
    if (!a.modules || !anyB)
        return std::nullopt;
    return a;
}

std::string loraAdapterText(const LoraAdapter &a)
{
    std::string text = std::string(a.withBaseWeights ? "model with a LoRA adapter (PEFT), not merged: rank "
                                                     : "LoRA adapter (PEFT): rank ") +
                       (a.minRank == a.maxRank ? std::to_string(a.minRank)
                                               : std::to_string(a.minRank) + " to " + std::to_string(a.maxRank)) +
                       " on " + std::to_string(a.modules) + (a.modules == 1 ? " module" : " modules") +
                       " (targets: " + joined(a.targets) + ")";
    if (a.withBaseWeights)
        return text + ", beside the base model's weights (PEFT's merge_and_unload folds the updates into them)";
    if (a.savedWholeTensors)
        text += ", with " + std::to_string(a.savedWholeTensors) +
                (a.savedWholeTensors == 1 ? " tensor" : " tensors") + " of modules kept whole (modules_to_save: " +
                joined(a.savedWhole) + ")";
    text += ". An adapter alone is not the model: it holds only these low-rank updates, to be loaded onto its base "
            "model (PeftModel.from_pretrained) or merged into it (merge_and_unload, or here: ckpt convert BASE "
            "--merge-lora ADAPTER)";
    return text;
}

std::vector<KeyPrefixCount> topLevelPrefixes(const std::vector<NamedTensor> &tensors, std::size_t maxPrefixes,
                                             std::size_t &more)
{
    std::vector<KeyPrefixCount> out;
    std::unordered_map<std::string_view, std::size_t> index;
    more = 0;
    for (const auto &t : tensors) {
        const auto dot = t.name.find('.');
        const std::string_view prefix =
            dot == std::string::npos ? std::string_view() : std::string_view(t.name).substr(0, dot + 1);
        if (const auto it = index.find(prefix); it != index.end()) {
            ++out[it->second].count;
        } else if (out.size() < maxPrefixes) {
            index.emplace(prefix, out.size());
            out.push_back({std::string(prefix), 1});
        } else {
            ++more;
        }
    }
    return out;
}

std::string lightningPrefixText(const Document &doc)
{
    std::size_t more = 0;
    const auto prefixes = topLevelPrefixes(doc.stateDict, 8, more);
    if (prefixes.empty())
        return {};
    if (prefixes.size() == 1 && !more && !prefixes[0].prefix.empty()) {
        const std::string &p = prefixes[0].prefix;
        return "keys carry Lightning's '" + p + "' prefix: the LightningModule keeps every weight under its attribute '" +
               p.substr(0, p.size() - 1) + "' (ckpt convert --strip-prefix " + p + " removes it)";
    }
    std::string text = "keys start with the LightningModule's attributes ";
    bool first = true;
    for (const auto &p : prefixes) {
        text += (first ? "" : ", ") +
                (p.prefix.empty() ? std::string("names without a dot") : "'" + p.prefix + "'") + " (" +
                std::to_string(p.count) + (p.count == 1 ? " key)" : " keys)");
        first = false;
    }
    if (more)
        text += " and others (" + std::to_string(more) + (more == 1 ? " key)" : " keys)");
    text += ": no one prefix covers every key, so there is none to strip";
    return text;
}

} // namespace ckpt
