#include "optimizermap.h"

#include "keyalign.h"
#include "valuetree.h"

#include <algorithm>
#include <array>
#include <map>
#include <string_view>
#include <unordered_map>

namespace ckpt {

namespace {
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

bool shapeFits(const OptimizerParameter &p, const NamedTensor &t)
{
    if (!p.state || !p.state->isDict())
        return true;
    for (const auto &e : p.state->entries())
        if (e.value && e.value->isTensor() && e.value->tensorRef() && !e.value->tensorRef()->shape.empty() &&
            e.value->tensorRef()->shape != t.ref().shape)
            return false;
    return true;
}

// Parameters matched to candidates in order, each to the first later candidate its state's shape
// fits (from the front), or the last earlier one (from the back); empty when some parameter fits
// none. Where both directions give the same matching, it is the only one that keeps the order.
std::vector<std::size_t> embedInOrder(const std::vector<OptimizerParameter> &params,
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
std::vector<std::size_t> matchByUniqueShape(const std::vector<OptimizerParameter> &params,
                                            const std::vector<const NamedTensor *> &candidates)
{
    std::map<std::vector<std::int64_t>, std::vector<std::size_t>> byShape;
    for (std::size_t c = 0; c < candidates.size(); ++c)
        byShape[candidates[c]->ref().shape].push_back(c);
    std::vector<std::size_t> at(params.size());
    std::vector<bool> taken(candidates.size(), false);
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto &p = params[i];
        const std::vector<std::int64_t> *shape = nullptr;
        if (p.state && p.state->isDict())
            for (const auto &e : p.state->entries())
                if (e.value && e.value->isTensor() && e.value->tensorRef() && !e.value->tensorRef()->shape.empty()) {
                    shape = &e.value->tensorRef()->shape;
                    break;
                }
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

// Each parameter named as the optimizer recorded it, checked against the state dict: the name must
// be there (wrapper prefixes such as `module.` aside) and each state tensor must have its shape.
OptimizerMap mapByRecordedNames(const Document &doc, OptimizerMap map, const std::vector<std::string> &recorded)
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
        p.shapeAgrees = !t || shapeFits(p, *t);
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

std::optional<OptimizerMap> mapOptimizer(const Document &doc)
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
    // Candidates in registration order: parameters, without buffers.
    std::vector<const NamedTensor *> candidates;
    for (const auto &t : doc.stateDict) {
        const bool buffer = doc.stateDictSource == "module_tree" ? !t.ref().isParameter : looksLikeBuffer(t.name);
        if (!buffer && couldBeParameter(t))
            candidates.push_back(&t);
    }
    if (map.parameters.empty()) {
        map.note = "the optimizer lists no parameters";
        return map;
    }
    if (!doc.hasStateDict) {
        map.note = "no state dict to map the optimizer's parameters to";
        return map;
    }
    if (allRecorded && recorded.size() == map.parameters.size())
        return mapByRecordedNames(doc, std::move(map), recorded);
    // Several param groups (a head with its own learning rate, decay / no decay) need not list
    // parameters in the model's order; shapes found once each still tell them apart.
    const bool oneGroup = std::all_of(map.parameters.begin(), map.parameters.end(),
                                      [](const auto &p) { return p.group == 0; });
    if (!oneGroup)
        if (const auto at = matchByUniqueShape(map.parameters, candidates); !at.empty()) {
            for (std::size_t i = 0; i < at.size(); ++i)
                map.parameters[i].name = candidates[at[i]]->name;
            map.certain = true;
            map.note = "by shape: each parameter's state has a shape only one weight has (several param groups "
                       "need not follow the model's order)";
            return map;
        }
    // More candidates than parameters (buffers of floating type that no name tells apart, such as
    // the masks of masked layers): keep the order, skip the candidates no parameter's state fits.
    std::vector<std::size_t> at;
    bool unique = false;
    std::size_t skipped = 0;
    if (candidates.size() > map.parameters.size()) {
        at = embedInOrder(map.parameters, candidates, false);
        if (!at.empty()) {
            unique = at == embedInOrder(map.parameters, candidates, true);
            skipped = candidates.size() - map.parameters.size();
        }
    }
    const bool byShape = !at.empty();
    if (!byShape) {
        at.resize(std::min(candidates.size(), map.parameters.size()));
        for (std::size_t i = 0; i < at.size(); ++i)
            at[i] = i;
    }
    bool shapesAgree = true;
    for (std::size_t i = 0; i < at.size(); ++i) {
        auto &p = map.parameters[i];
        const auto &t = *candidates[at[i]];
        p.name = t.name;
        p.shapeAgrees = shapeFits(p, t);
        shapesAgree = shapesAgree && p.shapeAgrees;
    }
    if (byShape) {
        // With several param groups the one order-keeping matching is no proof.
        map.certain = unique && oneGroup;
        map.note = "by registration order and shape, leaving out " + std::to_string(skipped) +
                   " floating state-dict tensors (buffers, or parameters the optimizer does not hold)" +
                   (!oneGroup ? ": names are a guess (several param groups need not follow the model's order)"
                    : unique  ? ": the only order-keeping matching where every state tensor has its parameter's shape"
                              : ": names are likely but not certain (tensors of the same shapes could be swapped)");
    } else if (candidates.size() != map.parameters.size()) {
        map.note = "the optimizer has " + std::to_string(map.parameters.size()) + " parameters and the state dict " +
                   std::to_string(candidates.size()) + ": names are a guess by order";
    } else if (!shapesAgree) {
        map.note = "some state tensors differ in shape from the parameter at the same position: names are uncertain";
    } else if (!oneGroup) {
        map.note = "by registration order, every state tensor with its parameter's shape, but names are a guess: "
                   "several param groups need not follow the model's order, and shapes do not tell them apart";
    } else {
        map.certain = true;
        map.note = "by registration order; every state tensor has its parameter's shape";
    }
    return map;
}

} // namespace ckpt
