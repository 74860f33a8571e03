#include "optimizermap.h"

#include "inferencemeta.h"
#include "jsonexport.h"
#include "keyalign.h"
#include "tensoridentity.h"
#include "valuetree.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <numeric>
#include <array>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace ckpt {

namespace {
// The most parameters an optimizer's param_groups may list in all: a model has at most some hundred
// thousand parameter tensors, while a pickle can list one group (or one params list) many times
// through its memo. Past it the parameters are not mapped (the note says so), and a pickled
// optimizer instance is not read as one.
constexpr std::size_t kMaxOptimizerParameters = std::size_t(1) << 20;

bool looksLikeBuffer(const std::string &name)
{
    static constexpr std::array<std::string_view, 3> suffixes{"running_mean", "running_var", "num_batches_tracked"};
    return std::any_of(suffixes.begin(), suffixes.end(), [&name](std::string_view s) { return name.ends_with(s); });
}
} // namespace

namespace {
// An optimizer only updates floating (or complex) parameters: integer and bool tensors (a flow's
// int64 `permutation`, a bool mask) are buffers, wherever they are registered.
bool couldBeParameter(const NamedTensor &t)
{
    const auto dtype = t.ref().dtype;
    return dtype == DType::Unknown || dtypeIsFloating(dtype) || dtypeIsComplex(dtype);
}

// Whether two state-dict entries are one tensor: the same object (a module tree's tied parameter),
// or views of one storage with the same place, shape, strides and type (state_dict() saves a tied
// parameter under each name, as detached tensors of the one storage).
bool sameTensor(const NamedTensor &a, const NamedTensor &b)
{
    if (a.value == b.value || a.value->tensorRef() == b.value->tensorRef())
        return true;
    const auto x = tensorIdentity(a.ref());
    return x && x == tensorIdentity(b.ref());
}

// The shapes of a parameter's state tensors of one or more dimensions, read once: the matchings
// below ask of each parameter many times, and a hostile file can give thousands of parameters one
// state dict of a million entries.
struct StateShapes {
    const std::vector<std::int64_t> *first = nullptr;  // null: none (no state yet, a scalar step only)
    bool agree = true;                                 // all of them have the first one's shape
};

StateShapes stateShapesOf(const ValuePtr &state, std::unordered_map<const Value *, StateShapes> &seen)
{
    if (!state || !state->isDict())
        return {};
    const auto [it, added] = seen.try_emplace(state.get());
    if (!added)
        return it->second;
    StateShapes s;
    for (const auto &e : state->entries())
        if (e.value && e.value->isTensor() && e.value->tensorRef() && !e.value->tensorRef()->shape.empty()) {
            if (!s.first)
                s.first = &e.value->tensorRef()->shape;
            else if (*s.first != e.value->tensorRef()->shape)
                s.agree = false;
        }
    it->second = s;
    return s;
}

// Whether every state tensor of one or more dimensions has the weight's shape.
bool shapeFits(const StateShapes &p, const NamedTensor &t) { return !p.first || (p.agree && *p.first == t.ref().shape); }

// The shape a parameter's state gives it: that of its first tensor of one or more dimensions. Null
// where it has none (no state yet, SGD without momentum, a scalar step only): it fits any weight.
const std::vector<std::int64_t> *stateShape(const StateShapes &p) { return p.first; }

// Parameters matched to candidates in order, each to the first later candidate its state's shape
// fits (from the front), or the last earlier one (from the back); empty when some parameter fits
// none. Where both directions give the same matching, it is the only one that keeps the order.
std::vector<std::size_t> embedInOrder(const std::vector<StateShapes> &params,
                                      const std::vector<const NamedTensor *> &candidates, bool fromBack)
{
    std::vector<std::size_t> at(params.size());
    if (!fromBack) {
        std::size_t c = 0;
        for (std::size_t i = 0; i < params.size(); ++i) {
            while (c < candidates.size() && !shapeFits(params[i], *candidates[c]))
                ++c;
            if (c == candidates.size())
                return {};
            at[i] = c++;
        }
    } else {
        std::size_t c = candidates.size();
        for (std::size_t i = params.size(); i-- > 0;) {
            while (c > 0 && !shapeFits(params[i], *candidates[c - 1]))
                --c;
            if (c == 0)
                return {};
            at[i] = --c;
        }
    }
    return at;
}

// The one candidate each parameter's state fits by shape, where that candidate is the only one of
// its shape and no two parameters share it: a matching that needs no order. Empty otherwise.
std::vector<std::size_t> matchByUniqueShape(const std::vector<StateShapes> &params,
                                            const std::vector<const NamedTensor *> &candidates)
{
    std::map<std::vector<std::int64_t>, std::vector<std::size_t>> byShape;
    for (std::size_t c = 0; c < candidates.size(); ++c)
        byShape[candidates[c]->ref().shape].push_back(c);
    std::vector<std::size_t> at(params.size());
    std::vector<bool> taken(candidates.size(), false);
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto &p = params[i];
        const auto *shape = stateShape(p);
        if (!shape)
            return {};
        const auto it = byShape.find(*shape);
        if (it == byShape.end() || it->second.size() != 1 || taken[it->second.front()] ||
            !shapeFits(p, *candidates[it->second.front()]))
            return {};
        at[i] = it->second.front();
        taken[at[i]] = true;
    }
    return at;
}

constexpr const char *kSharedShapes =
    "several parameters share these shapes; names follow registration order, which the optimizer may not";
constexpr std::size_t kUnnamed = static_cast<std::size_t>(-1);

// Parameter by parameter, the one candidate its state's shape fits where no other candidate and no
// other parameter has that shape; kUnnamed for the rest (a shape several weights or several
// parameters share, or no state to show one). What this names holds whatever order the optimizer
// was given its parameters in.
std::vector<std::size_t> matchEachByUniqueShape(const std::vector<StateShapes> &params,
                                                const std::vector<const NamedTensor *> &candidates)
{
    std::map<std::vector<std::int64_t>, std::vector<std::size_t>> byShape;
    for (std::size_t c = 0; c < candidates.size(); ++c)
        byShape[candidates[c]->ref().shape].push_back(c);
    std::map<std::vector<std::int64_t>, std::size_t> paramsOfShape;
    for (const auto &p : params)
        if (const auto *shape = stateShape(p))
            ++paramsOfShape[*shape];
    std::vector<std::size_t> at(params.size(), kUnnamed);
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto *shape = stateShape(params[i]);
        if (!shape || paramsOfShape[*shape] != 1)
            continue;
        const auto it = byShape.find(*shape);
        if (it != byShape.end() && it->second.size() == 1 && shapeFits(params[i], *candidates[it->second.front()]))
            at[i] = it->second.front();
    }
    return at;
}

// Names for a note: the first few, and how many more.
std::string listed(const std::vector<std::string> &names)
{
    constexpr std::size_t kShown = 6;
    if (names.empty())
        return "none";
    std::string text;
    for (std::size_t i = 0; i < names.size() && i < kShown; ++i)
        text += (i ? ", " : "") + names[i];
    if (names.size() > kShown)
        text += " and " + std::to_string(names.size() - kShown) + " more";
    return text;
}

// The candidates no parameter is matched to.
std::vector<std::string> leftOut(const std::vector<const NamedTensor *> &candidates, const std::vector<std::size_t> &at)
{
    std::vector<bool> taken(candidates.size(), false);
    for (const auto c : at)
        if (c < candidates.size())
            taken[c] = true;
    std::vector<std::string> names;
    for (std::size_t c = 0; c < candidates.size(); ++c)
        if (!taken[c])
            names.push_back(candidates[c]->name);
    return names;
}

// What a matching tells beyond the names: whether it keeps the model's order, and which of the
// model's parameters it leaves out (those the optimizer does not update, such as frozen layers).
struct Placed {
    bool reordered = false;
    bool allNamed = true;
    std::vector<std::string> leftOut;
    std::string said() const
    {
        std::string text;
        if (reordered)
            text += "; the optimizer lists parameters in another order than the model registers them";
        if (allNamed && !leftOut.empty())
            text += "; not optimized: " + listed(leftOut);
        return text;
    }
};

// Names the parameters after the candidates `at` gives (kUnnamed: left unnamed), each checked by shape.
Placed place(OptimizerMap &map, const std::vector<StateShapes> &shapes, const std::vector<const NamedTensor *> &candidates,
             const std::vector<std::size_t> &at)
{
    Placed placed;
    std::size_t previous = 0;
    bool any = false;
    for (std::size_t i = 0; i < map.parameters.size(); ++i) {
        auto &p = map.parameters[i];
        if (i >= at.size() || at[i] >= candidates.size()) {
            p.name.clear();
            p.shapeAgrees = true;
            placed.allNamed = false;
            continue;
        }
        const auto &t = *candidates[at[i]];
        p.name = t.name;
        p.shapeAgrees = shapeFits(shapes[i], t);
        placed.reordered = placed.reordered || (any && at[i] < previous);
        previous = at[i];
        any = true;
    }
    placed.leftOut = leftOut(candidates, at);
    return placed;
}

// Each parameter matched to the first candidate of its state's shape not yet taken, those without
// state to the first candidates left: the order within each shape kept. Empty where some shape has
// too few candidates.
std::vector<std::size_t> matchByShapeInOrder(const std::vector<StateShapes> &params,
                                             const std::vector<const NamedTensor *> &candidates)
{
    std::map<std::vector<std::int64_t>, std::vector<std::size_t>> byShape;
    for (std::size_t c = candidates.size(); c-- > 0;)
        byShape[candidates[c]->ref().shape].push_back(c);  // reversed: the first at the back
    std::vector<std::size_t> at(params.size(), kUnnamed);
    std::vector<bool> taken(candidates.size(), false);
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto *shape = stateShape(params[i]);
        if (!shape)
            continue;
        const auto it = byShape.find(*shape);
        if (it == byShape.end() || it->second.empty() || !shapeFits(params[i], *candidates[it->second.back()]))
            return {};
        at[i] = it->second.back();
        it->second.pop_back();
        taken[at[i]] = true;
    }
    std::size_t c = 0;
    for (auto &a : at)
        if (a == kUnnamed) {
            while (c < candidates.size() && taken[c])
                ++c;
            if (c == candidates.size())
                return {};
            a = c;
            taken[c] = true;
        }
    return at;
}

// The optimizer's parameters as a sequence of whole layers: PyTorch's own ways of listing them
// (model.parameters(), a head's parameters before a backbone's, a param group per block, frozen
// layers left out) hand over each module's parameters together, in the module's order. A layer is
// a run of candidates under one module name; layers of the same shapes are interchangeable, so the
// matching is unique only where the sequence splits one way into layers and each layer it uses is
// the only one of its shapes. Where several layers of one shape are all held, they are named in
// registration order (a guess); where only some of them are, which ones is `undecided`.
struct LayerMatch {
    bool found = false;
    bool unique = false;
    std::vector<std::size_t> at;  // candidate per parameter, kUnnamed where undecided
    std::string undecided;        // "2 of the 3 layers 0, 2, 4, which have the same shapes"
};

std::string_view moduleOf(std::string_view name)
{
    const auto dot = name.rfind('.');
    return dot == std::string_view::npos ? std::string_view() : name.substr(0, dot);
}

LayerMatch matchByLayers(const std::vector<OptimizerParameter> &params, const std::vector<StateShapes> &shapes,
                         const std::vector<const NamedTensor *> &candidates)
{
    using Shape = std::vector<std::int64_t>;
    LayerMatch result;
    const std::size_t n = params.size();
    if (n == 0 || candidates.empty())
        return result;
    std::vector<std::pair<std::size_t, std::size_t>> layers;  // [begin, end) in candidates
    for (std::size_t c = 0; c < candidates.size(); ++c)
        if (c == 0 || moduleOf(candidates[c]->name) != moduleOf(candidates[c - 1]->name))
            layers.emplace_back(c, c + 1);
        else
            layers.back().second = c + 1;
    // Classes of layers with the same shapes, each class's layers in registration order.
    std::map<std::vector<Shape>, std::size_t> classOf;
    std::vector<std::vector<std::size_t>> classLayers;
    std::map<Shape, std::vector<std::size_t>> classesByFirstShape;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        std::vector<Shape> shapes;
        for (std::size_t c = layers[l].first; c < layers[l].second; ++c)
            shapes.push_back(candidates[c]->ref().shape);
        const auto [it, added] = classOf.try_emplace(std::move(shapes), classLayers.size());
        if (added) {
            classLayers.emplace_back();
            classesByFirstShape[candidates[layers[l].first]->ref().shape].push_back(it->second);
        }
        classLayers[it->second].push_back(l);
    }
    std::vector<std::size_t> allClasses(classLayers.size());
    for (std::size_t k = 0; k < allClasses.size(); ++k)
        allClasses[k] = k;
    // A layer lies within one param group: where each parameter's group run ends.
    std::vector<std::size_t> groupEnd(n);
    for (std::size_t i = n; i-- > 0;)
        groupEnd[i] = i + 1 < n && params[i + 1].group == params[i].group ? groupEnd[i + 1] : i + 1;
    // ways[i]: in how many ways (0, 1, or 2 for more) the first i parameters split into layers.
    // The work is bounded: a file can list many parameters and many layers of the same first shape.
    constexpr std::size_t kBudget = std::size_t(1) << 25;
    std::size_t spent = 0;
    std::vector<std::uint8_t> ways(n + 1, 0);
    std::vector<std::size_t> from(n + 1, 0), via(n + 1, 0);
    ways[0] = 1;
    for (std::size_t i = 0; i < n; ++i) {
        if (!ways[i])
            continue;
        const Shape *shape = stateShape(shapes[i]);
        const std::vector<std::size_t> *tried = &allClasses;
        if (shape) {
            const auto it = classesByFirstShape.find(*shape);
            if (it == classesByFirstShape.end())
                continue;
            tried = &it->second;
        }
        for (const auto k : *tried) {
            const auto [begin, end] = layers[classLayers[k].front()];
            const std::size_t length = end - begin;
            if (++spent > kBudget)
                return result;
            if (i + length > groupEnd[i])
                continue;
            bool fits = true;
            for (std::size_t j = 0; fits && j < length; ++j) {
                if (++spent > kBudget)
                    return result;
                fits = shapeFits(shapes[i + j], *candidates[begin + j]);
            }
            if (!fits)
                continue;
            if (!ways[i + length]) {
                from[i + length] = i;
                via[i + length] = k;
            }
            ways[i + length] = static_cast<std::uint8_t>(std::min(2, ways[i + length] + ways[i]));
        }
    }
    if (ways[n] != 1)
        return result;  // no split into whole layers, or several: parameter by parameter instead
    std::vector<std::pair<std::size_t, std::size_t>> segments;  // (first parameter, class)
    for (std::size_t i = n; i > 0; i = from[i])
        segments.emplace_back(from[i], via[i]);
    std::reverse(segments.begin(), segments.end());
    std::vector<std::size_t> used(classLayers.size(), 0);
    for (const auto &[first, k] : segments)
        ++used[k];
    for (std::size_t k = 0; k < used.size(); ++k)
        if (used[k] > classLayers[k].size())
            return result;  // more layers of these shapes than the model has
    result.found = true;
    result.unique = true;
    result.at.assign(n, kUnnamed);
    std::vector<std::size_t> next(classLayers.size(), 0);
    for (const auto &[first, k] : segments) {
        const auto &layersOfClass = classLayers[k];
        const std::size_t layer = layersOfClass[next[k]++];
        if (used[k] < layersOfClass.size())
            continue;  // which of them the optimizer holds is not known
        const auto begin = layers[layer].first;
        for (std::size_t j = 0; j < layers[layer].second - begin; ++j)
            result.at[first + j] = begin + j;
    }
    for (std::size_t k = 0; k < used.size(); ++k) {
        if (!used[k])
            continue;
        if (used[k] > 1 || classLayers[k].size() > 1)
            result.unique = false;
        if (used[k] < classLayers[k].size()) {
            std::vector<std::string> names;
            for (const auto l : classLayers[k]) {
                const auto module = moduleOf(candidates[layers[l].first]->name);
                names.push_back(module.empty() ? std::string("the model's own parameters") : std::string(module));
            }
            result.undecided += (result.undecided.empty() ? "" : "; and ") + std::to_string(used[k]) + " of the " +
                                std::to_string(names.size()) + " layers " + listed(names) +
                                ", which have the same shapes";
        }
    }
    return result;
}

// Each parameter named as the optimizer recorded it, checked against the state dict: the name must
// be there (wrapper prefixes such as `module.` aside) and each state tensor must have its shape.
OptimizerMap mapByRecordedNames(const Document &doc, OptimizerMap map, const std::vector<StateShapes> &shapes,
                                const std::vector<std::string> &recorded)
{
    // The model the optimizer saw may have been wrapped (DataParallel's `module.`, torch.compile's
    // `_orig_mod.`) when its weights were saved, or the other way round: aligned as `diff` aligns.
    std::vector<std::string> names;
    names.reserve(doc.stateDict.size());
    for (const auto &t : doc.stateDict)
        names.push_back(t.name);
    std::vector<const NamedTensor *> match(recorded.size(), nullptr);
    for (const auto &[i, j] : alignKeys(recorded, names).pairs)
        match[i] = &doc.stateDict[j];
    std::size_t missing = 0, mismatched = 0;
    for (std::size_t i = 0; i < map.parameters.size(); ++i) {
        auto &p = map.parameters[i];
        const NamedTensor *t = match[i];
        p.name = t ? t->name : std::string();  // a recorded name the weights lack maps to nothing
        p.shapeAgrees = !t || shapeFits(shapes[i], *t);
        missing += t ? 0 : 1;
        mismatched += p.shapeAgrees ? 0 : 1;
    }
    const bool byKey = !map.parameters.empty() && !map.parameters.front().key.empty();
    map.note = byKey ? "by the parameter names the optimizer keys its state with"
                     : "by the parameter names the optimizer recorded (param_names)";
    map.certain = missing == 0 && mismatched == 0;
    if (missing)
        map.note += "; " + std::to_string(missing) + " of them not in the state dict";
    if (mismatched)
        map.note += "; " + std::to_string(mismatched) + " with state tensors of another shape than the weight";
    return map;
}
} // namespace

namespace {
// Why an optimizer keeps no state tensors, from its own state dict: SGD whose every group has
// momentum 0 keeps none however long it ran (torch 1.13 keeps {'momentum_buffer': None}); any other
// optimizer (SGD with momentum, Adam) saved before its first step has an empty `state`.
std::string noStateTensorsReason(const Value &optimizer)
{
    const ValuePtr groups = optimizer.isDict() ? optimizer.get("param_groups") : nullptr;
    bool noMomentum = groups && groups->isSequence() && !groups->items().empty();
    if (noMomentum)
        for (const auto &g : groups->items()) {
            const ValuePtr m = g && g->isDict() ? g->get("momentum") : nullptr;
            const bool zero = m && ((m->isInt() && m->asInt() == 0) ||
                                    (m->kind() == Value::Kind::Float && m->asFloat() == 0.0));
            noMomentum = noMomentum && zero;
        }
    if (noMomentum)
        return "SGD without momentum keeps none";
    const ValuePtr state = optimizer.isDict() ? optimizer.get("state") : nullptr;
    if (state && state->isDict() && state->entries().empty())
        return "no step was taken yet, so it holds no state";
    return "its per-parameter state holds no tensors";
}

std::optional<OptimizerMap> mapWithTies(const Document &doc, std::vector<std::string> &tiedNames)
{
    if (!doc.optimizer)
        return std::nullopt;
    OptimizerMap map;
    const auto groups = doc.optimizer->get("param_groups");
    const auto state = doc.optimizer->get("state");
    // The names the optimizer recorded: a group's `param_names` (one string per entry of `params`),
    // or the params themselves where they are strings. Empty where any parameter lacks one.
    std::vector<std::string> recorded;
    bool allRecorded = true;
    // The names are copied: a pickle can name one long string many times through its memo, so
    // what they may take is bounded (real optimizers name a few thousand parameters).
    constexpr std::size_t kNameBytes = std::size_t(64) << 20;
    std::size_t nameBytes = 0;
    const auto spend = [&nameBytes](const std::string &text) { return (nameBytes += text.size() + 1) <= kNameBytes; };
    if (groups && groups->isSequence())
        for (std::size_t g = 0; g < groups->items().size(); ++g) {
            const auto &group = groups->items()[g];
            const auto params = group && group->isDict() ? group->get("params") : nullptr;
            if (!params || !params->isSequence())
                continue;
            const auto names = group->get("param_names");
            const bool named = names && names->isSequence() && names->items().size() == params->items().size();
            for (std::size_t i = 0; i < params->items().size(); ++i) {
                const auto &id = params->items()[i];
                if (!id || !(id->isInt() || id->isString()))
                    continue;
                const auto &name = named ? names->items()[i] : nullptr;
                if ((id->isString() && !spend(id->text())) || (name && name->isString() && !spend(name->text()))) {
                    map.parameters.clear();
                    map.note = "the optimizer's parameter names take more than " + std::to_string(kNameBytes >> 20) +
                               " MiB: not read";
                    return map;
                }
                if (map.parameters.size() >= kMaxOptimizerParameters) {
                    map.parameters.clear();
                    map.note = "the optimizer lists more than " + std::to_string(kMaxOptimizerParameters) +
                               " parameters: not mapped";
                    return map;
                }
                OptimizerParameter p;
                p.group = g;
                if (id->isInt())
                    p.id = id->asInt();
                else
                    p.key = id->text();
                if (name && name->isString())
                    recorded.push_back(name->text());
                else if (!p.key.empty())
                    recorded.push_back(p.key);
                else
                    allRecorded = false;
                map.parameters.push_back(std::move(p));
            }
        }
    if (state && state->isDict()) {
        // Indexed once (the first entry of an id wins): looking each id up in turn is quadratic.
        std::unordered_map<std::int64_t, ValuePtr> byId;
        std::unordered_map<std::string, ValuePtr> byKey;
        byId.reserve(state->entries().size());
        for (const auto &e : state->entries())
            if (e.key && e.key->isInt())
                byId.try_emplace(e.key->asInt(), e.value);
            else if (e.key && e.key->isString())
                byKey.try_emplace(e.key->text(), e.value);
        for (auto &p : map.parameters)
            if (!p.key.empty()) {
                if (auto it = byKey.find(p.key); it != byKey.end())
                    p.state = it->second;
            } else if (auto it = byId.find(p.id); it != byId.end()) {
                p.state = it->second;
            }
    }
    std::unordered_map<const Value *, StateShapes> seenStates;
    std::vector<StateShapes> shapes;
    shapes.reserve(map.parameters.size());
    for (const auto &p : map.parameters)
        shapes.push_back(stateShapesOf(p.state, seenStates));
    // Candidates in registration order: parameters, without buffers. A tied parameter (a head's
    // weight that is the embedding's) is one tensor under two names: model.parameters() gives it
    // once, under the first, so the optimizer numbers it once; the state dict's later names of it
    // are no candidates.
    std::vector<const NamedTensor *> candidates;
    // Candidates by their tensor and by where their data starts: a lookup each, not a scan (a file
    // can list many thousands of parameters).
    std::unordered_map<const TensorRef *, const NamedTensor *> byRef;
    std::map<std::pair<const StorageRef *, std::int64_t>, std::vector<const NamedTensor *>> byStart;
    for (const auto &t : doc.stateDict) {
        const bool buffer = doc.stateDictSource == "module_tree" ? !t.ref().isParameter : looksLikeBuffer(t.name);
        if (buffer || !couldBeParameter(t))
            continue;
        const NamedTensor *first = nullptr;
        if (const auto it = byRef.find(&t.ref()); it != byRef.end())
            first = it->second;
        auto &sameStart = byStart[{t.ref().storage.get(), t.ref().storageOffset}];
        if (!first && t.ref().storage)
            for (std::size_t i = 0; i < sameStart.size() && i < 64 && !first; ++i)  // bounded for a hostile file
                if (sameTensor(*sameStart[i], t))
                    first = sameStart[i];
        if (first) {
            tiedNames.push_back(t.name + " is " + first->name);
            continue;
        }
        candidates.push_back(&t);
        byRef.emplace(&t.ref(), &t);
        sameStart.push_back(&t);
    }
    if (map.parameters.empty()) {
        map.note = "the optimizer lists no parameters";
        return map;
    }
    if (const std::string partition = deepSpeedPartition(doc); !partition.empty()) {
        map.note = partition;
        return map;
    }
    if (!doc.hasStateDict) {
        map.note = doc.kind == DocumentKind::OptimizerState
                       ? "the file holds the optimizer's state alone, without the model's weights: its parameters "
                         "are known by id only"
                       : "no state dict to map the optimizer's parameters to";
        return map;
    }
    if (allRecorded && recorded.size() == map.parameters.size())
        return mapByRecordedNames(doc, std::move(map), shapes, recorded);
    // Ids are numbered in the order parameters were given to the optimizer, which need not be the
    // order the model registers them: a head listed first, a head's param group with its own
    // learning rate, a frozen backbone left out. Shapes decide where they can; where they cannot,
    // the mapping says so and is not certain (convert then leaves the optimizer's ids alone).
    if (const auto at = matchByUniqueShape(shapes, candidates); !at.empty()) {
        const auto placed = place(map, shapes, candidates, at);
        map.certain = true;
        map.note = "by shape: each parameter's state has a shape only one weight has" + placed.said();
        return map;
    }
    // Several param groups: torch numbers the ids group by group, and which parameters went into
    // which group, in what order, was the user's choice (a head with its own learning rate before
    // the backbone, weights apart from biases and norms for weight decay). Neither registration
    // order nor whole layers tell which of several same-shaped weights an id is: a Linear(16, 16)
    // beside a LayerNorm(16), split into weights and biases, fits the layers [weight, weight],
    // [bias, bias] exactly as two param groups of one layer each would. So only a shape one weight
    // alone has gives a name; the other parameters are left unnamed, never guessed.
    const bool severalGroups = std::any_of(map.parameters.begin(), map.parameters.end(), [&](const OptimizerParameter &p) {
        return p.group != map.parameters.front().group;
    });
    if (severalGroups) {
        const auto at = matchEachByUniqueShape(shapes, candidates);
        const auto placed = place(map, shapes, candidates, at);
        const auto named = static_cast<std::size_t>(
            std::count_if(map.parameters.begin(), map.parameters.end(), [](const OptimizerParameter &p) { return !p.name.empty(); }));
        const std::size_t stateless = static_cast<std::size_t>(
            std::count_if(shapes.begin(), shapes.end(), [](const StateShapes &p) { return !stateShape(p); }));
        const std::size_t n = map.parameters.size();
        map.certain = named == n;  // matchByUniqueShape names all such above; kept true to its word
        map.note = "the optimizer has several param groups, whose order need not be the model's: only a shape one "
                   "weight alone has names a parameter, and " + std::to_string(n - named) + " of its " +
                   std::to_string(n) + " parameters " + (n - named == 1 ? "is" : "are") + " left unnamed";
        if (stateless == n)
            map.note += " (it keeps no state tensors: " + noStateTensorsReason(*doc.optimizer) +
                        "; so no shape tells them apart)";
        else if (stateless)
            map.note += " (" + std::to_string(stateless) + " of them keep no state tensors; the others have shapes "
                                                           "several weights or parameters share)";
        else
            map.note += n - named == 1 ? " (its shape is shared by several weights or parameters)"
                                       : " (their shapes are shared by several weights or parameters)";
        map.note += placed.said();
        return map;
    }
    // An optimizer that keeps no state tensors (SGD without momentum, or any optimizer saved before
    // its first step) has nothing a shape could tell apart: its ids are placed in registration
    // order, said as the guess it is.
    if (std::none_of(shapes.begin(), shapes.end(), [](const StateShapes &p) { return stateShape(p) != nullptr; }) &&
        candidates.size() == map.parameters.size()) {
        std::vector<std::size_t> at(map.parameters.size());
        std::iota(at.begin(), at.end(), std::size_t{0});
        const auto placed = place(map, shapes, candidates, at);
        map.note = "the optimizer keeps no state tensors (" + noStateTensorsReason(*doc.optimizer) +
                   "), so nothing tells its parameters apart: names follow registration order, which the optimizer "
                   "may not" + placed.said();
        return map;
    }
    if (const auto layers = matchByLayers(map.parameters, shapes, candidates); layers.found) {
        const auto placed = place(map, shapes, candidates, layers.at);
        map.certain = layers.unique;
        if (layers.unique)
            map.note = "by the shapes of whole layers: each layer the optimizer holds is the only one with its "
                       "parameters' shapes (a layer's parameters taken to be given together, in its order)" +
                       placed.said();
        else if (layers.undecided.empty())
            map.note = std::string(kSharedShapes) + placed.said();
        else
            map.note = "the optimizer holds " + layers.undecided +
                       ", and the file does not tell which: their parameters are left unnamed" + placed.said();
        return map;
    }
    // Parameter by parameter. More candidates than parameters (frozen parameters, or buffers of
    // floating type that no name tells apart, such as the masks of masked layers): keep the order,
    // skip the candidates no parameter's state fits.
    const std::size_t n = map.parameters.size();
    if (candidates.size() > n) {
        const auto first = embedInOrder(shapes, candidates, false);
        if (!first.empty()) {
            const auto last = embedInOrder(shapes, candidates, true);
            if (first == last) {
                const auto placed = place(map, shapes, candidates, first);
                map.note = "by registration order and shape, leaving out " +
                           std::to_string(candidates.size() - n) +
                           " floating state-dict tensors (buffers, or parameters the optimizer does not hold: " +
                           listed(placed.leftOut) +
                           "); several parameters share these shapes, and the optimizer may not follow registration "
                           "order";
                return map;
            }
            map.note = "the optimizer's " + std::to_string(n) + " parameters fit several sets of the " +
                       std::to_string(candidates.size()) +
                       " floating state-dict tensors by shape (in registration order, the first fit leaves out " +
                       listed(leftOut(candidates, first)) + ", the last " + listed(leftOut(candidates, last)) +
                       "): parameters are left unnamed";
            return map;
        }
    }
    if (candidates.size() == n) {
        if (const auto at = embedInOrder(shapes, candidates, false); !at.empty()) {
            place(map, shapes, candidates, at);
            map.note = kSharedShapes;
            return map;
        }
        if (const auto at = matchByShapeInOrder(shapes, candidates); !at.empty()) {
            place(map, shapes, candidates, at);
            map.note = "by shape; the optimizer lists parameters in another order than the model "
                       "registers them, and several parameters share these shapes: among those, names follow "
                       "registration order, which the optimizer may not";
            return map;
        }
    }
    // Nothing fits: names by position, a guess, each mismatch marked.
    std::vector<std::size_t> at(std::min(candidates.size(), n));
    for (std::size_t i = 0; i < at.size(); ++i)
        at[i] = i;
    place(map, shapes, candidates, at);
    if (candidates.size() != n)
        map.note = "the optimizer has " + std::to_string(n) + " parameters and the state dict " +
                   std::to_string(candidates.size()) + ": names are a guess by order";
    else
        map.note = "some state tensors differ in shape from the parameter at the same position: names are uncertain";
    return map;
}

} // namespace

std::optional<OptimizerMap> mapOptimizer(const Document &doc)
{
    std::vector<std::string> tiedNames;
    auto map = mapWithTies(doc, tiedNames);
    if (map && !tiedNames.empty() && !map->parameters.empty())
        map->note += "; tied weights count once, as model.parameters() gives them: " + listed(tiedNames);
    return map;
}

std::optional<std::int64_t> optimizerStep(const Value &optimizerState)
{
    const ValuePtr state = optimizerState.isDict() ? optimizerState.get("state") : nullptr;
    if (!state || !state->isDict())
        return std::nullopt;
    std::optional<std::int64_t> best;
    for (const auto &e : state->entries()) {
        const ValuePtr step = e.value && e.value->isDict() ? e.value->get("step") : nullptr;
        std::optional<double> v;
        if (step && step->isInt())
            v = static_cast<double>(step->asInt());
        else if (step && step->kind() == Value::Kind::Float)
            v = step->asFloat();
        else if (step && step->isTensor())
            if (const auto n = vectorTensorNumbers(*step->tensorRef()); n.size() == 1)
                v = n[0];
        if (v && std::isfinite(*v) && std::abs(*v) < 9e15)
            best = std::max(best.value_or(INT64_MIN), static_cast<std::int64_t>(*v));
    }
    return best;
}

ValuePtr pickledOptimizerState(const Value &v)
{
    if (v.kind() != Value::Kind::Object || !v.state() || !v.state()->isDict())
        return nullptr;
    const auto state = v.state()->get("state");
    const auto groups = v.state()->get("param_groups");
    // A defaultdict is an object whose items were set after it was made.
    if (!state || !(state->isDict() || state->kind() == Value::Kind::Object) || !groups || !groups->isSequence() ||
        groups->items().empty())
        return nullptr;
    std::unordered_map<const Value *, std::int64_t> idOfValue;
    std::unordered_map<const TensorRef *, std::int64_t> idOfRef;
    // Tensors rebuilt twice from one storage, by storage and offset: a lookup, not a scan per key.
    using Place = std::pair<const StorageRef *, std::int64_t>;
    std::map<Place, std::vector<std::pair<const TensorRef *, std::int64_t>>> byPlace;
    std::int64_t next = 0;
    std::size_t copied = 0;  // a pickle can list one group, or one params list, many times
    auto newGroups = Value::list();
    for (const auto &group : groups->items()) {
        const auto params = group && group->isDict() ? group->get("params") : nullptr;
        if (!params || !params->isSequence())
            return nullptr;
        if ((copied += group->entries().size() + params->items().size()) > kMaxOptimizerParameters)
            return nullptr;
        auto g = Value::dict();
        for (const auto &e : group->entries())
            if (!(e.key && e.key->isString() && e.key->text() == "params"))
                g->entries().push_back(e);
        auto ids = Value::list();
        for (const auto &p : params->items()) {
            const std::int64_t id = next++;
            if (p && p->isTensor() && p->tensorRef()) {
                idOfValue.try_emplace(p.get(), id);
                idOfRef.try_emplace(p->tensorRef().get(), id);
                const TensorRef &r = *p->tensorRef();
                byPlace[{r.storage.get(), r.storageOffset}].emplace_back(&r, id);
            } else if (p && p->isInt()) {
                idOfValue.try_emplace(p.get(), p->asInt());
            }
            ids->items().push_back(Value::integer(p && p->isInt() ? p->asInt() : id));
        }
        g->entries().push_back({Value::string("params"), ids});
        newGroups->items().push_back(g);
    }
    const auto idOf = [&](const Value &key) -> std::optional<std::int64_t> {
        if (key.isInt())
            return key.asInt();
        if (!key.isTensor() || !key.tensorRef())
            return std::nullopt;
        if (auto it = idOfValue.find(&key); it != idOfValue.end())
            return it->second;
        if (auto it = idOfRef.find(key.tensorRef().get()); it != idOfRef.end())
            return it->second;
        const TensorRef &k = *key.tensorRef();
        if (!k.storage)
            return std::nullopt;
        if (auto it = byPlace.find({k.storage.get(), k.storageOffset}); it != byPlace.end())
            for (std::size_t i = 0; i < it->second.size() && i < 64; ++i)  // bounded for a hostile file
                if (const auto &[ref, id] = it->second[i]; ref->shape == k.shape && ref->strides == k.strides)
                    return id;
        return std::nullopt;
    };
    auto newState = Value::dict();
    for (const auto &e : state->entries())
        if (e.key && e.value)
            if (const auto id = idOf(*e.key))
                newState->entries().push_back({Value::integer(*id), e.value});
    auto out = Value::dict();
    out->entries().push_back({Value::string("state"), newState});
    out->entries().push_back({Value::string("param_groups"), newGroups});
    return out;
}

namespace {
// A small integer the file keeps plainly or as a member of DeepSpeed's ZeroStageEnum (an IntEnum):
// Python < 3.11 pickles a member as the class called with its value, 3.11 on as
// getattr(ZeroStageEnum, 'gradients').
std::optional<std::int64_t> smallInt(const ValuePtr &v)
{
    if (v && v->isInt())
        return v->asInt();
    if (!v || v->kind() != Value::Kind::Object || !v->args() || !v->args()->isSequence())
        return std::nullopt;
    const auto &args = v->args()->items();
    if (args.size() == 1 && args[0] && args[0]->isInt())
        return args[0]->asInt();
    if (args.size() == 2 && args[1] && args[1]->isString()) {
        static constexpr std::array<std::pair<std::string_view, int>, 5> kStages{
            {{"disabled", 0}, {"optimizer_states", 1}, {"gradients", 2}, {"weights", 3}, {"max_stage", 3}}};
        for (const auto &[name, stage] : kStages)
            if (args[1]->text() == name)
                return stage;
    }
    return std::nullopt;
}
} // namespace

std::string deepSpeedPartition(const Document &doc)
{
    if (!doc.optimizer || doc.optimizerPath.empty() || !doc.root)
        return {};
    const std::string &last = doc.optimizerPath.back();
    if (last != "base_optimizer_state" && last != "optimizer_state_dict")
        return {};
    const KeyPath parentPath(doc.optimizerPath.begin(), doc.optimizerPath.end() - 1);
    const ValuePtr wrapper = findPath(doc.root, parentPath);
    if (!wrapper || !wrapper->isDict())
        return {};
    const auto stage = smallInt(wrapper->get("zero_stage"));
    // Stage 1 and 2 keep the fp32 partition as single_partition_of_fp32_groups, stage 3 as fp32_flat_groups.
    ValuePtr flat = wrapper->get("single_partition_of_fp32_groups");
    std::string flatKey = "single_partition_of_fp32_groups";
    if (!flat) {
        flat = wrapper->get("fp32_flat_groups");
        flatKey = "fp32_flat_groups";
    }
    if (!stage && !flat)
        return {};
    std::string text = "DeepSpeed ZeRO" + (stage ? " stage " + std::to_string(*stage) : std::string()) + " partition";
    std::int64_t ranks = 0;
    if (const auto count = wrapper->get("partition_count")) {
        if (const auto n = smallInt(count))
            ranks = *n;
        else if (count->isSequence())
            for (const auto &c : count->items())
                if (const auto n = smallInt(c))
                    ranks = std::max(ranks, *n);
    }
    if (ranks > 1)
        text += " (this file holds one rank's part of " + std::to_string(ranks) + ")";
    const auto groups = doc.optimizer->get("param_groups");
    const std::size_t groupCount = groups && groups->isSequence() ? groups->items().size() : 0;
    text += ": the optimizer's ids are " + std::to_string(groupCount) + " flat fp32 group" +
            (groupCount == 1 ? "" : "s") + ", not parameters";
    const auto mappings = wrapper->get("param_slice_mappings");
    if (flat && flat->isSequence()) {
        // The first groups described, each by its first names cut short: the pickle's memo can list
        // one tensor and one mapping of long names as any number of groups.
        constexpr std::size_t kGroupsDescribed = 16, kNamesShown = 6, kNameBytes = 200;
        const std::size_t flatCount = flat->items().size();
        for (std::size_t g = 0; g < flatCount && g < kGroupsDescribed; ++g) {
            const auto &t = flat->items()[g];
            if (!t || !t->isTensor() || !t->tensorRef())
                continue;
            text += "; group " + std::to_string(g) + ": " + std::to_string(t->tensorRef()->numel()) + " elements";
            const ValuePtr names = mappings && mappings->isSequence() && g < mappings->items().size()
                                       ? mappings->items()[g]
                                       : nullptr;
            if (names && names->isDict()) {
                const std::size_t count = names->entries().size();
                std::vector<std::string> shown;
                for (const auto &e : names->entries()) {
                    if (shown.size() == kNamesShown)
                        break;
                    if (!e.key || !e.key->isString())
                        continue;
                    const std::string &name = e.key->text();
                    std::size_t cut = std::min(name.size(), kNameBytes);
                    while (cut < name.size() && cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80)
                        --cut;  // not inside a UTF-8 sequence
                    shown.push_back(cut < name.size() ? name.substr(0, cut) + "…" : name);
                }
                text += " of " + std::to_string(count) + " parameter" + (count == 1 ? "" : "s") + " (" +
                        listed(shown) + (count > shown.size() ? " and " + std::to_string(count - shown.size()) + " more" : "") +
                        ")";
            }
        }
        if (flatCount > kGroupsDescribed)
            text += "; " + std::to_string(flatCount - kGroupsDescribed) + " more groups";
        text += " in " + flatKey + (mappings ? ", placed by param_slice_mappings" : "");
    }
    text += ". The model's fp32 weights are these flat groups of every rank's *_optim_states.pt; DeepSpeed's "
            "zero_to_fp32.py gathers them into a state dict";
    return text;
}

std::string adamVariant(const Value &optimizerState)
{
    const auto groups = optimizerState.isDict() ? optimizerState.get("param_groups") : nullptr;
    if (!groups || !groups->isSequence() || groups->items().empty())
        return {};
    std::string found;
    for (const auto &group : groups->items()) {
        if (!group || !group->isDict())
            return {};
        std::string variant;
        if (const auto decoupled = group->get("decoupled_weight_decay");
            decoupled && decoupled->kind() == Value::Kind::Bool) {
            variant = decoupled->asBool() ? "AdamW" : "Adam";
        } else {
            std::ptrdiff_t maximize = -1, foreach = -1, at = 0;
            for (const auto &e : group->entries()) {
                if (e.key && e.key->isString() && e.key->text() == "maximize")
                    maximize = at;
                if (e.key && e.key->isString() && e.key->text() == "foreach")
                    foreach = at;
                ++at;
            }
            if (maximize < 0 || foreach < 0)
                return {};
            if (foreach + 1 == maximize)
                variant = "AdamW";
            else if (maximize + 1 == foreach && group->get("differentiable"))
                variant = "Adam";
            else
                return {};
        }
        if (!found.empty() && found != variant)
            return {};
        found = variant;
    }
    return found;
}

std::string optimizerClassName(const Value &optimizerState)
{
    const std::string family = inferOptimizerType(optimizerState);
    const bool amsgrad = family == "Adam (AMSGrad)";
    if (family != "Adam/AdamW" && !amsgrad)
        return family;
    std::string name = adamVariant(optimizerState);
    if (name.empty())
        name = "Adam/AdamW";
    return amsgrad ? name + " (AMSGrad)" : name;
}

} // namespace ckpt
