#include "optimizermap.h"

#include "valuetree.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace ckpt {

namespace {
bool looksLikeBuffer(const std::string &name)
{
    static constexpr std::array<std::string_view, 3> suffixes{"running_mean", "running_var", "num_batches_tracked"};
    return std::any_of(suffixes.begin(), suffixes.end(), [&name](std::string_view s) { return name.ends_with(s); });
}
} // namespace

std::optional<OptimizerMap> mapOptimizer(const Document &doc)
{
    if (!doc.optimizer)
        return std::nullopt;
    OptimizerMap map;
    const auto groups = doc.optimizer->get("param_groups");
    const auto state = doc.optimizer->get("state");
    if (groups && groups->isSequence())
        for (std::size_t g = 0; g < groups->items().size(); ++g) {
            const auto &group = groups->items()[g];
            const auto params = group && group->isDict() ? group->get("params") : nullptr;
            if (!params || !params->isSequence())
                continue;
            for (const auto &id : params->items())
                if (id && id->isInt())
                    map.parameters.push_back({id->asInt(), g, {}, nullptr, true});
        }
    if (state && state->isDict())
        for (auto &p : map.parameters)
            for (const auto &e : state->entries())
                if (e.key && e.key->isInt() && e.key->asInt() == p.id) {
                    p.state = e.value;
                    break;
                }
    // Candidates in registration order: parameters, without buffers.
    std::vector<const NamedTensor *> candidates;
    for (const auto &t : doc.stateDict) {
        const bool buffer = doc.stateDictSource == "module_tree" ? !t.ref().isParameter : looksLikeBuffer(t.name);
        if (!buffer)
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
    const std::size_t n = std::min(candidates.size(), map.parameters.size());
    bool shapesAgree = true;
    for (std::size_t i = 0; i < n; ++i) {
        auto &p = map.parameters[i];
        p.name = candidates[i]->name;
        if (p.state && p.state->isDict())
            for (const auto &e : p.state->entries())
                if (e.value && e.value->isTensor() && e.value->tensorRef()->shape.size() > 0 &&
                    e.value->tensorRef()->shape != candidates[i]->ref().shape)
                    p.shapeAgrees = false;
        shapesAgree = shapesAgree && p.shapeAgrees;
    }
    if (candidates.size() != map.parameters.size()) {
        map.note = "the optimizer has " + std::to_string(map.parameters.size()) + " parameters and the state dict " +
                   std::to_string(candidates.size()) + ": names are a guess by order";
    } else if (!shapesAgree) {
        map.note = "some state tensors differ in shape from the parameter at the same position: names are uncertain";
    } else {
        map.certain = true;
        map.note = "by registration order; every state tensor has its parameter's shape";
    }
    return map;
}

} // namespace ckpt
