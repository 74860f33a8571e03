#include "loramerge.h"

#include "error.h"
#include "keyalign.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

namespace ckpt {

namespace {

namespace fs = std::filesystem;

constexpr std::uintmax_t kMaxConfigBytes = 16u << 20;  // an adapter_config.json is a few KiB

std::string joinDots(const std::vector<std::string> &parts, std::size_t from, std::size_t to)
{
    std::string s;
    for (std::size_t i = from; i < to; ++i)
        s += (i > from ? "." : "") + parts[i];
    return s;
}

// The key's module path as PEFT names it inside the model: without the PeftModel's
// "base_model.model." (get_peft_model_state_dict keeps it; set_peft_model_state_dict expects it).
std::vector<std::string> withoutPeftPrefix(std::vector<std::string> parts)
{
    if (parts.size() > 2 && parts[0] == "base_model" && parts[1] == "model")
        parts.erase(parts.begin(), parts.begin() + 2);
    return parts;
}

bool isFloatingDense(const TensorRef &r)
{
    return dtypeIsFloating(r.dtype) && !r.quantization && r.layout == TensorRef::Layout::Strided && r.problem.empty();
}

// Bounds on what std::regex is given: libstdc++ compiles a pattern by recursive descent (one frame
// per nesting level) and its default executor recurses per character matched, so a crafted key or a
// very long module name would overflow the stack. PEFT's keys are module names or short patterns.
constexpr std::size_t kMaxPatternKey = 256;
constexpr int kMaxPatternNesting = 16;
constexpr std::size_t kMaxPatternModuleName = 1024;

// A name or key for a message: its start and its length when it is long.
std::string shortened(const std::string &s)
{
    constexpr std::size_t keep = 40;
    if (s.size() <= keep)
        return s;
    return s.substr(0, keep) + "... (" + std::to_string(s.size()) + " characters)";
}

// One rank_pattern / alpha_pattern key, compiled once.
struct PatternKey {
    std::string key;
    std::regex re;
    const nlohmann::ordered_json *value = nullptr;
};

std::vector<PatternKey> compilePattern(const nlohmann::ordered_json &pattern, const std::string &what,
                                       const std::string &configPath)
{
    std::vector<PatternKey> out;
    if (!pattern.is_object())
        return out;
    for (const auto &[key, value] : pattern.items()) {
        const std::string said = configPath + ": " + what + " key '" + shortened(key) + "'";
        if (key.size() > kMaxPatternKey)
            throw FormatError(said + " is longer than " + std::to_string(kMaxPatternKey) +
                              " characters: not a module name or pattern this tool matches");
        int depth = 0, deepest = 0;
        for (std::size_t i = 0; i < key.size(); ++i) {
            if (key[i] == '\\')
                ++i;
            else if (key[i] == '(')
                deepest = std::max(deepest, ++depth);
            else if (key[i] == ')')
                --depth;
        }
        if (deepest > kMaxPatternNesting)
            throw FormatError(said + " nests parentheses " + std::to_string(deepest) + " deep (more than " +
                              std::to_string(kMaxPatternNesting) + "): not a pattern this tool matches");
        auto flags = std::regex::ECMAScript;
#ifdef __GLIBCXX__
        // libstdc++'s breadth-first executor: time linear in the name, no recursion per character.
        flags |= std::regex_constants::__polynomial;
#endif
        try {
            out.push_back({key, std::regex("(.*\\.)?(" + key + ")", flags), &value});
        } catch (const std::regex_error &) {
            throw FormatError(said + " is not a regular expression this tool reads");
        }
    }
    return out;
}

// PEFT's get_pattern_key: the first key of rank_pattern / alpha_pattern that matches the module's
// name as re.match(rf"(.*\.)?({key})$", name) does, its value; none when no key matches.
std::optional<double> patternValue(const std::vector<PatternKey> &pattern, const std::string &module,
                                   const std::string &what, std::string &matched, const std::string &configPath)
{
    if (pattern.empty())
        return std::nullopt;
    if (module.size() > kMaxPatternModuleName)
        throw FormatError(configPath + ": module '" + shortened(module) + "' is too long to match against " + what +
                          " (more than " + std::to_string(kMaxPatternModuleName) + " characters)");
    for (const auto &p : pattern) {
        if (!std::regex_match(module, p.re))
            continue;
        if (!p.value->is_number())
            throw FormatError(configPath + ": " + what + "['" + shortened(p.key) + "'] is not a number");
        matched = p.key;
        return p.value->get<double>();
    }
    return std::nullopt;
}

double numberField(const nlohmann::ordered_json &config, const char *key, double fallback, const std::string &configPath)
{
    const auto it = config.find(key);
    if (it == config.end() || it->is_null())
        return fallback;
    if (!it->is_number())
        throw FormatError(configPath + ": '" + key + "' is not a number");
    return it->get<double>();
}

bool boolField(const nlohmann::ordered_json &config, const char *key, const std::string &configPath)
{
    const auto it = config.find(key);
    if (it == config.end() || it->is_null())
        return false;
    if (!it->is_boolean())
        throw FormatError(configPath + ": '" + key + "' is not true or false");
    return it->get<bool>();
}

std::vector<std::int64_t> contiguousStrides(const std::vector<std::int64_t> &shape)
{
    std::vector<std::int64_t> strides(shape.size(), 1);
    for (std::size_t d = shape.size(); d-- > 1;)
        strides[d - 1] = strides[d] * std::max<std::int64_t>(1, shape[d]);
    return strides;
}

// A LoRA module's factors found in the adapter.
struct Factors {
    ValuePtr a, b;
    std::string aKey, bKey;
    bool embedding = false;
};

const char *kindName(LoraMergeStep::Kind k)
{
    switch (k) {
    case LoraMergeStep::Kind::Linear: return "linear";
    case LoraMergeStep::Kind::Embedding: return "embedding";
    case LoraMergeStep::Kind::Conv2d: return "conv2d";
    case LoraMergeStep::Kind::Replace: return "replaced";
    }
    return "";
}

} // namespace

std::shared_ptr<const LoraAdapterFiles> readLoraAdapter(const std::string &path)
{
    auto out = std::make_shared<LoraAdapterFiles>();
    std::error_code ec;
    fs::path dir;
    if (fs::is_directory(path, ec)) {
        dir = path;
        for (const char *name : {"adapter_model.safetensors", "adapter_model.bin"})
            if (fs::is_regular_file(dir / name, ec)) {
                out->weightsPath = (dir / name).string();
                break;
            }
        if (out->weightsPath.empty())
            throw FormatError(path + ": no adapter_model.safetensors or adapter_model.bin in this folder: it is not "
                                     "a PEFT adapter saved with save_pretrained");
    } else if (fs::exists(path, ec)) {
        out->weightsPath = path;
        dir = fs::path(path).parent_path();
        if (dir.empty())
            dir = ".";
    } else {
        throw FormatError(path + ": no such file or folder");
    }
    out->configPath = (dir / "adapter_config.json").string();
    if (!fs::is_regular_file(out->configPath, ec))
        throw FormatError(out->weightsPath + ": no adapter_config.json beside it: the merge needs the adapter's r, "
                                             "lora_alpha and layout from it (give the folder save_pretrained wrote)");
    if (fs::file_size(out->configPath, ec) > kMaxConfigBytes)
        throw FormatError(out->configPath + ": too large for an adapter configuration");
    std::ifstream in(out->configPath, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    try {
        out->config = nlohmann::ordered_json::parse(text.str());
    } catch (const nlohmann::json::exception &e) {
        throw FormatError(out->configPath + ": not valid JSON: " + e.what());
    }
    if (!out->config.is_object())
        throw FormatError(out->configPath + ": not a JSON object");
    if (const auto t = out->config.find("peft_type"); t != out->config.end() && t->is_string() && *t != "LORA")
        throw FormatError(out->configPath + ": a " + t->get<std::string>() +
                          " adapter (peft_type): only LoRA adapters are merged");
    if (boolField(out->config, "use_dora", out->configPath))
        throw FormatError(out->configPath + ": a DoRA adapter (use_dora: true): its merge rescales each weight by "
                                            "lora_magnitude_vector, which is not done here; merge it with PEFT's "
                                            "merge_and_unload");
    out->doc = std::make_shared<const Document>(readDocument(out->weightsPath));
    return out;
}

LoraMergeSummary mergeLoraAdapter(std::vector<std::pair<std::string, ValuePtr>> &tensors,
                                  const LoraAdapterFiles &adapter, const LoraMergeFunction &compute,
                                  const std::string &basePrefix)
{
    const std::string &file = adapter.weightsPath;
    const std::string &cfgPath = adapter.configPath;
    const auto &cfg = adapter.config;
    const double r = numberField(cfg, "r", 8, cfgPath);
    const double alpha = numberField(cfg, "lora_alpha", 8, cfgPath);
    const bool fanInFanOut = boolField(cfg, "fan_in_fan_out", cfgPath);
    const bool rslora = boolField(cfg, "use_rslora", cfgPath);
    const nlohmann::ordered_json noPattern = nlohmann::ordered_json::object();
    const auto rankPattern =
        compilePattern(cfg.contains("rank_pattern") ? cfg["rank_pattern"] : noPattern, "rank_pattern", cfgPath);
    const auto alphaPattern =
        compilePattern(cfg.contains("alpha_pattern") ? cfg["alpha_pattern"] : noPattern, "alpha_pattern", cfgPath);

    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < tensors.size(); ++i)
        index.emplace(tensors[i].first, i);
    // A base that holds LoRA factors itself is a PeftModel's whole state dict, its own adapter unmerged.
    for (const auto &[name, v] : tensors)
        for (const auto &part : splitDots(name))
            if (part == "lora_A" || part == "lora_B" || part == "lora_embedding_A" || part == "lora_embedding_B")
                throw FormatError("the base model holds LoRA factors itself ('" + name +
                                  "'): it is a model with an adapter not merged; give the base model's own weights");

    const auto &source = adapter.doc->hasStateDict ? adapter.doc->stateDict : adapter.doc->tensors;
    if (source.empty())
        throw FormatError(file + ": no tensors: not a LoRA adapter's weights");

    std::map<std::string, Factors> modules;  // module path -> factors
    std::vector<std::string> moduleOrder;
    std::vector<std::pair<std::string, NamedTensor>> wholeTensors;  // base name wanted -> adapter tensor
    std::string adapterName;  // the adapter name segment when the keys keep one ("default")
    for (const auto &t : source) {
        auto parts = withoutPeftPrefix(splitDots(t.name));
        std::size_t at = parts.size();
        for (std::size_t i = 0; i < parts.size() && at == parts.size(); ++i)
            if (parts[i] == "lora_A" || parts[i] == "lora_B" || parts[i] == "lora_embedding_A" ||
                parts[i] == "lora_embedding_B" || parts[i] == "lora_magnitude_vector" || parts[i] == "lora_E" ||
                parts[i] == "lora_ranknum")
                at = i;
        if (at == parts.size()) {
            // A bias the adapter trained (bias "all" / "lora_only") or a modules_to_save copy: it
            // replaces the base's tensor. PEFT saves both without the adapter name and without the
            // wrapper's "modules_to_save." (older versions kept it) or a LoRA layer's ".base_layer.".
            std::vector<std::string> kept;
            for (std::size_t i = 0; i < parts.size(); ++i) {
                if (parts[i] == "original_module")
                    throw FormatError(file + ": '" + t.name + "' is a modules_to_save wrapper's original module, "
                                                              "not what the adapter trained: not an adapter as PEFT saves it");
                if (parts[i] == "modules_to_save") {
                    if (i + 2 < parts.size())  // "modules_to_save.default.weight": the adapter name goes too
                        ++i;
                    continue;
                }
                if (parts[i] == "base_layer")
                    continue;
                kept.push_back(parts[i]);
            }
            wholeTensors.push_back({joinDots(kept, 0, kept.size()), t});
            continue;
        }
        const std::string &what = parts[at];
        if (what == "lora_magnitude_vector")
            throw FormatError(file + ": '" + t.name + "' is DoRA's magnitude vector: a DoRA adapter's merge rescales "
                                                      "each weight, which is not done here; merge it with PEFT's "
                                                      "merge_and_unload");
        if (what == "lora_E" || what == "lora_ranknum")
            throw FormatError(file + ": '" + t.name + "' is an AdaLoRA tensor: only plain LoRA adapters are merged");
        const bool embedding = what == "lora_embedding_A" || what == "lora_embedding_B";
        std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1, parts.end());
        // lora_A.weight / lora_A.<name>.weight; lora_embedding_A / lora_embedding_A.<name>.
        if (!embedding) {
            if (rest.empty() || rest.back() != "weight")
                throw FormatError(file + ": '" + t.name + "': a " + what + " tensor other than its weight (" +
                                  (rest.empty() ? std::string("none") : rest.back()) +
                                  "; lora_bias adapters are not merged here)");
            rest.pop_back();
        }
        if (rest.size() > 1)
            throw FormatError(file + ": '" + t.name + "': not a LoRA key as PEFT saves them (<module>." + what +
                              (embedding ? "" : ".weight") + ")");
        if (rest.size() == 1) {
            if (!adapterName.empty() && adapterName != rest[0])
                throw FormatError(file + ": holds two adapters ('" + adapterName + "' and '" + rest[0] +
                                  "'): save the one to merge alone");
            adapterName = rest[0];
        }
        const std::string module = joinDots(parts, 0, at);
        auto [it, fresh] = modules.try_emplace(module);
        if (fresh)
            moduleOrder.push_back(module);
        Factors &f = it->second;
        if (!fresh && f.embedding != embedding)
            throw FormatError(file + ": module '" + module + "' has both lora_A/B and lora_embedding_A/B factors");
        f.embedding = embedding;
        const bool isA = what.back() == 'A';
        (isA ? f.a : f.b) = t.value;
        (isA ? f.aKey : f.bKey) = t.name;
    }

    // Where a module's weight is in the base: as the plain model names it, or under a LoRA layer's
    // base_layer, with or without the PeftModel's "base_model.model." prefix.
    const auto findBase = [&](const std::string &name) -> std::optional<std::size_t> {
        const auto dot = name.rfind('.');
        const std::string module = dot == std::string::npos ? "" : name.substr(0, dot);
        const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
        const std::string layered = (module.empty() ? "" : module + ".") + "base_layer." + leaf;
        std::vector<std::string> candidates{name, layered, "base_model.model." + name, "base_model.model." + layered};
        if (!basePrefix.empty())  // the bare model's names, as they are once --strip-prefix removes it
            candidates.insert(candidates.begin(), {basePrefix + name, basePrefix + layered});
        for (const auto &candidate : candidates)
            if (auto it = index.find(candidate); it != index.end())
                return it->second;
        return std::nullopt;
    };
    // For a name the base lacks: a key that is it under a leading prefix (a DDP "module."), said as
    // the --strip-prefix that would fit.
    const auto prefixHint = [&](const std::string &name) -> std::string {
        const std::string tail = "." + name;
        for (const auto &[key, i] : index)
            if (key.size() > tail.size() && key.ends_with(tail)) {
                const std::string prefix = key.substr(0, key.size() - name.size());
                return "; the base has '" + key + "': give --strip-prefix " + prefix;
            }
        return "";
    };

    struct Planned {
        std::size_t at;
        LoraMergeStep step;
    };
    std::vector<Planned> planned;
    std::set<std::size_t> targeted;
    for (const auto &module : moduleOrder) {
        const Factors &f = modules[module];
        const char *aName = f.embedding ? "lora_embedding_A" : "lora_A";
        const char *bName = f.embedding ? "lora_embedding_B" : "lora_B";
        if (!f.a || !f.b)
            throw FormatError(file + ": module '" + module + "' has " + (f.a ? aName : bName) + " (" +
                              (f.a ? f.aKey : f.bKey) + ") but no " + (f.a ? bName : aName));
        const std::string weightName = module + ".weight";
        const auto at = findBase(weightName);
        if (!at)
            throw FormatError(file + ": '" + f.aKey + "' adapts '" + weightName +
                              "', which the base model does not have (nor under base_layer.)" + prefixHint(weightName) +
                              ": is this the adapter of this base model?");
        if (!targeted.insert(*at).second)
            throw FormatError(file + ": two modules adapt '" + tensors[*at].first + "'");
        const auto &base = tensors[*at].second->tensorRef();
        const auto &a = f.a->tensorRef();
        const auto &b = f.b->tensorRef();
        const std::string baseName = tensors[*at].first;
        for (const auto &[key, ref] : {std::pair{baseName, base}, std::pair{f.aKey, a}, std::pair{f.bKey, b}})
            if (!isFloatingDense(*ref))
                throw FormatError((ref == base ? std::string("the base model's '") : file + ": '") + key +
                                  "' is " + std::string(dtypeName(ref->dtype)) +
                                  (ref->quantization ? " (quantized)" : "") +
                                  ": a LoRA merge needs dense floating-point tensors");
        // r and lora_alpha as PEFT takes them for this module: rank_pattern / alpha_pattern first.
        std::string rKey, alphaKey;
        const double rank = patternValue(rankPattern, module, "rank_pattern", rKey, cfgPath).value_or(r);
        const double moduleAlpha = patternValue(alphaPattern, module, "alpha_pattern", alphaKey, cfgPath).value_or(alpha);
        if (!(rank >= 1) || rank != std::floor(rank) || rank > 1e9)
            throw FormatError(cfgPath + ": r for '" + module + "' is " + std::to_string(rank) + ": not a rank");
        const auto rInt = static_cast<std::int64_t>(rank);
        const std::string rSaid = "r = " + std::to_string(rInt) + " (adapter_config.json" +
                                  (rKey.empty() ? std::string(")") : ", rank_pattern '" + rKey + "')");
        LoraMergeStep step;
        step.name = baseName;
        step.base = base;
        step.a = a;
        step.b = b;
        step.scaling = rslora ? moduleAlpha / std::sqrt(rank) : moduleAlpha / rank;
        const auto &W = base->shape;
        const auto &A = a->shape;
        const auto &B = b->shape;
        std::vector<std::int64_t> expected;
        std::string layer;
        if (f.embedding) {
            step.kind = LoraMergeStep::Kind::Embedding;
            layer = "an Embedding";
            if (A.size() == 2 && B.size() == 2)
                expected = {A[1], B[0]};
        } else if (W.size() == 2) {
            // PEFT takes fan_in_fan_out from the layer, whatever the config says (a Linear is never
            // transposed, a Conv1D always: it warns and corrects the flag). Its weight's shape says
            // which it is ([out, in] or Conv1D's [in, out]); only a square one needs the config's word.
            step.kind = LoraMergeStep::Kind::Linear;
            if (A.size() == 2 && B.size() == 2) {
                const std::vector<std::int64_t> linear{B[0], A[1]}, conv1d{A[1], B[0]};
                step.fanInFanOut = linear == conv1d ? fanInFanOut : W == conv1d;
                expected = step.fanInFanOut ? conv1d : linear;
            }
            layer = step.fanInFanOut ? "a Conv1D (fan_in_fan_out)" : "a Linear";
        } else if (W.size() == 4) {
            step.kind = LoraMergeStep::Kind::Conv2d;
            layer = "a Conv2d";
            if (A.size() == 4 && B.size() == 4 && B[2] == 1 && B[3] == 1)
                expected = {B[0], A[1], A[2], A[3]};
        } else {
            throw FormatError("the base model's '" + baseName + "' is " + std::to_string(W.size()) + "-d " +
                              shapeText(W) + ": LoRA is merged into Linear, Conv1D, Embedding and Conv2d weights "
                                             "only (2-d and 4-d)");
        }
        if (expected.empty() || A.empty() || B.size() < 2)
            throw FormatError(file + ": '" + f.aKey + "' " + shapeText(A) + " and '" + f.bKey + "' " + shapeText(B) +
                              " are not the factors of " + layer + " weight such as '" + baseName + "' " + shapeText(W));
        if (A[0] != rInt || B[1] != rInt)
            throw FormatError(file + ": '" + (A[0] != rInt ? f.aKey : f.bKey) + "' is " +
                              shapeText(A[0] != rInt ? A : B) + ", expected rank " + rSaid + " in dimension " +
                              (A[0] != rInt ? "0" : "1"));
        if (expected != W)
            throw FormatError(file + ": '" + f.aKey + "' " + shapeText(A) + " and '" + f.bKey + "' " + shapeText(B) +
                              " make a delta of " + shapeText(expected) + " for " + layer + ", but the base model's '" +
                              baseName + "' is " + shapeText(W));
        planned.push_back({*at, std::move(step)});
    }
    for (const auto &[name, t] : wholeTensors) {
        const auto at = findBase(name);
        if (!at)
            throw FormatError(file + ": '" + t.name + "' replaces '" + name +
                              "', which the base model does not have" + prefixHint(name) +
                              ": is this the adapter of this base model?");
        if (!targeted.insert(*at).second)
            throw FormatError(file + ": '" + t.name + "' replaces '" + tensors[*at].first +
                              "', which the adapter also changes otherwise");
        const auto &base = tensors[*at].second->tensorRef();
        const auto &ref = t.value->tensorRef();
        if (ref->shape != base->shape)
            throw FormatError(file + ": '" + t.name + "' is " + shapeText(ref->shape) + ", but the base model's '" +
                              tensors[*at].first + "' it replaces is " + shapeText(base->shape));
        if (ref->dtype != base->dtype && !(isFloatingDense(*ref) && isFloatingDense(*base)))
            throw FormatError(file + ": '" + t.name + "' is " + std::string(dtypeName(ref->dtype)) +
                              ", the base model's '" + tensors[*at].first + "' " + std::string(dtypeName(base->dtype)) +
                              ": only floating-point tensors are cast on the way");
        LoraMergeStep step;
        step.kind = LoraMergeStep::Kind::Replace;
        step.name = tensors[*at].first;
        step.base = base;
        step.a = ref;
        planned.push_back({*at, std::move(step)});
    }
    if (planned.empty())
        throw FormatError(file + ": no LoRA factors (lora_A / lora_B) and nothing else to merge");

    // Tied weights (a head tied to its embedding) are one tensor: PEFT's in-place merge changes
    // every name of it, so each name gets the merged tensor. Another view of the same storage
    // would change in part, which is not done. A replaced tensor (a modules_to_save copy) is PEFT's
    // deepcopy of the module, trained apart: only its own name gets it, and the tie is broken.
    std::map<const StorageRef *, std::vector<std::size_t>> byStorage;
    for (std::size_t i = 0; i < tensors.size(); ++i)
        if (const auto &ref = tensors[i].second->tensorRef(); ref && ref->storage)
            byStorage[ref->storage.get()].push_back(i);
    std::set<std::size_t> replacedAt;
    for (const auto &p : planned)
        if (p.step.kind == LoraMergeStep::Kind::Replace)
            replacedAt.insert(p.at);

    LoraMergeSummary summary;
    std::vector<std::pair<std::size_t, ValuePtr>> replacements;
    for (auto &p : planned) {
        const auto &base = *p.step.base;
        const bool replace = p.step.kind == LoraMergeStep::Kind::Replace;
        std::vector<std::size_t> same{p.at};
        if (base.storage)
            for (std::size_t i : byStorage[base.storage.get()]) {
                if (i == p.at)
                    continue;
                const auto &other = *tensors[i].second->tensorRef();
                const bool sameView = other.shape == base.shape && other.strides == base.strides &&
                                      other.storageOffset == base.storageOffset && other.dtype == base.dtype;
                if (replace) {
                    // The other names keep the base's tensor (or their own merge): nothing changes in part.
                    if (sameView)
                        summary.warnings.push_back(
                            "'" + p.step.name + "' and '" + tensors[i].first +
                            "' are one tensor (tied) in the base model; the adapter's copy replaces '" + p.step.name +
                            "' only, as PEFT's merge_and_unload leaves it (modules_to_save trains a copy): the tie is "
                            "broken, '" + tensors[i].first + "' does not take the copy");
                    continue;
                }
                if (sameView) {
                    if (replacedAt.contains(i))
                        continue;  // that name gets the adapter's copy
                    if (targeted.contains(i))
                        throw FormatError(file + ": '" + tensors[i].first + "' and '" + p.step.name +
                                          "' are one tensor in the base model and the adapter changes both");
                    same.push_back(i);
                } else {
                    throw FormatError("the base model's '" + p.step.name + "' shares its storage with '" +
                                      tensors[i].first + "' (another view of it): merging into it would change that "
                                                         "one in part, which is not done");
                }
            }
        ValuePtr made;
        if (p.step.kind == LoraMergeStep::Kind::Replace && p.step.a->dtype == base.dtype) {
            auto ref = std::make_shared<TensorRef>(*p.step.a);
            ref->isParameter = base.isParameter;
            ref->requiresGrad = base.requiresGrad;
            made = Value::tensor(std::move(ref));
        } else {
            auto step = std::make_shared<const LoraMergeStep>(p.step);
            const std::uint64_t bytes = static_cast<std::uint64_t>(base.numel()) * dtypeSize(base.dtype);
            auto storage = std::make_shared<StorageRef>();
            storage->key = (base.storage ? base.storage->key : std::string()) + "/lora";
            storage->dtype = base.dtype;
            storage->location = base.storage ? base.storage->location : std::string("cpu");
            storage->declaredNumel = base.numel();
            // The adapter's document stays alive as long as the bytes may be asked for. Only this
            // weight (and its tied names, one view) reads the storage: it is made again if asked for
            // again, never kept, so a pass holds one merged weight at a time.
            storage->setLoader(bytes, [step, compute, bytes, keep = adapter.doc, file]() {
                (void)keep;
                std::vector<std::uint8_t> out;
                try {
                    out = compute(*step);
                } catch (const std::exception &e) {
                    throw FormatError(file + ": merging into '" + step->name + "': " + e.what());
                }
                if (out.size() != bytes)
                    throw FormatError(file + ": merging into '" + step->name + "' made " + std::to_string(out.size()) +
                                      " bytes, expected " + std::to_string(bytes));
                return std::make_shared<const std::vector<std::uint8_t>>(std::move(out));
            }, StorageRef::Reuse::NeverKeep);
            auto ref = std::make_shared<TensorRef>(base);
            ref->storage = std::move(storage);
            ref->storageOffset = 0;
            ref->strides = contiguousStrides(ref->shape);
            ref->problem.clear();
            made = Value::tensor(std::move(ref));
        }
        for (std::size_t i : same)
            replacements.push_back({i, made});
        const std::string tied = same.size() > 1 ? " (tied: also " + tensors[same[1]].first + ")" : "";
        if (p.step.kind == LoraMergeStep::Kind::Replace)
            summary.replaced.push_back(p.step.name + tied);
        else
            summary.merged.push_back(p.step.name + " (" +
                                     (p.step.fanInFanOut ? std::string("conv1d, fan_in_fan_out") : kindName(p.step.kind)) +
                                     ", scaling " +
                                     [&] {
                                         std::ostringstream s;
                                         s << p.step.scaling;
                                         return s.str();
                                     }() +
                                     ")" + tied);
    }
    for (auto &[i, v] : replacements)
        tensors[i].second = v;
    // merge_and_unload puts each base layer back in its LoRA layer's place: "x.base_layer.weight" is
    // "x.weight" again.
    std::set<std::string> names;
    for (const auto &t : tensors)
        names.insert(t.first);
    for (auto &t : tensors) {
        auto parts = splitDots(t.first);
        std::vector<std::string> kept;
        for (auto &part : parts)
            if (part != "base_layer")
                kept.push_back(part);
        if (kept.size() == parts.size())
            continue;
        const std::string plain = joinDots(kept, 0, kept.size());
        if (names.contains(plain))
            throw FormatError("the base model has both '" + t.first + "' and '" + plain + "'");
        summary.renamed.push_back({t.first, plain});
        names.insert(plain);
        t.first = plain;
    }
    return summary;
}

} // namespace ckpt
