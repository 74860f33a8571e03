#include "document.h"

#include "error.h"
#include "keyalign.h"
#include "picklemachine.h"
#include "metadata.h"
#include "frameworkfiles.h"
#include "optimizermap.h"
#include "pruning.h"
#include "valuetree.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace ckpt {

namespace {

// Bytes of names made from keys for the whole file: a long key shared through the memo and
// nested deep would otherwise make names of gigabytes from a file of kilobytes.
struct NameBudget {
    std::size_t total = 0;
    void charge(std::size_t nameBytes)
    {
        total += nameBytes;
        if (total > PickleLimits::kMaxPathTotalBytes)
            throw FormatError("the tensors' paths together are longer than " +
                              std::to_string(PickleLimits::kMaxPathTotalBytes) +
                              " bytes (long keys nested deep); refusing to name them");
    }
};

// A set of addresses, open addressing in one array: std::unordered_set makes a heap node per
// element, and validateTensors() puts every tensor of the file in two of them.
class AddressSet {
public:
    // True when `p` (never null) was not in the set yet.
    bool insert(const void *p)
    {
        if ((m_size + 1) * 2 > m_slots.size())
            grow();
        return place(p);
    }
    bool contains(const void *p) const
    {
        if (m_slots.empty())
            return false;
        const std::size_t mask = m_slots.size() - 1;
        for (std::size_t i = hash(p) & mask;; i = (i + 1) & mask) {
            if (m_slots[i] == p)
                return true;
            if (!m_slots[i])
                return false;
        }
    }

private:
    std::vector<const void *> m_slots;  // a power of two long, at most half full
    std::size_t m_size = 0;

    static std::size_t hash(const void *p)
    {
        auto x = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        return static_cast<std::size_t>(x);
    }
    bool place(const void *p)
    {
        const std::size_t mask = m_slots.size() - 1;
        for (std::size_t i = hash(p) & mask;; i = (i + 1) & mask) {
            if (!m_slots[i]) {
                m_slots[i] = p;
                ++m_size;
                return true;
            }
            if (m_slots[i] == p)
                return false;
        }
    }
    void grow()
    {
        std::vector<const void *> old = std::move(m_slots);
        m_slots.assign(std::max<std::size_t>(64, old.size() * 2), nullptr);
        m_size = 0;
        for (const void *p : old)
            if (p)
                place(p);
    }
};

bool isTensorDict(const Value &v)
{
    if (!v.isDict() || v.entries().empty())
        return false;
    return std::all_of(v.entries().begin(), v.entries().end(), [](const Value::DictEntry &e) {
        return e.key && e.key->isString() && e.value && e.value->isTensor();
    });
}

// A state dict that also carries a few non-tensor entries (an injected object, a version string):
// most values are tensors and none of the others hold tensors.
bool isMostlyTensorDict(const Value &v)
{
    if (!v.isDict() || v.entries().empty())
        return false;
    std::size_t tensors = 0;
    for (const auto &e : v.entries()) {
        if (!e.key || !e.value)
            return false;
        if (e.value->isTensor())
            ++tensors;
        else if (e.value->isDict() || e.value->isSequence())
            return false;
    }
    return tensors * 2 > v.entries().size();
}

// torch.ScriptObject: how torch.save pickles a torch.classes object (the packed weights of a
// quantized Linear or LSTM) that a module or a state dict holds: BUILD gives it its __getstate__,
// a tuple (state, class name).
bool isPackedObject(const Value &v)
{
    return v.kind() == Value::Kind::Object && className(v) == "torch.ScriptObject";
}

// The state and torch.classes name of a packed object; null when it has no such state.
const Value *packedState(const Value &v, std::string &cls)
{
    const auto &st = v.state();
    if (!st || !st->isSequence() || st->items().size() != 2 || !st->items()[1] || !st->items()[1]->isString())
        return nullptr;
    cls = st->items()[1]->text();
    return st->items()[0].get();
}

// A tuple of tensors (and None), as a quantized Linear's state_dict() saves its packed weight and
// bias under `_packed_params`.
bool isTensorTuple(const Value &v)
{
    if (v.kind() != Value::Kind::Tuple || v.items().empty())
        return false;
    bool any = false;
    for (const auto &i : v.items()) {
        if (!i || !(i->isTensor() || i->isNone()))
            return false;
        any = any || i->isTensor();
    }
    return any;
}

// The tensors of a packed value kept under state-dict key `name`, named as a reader of torch's
// state_dict() reaches them: the key itself for a tensor, key.0 and key.1 for a Linear's packed
// (weight, bias), as state_dict() saves them in a tuple; a dynamic LSTM cell's weight_ih, weight_hh,
// bias_ih and bias_hh after the key that holds the cell (its layer and direction); any other packed
// object's tensors numbered key.0, key.1, ... in the order its state holds them. A tensor met again
// (the bias a cell also keeps inside its packed Linear) is listed once.
class PackedNamer {
public:
    PackedNamer(std::vector<NamedTensor> &out, NameBudget &budget) : m_out(out), m_budget(budget) {}

    void add(const ValuePtr &v, const std::string &name)
    {
        if (!v)
            return;
        if (v->isTensor()) {
            emit(name, v);
            return;
        }
        if (isTensorTuple(*v)) {
            for (std::size_t i = 0; i < v->items().size(); ++i)
                if (v->items()[i]->isTensor())
                    emit(name + "." + std::to_string(i), v->items()[i]);
            return;
        }
        std::string cls;
        const Value *state = isPackedObject(*v) ? packedState(*v, cls) : nullptr;
        if (!state)
            return;
        if (cls.ends_with(".LinearPackedParamsBase") && isTensorTuple(*state)) {
            for (std::size_t i = 0; i < state->items().size(); ++i)
                if (state->items()[i]->isTensor())
                    emit(name + "." + std::to_string(i), state->items()[i]);
            return;
        }
        if (cls.ends_with(".CellParamsBase") && namedCell(*state, name))
            return;
        std::size_t n = 0;
        numbered(*state, name, n, 0);
    }

private:
    std::vector<NamedTensor> &m_out;
    NameBudget &m_budget;
    std::unordered_set<const Value *> m_seen;
    std::unordered_set<const Value *> m_walked;  // containers numbered() has been through

    void emit(const std::string &name, const ValuePtr &t)
    {
        if (!m_seen.insert(t.get()).second)
            return;
        m_budget.charge(name.size());
        m_out.push_back({name, t});
    }

    // A dynamic quantized LSTM/GRU cell: ('quantized_dynamic', [bias_ih, bias_hh], [], [...],
    // [packed weight_ih, packed weight_hh]), each packed weight a Linear's (weight, bias).
    bool namedCell(const Value &state, const std::string &name)
    {
        const auto &it = state.items();
        if (state.kind() != Value::Kind::Tuple || it.size() != 5 || !it[0] || !it[0]->isString() ||
            it[0]->text() != "quantized_dynamic" || !it[1] || !it[1]->isSequence() || it[1]->items().size() != 2 ||
            !it[4] || !it[4]->isSequence() || it[4]->items().size() != 2)
            return false;
        std::vector<ValuePtr> weights;
        for (const auto &packed : it[4]->items()) {
            std::string cls;
            const Value *w = packed && isPackedObject(*packed) ? packedState(*packed, cls) : nullptr;
            if (!w || !cls.ends_with(".LinearPackedParamsBase") || !isTensorTuple(*w) || !w->items()[0]->isTensor())
                return false;
            weights.push_back(w->items()[0]);
        }
        for (const auto &b : it[1]->items())
            if (!b || !b->isTensor())
                return false;
        emit(name + ".weight_ih", weights[0]);
        emit(name + ".weight_hh", weights[1]);
        emit(name + ".bias_ih", it[1]->items()[0]);
        emit(name + ".bias_hh", it[1]->items()[1]);
        return true;
    }

    void numbered(const Value &v, const std::string &name, std::size_t &n, std::uint32_t depth)
    {
        // Each container once: a pickle can share one tuple at every level, and re-walking it
        // would take 2^depth steps for a few hundred bytes.
        if (depth > PickleLimits::kMaxDepth || !m_walked.insert(&v).second)
            return;
        for (const auto &c : childrenOf(v, ChildLabels::Deferred)) {
            if (!c.value || c.role == ChildRole::Args)
                continue;
            if (c.value->isTensor()) {
                if (!m_seen.contains(c.value.get()))
                    emit(name + "." + std::to_string(n++), c.value);
            } else if (c.value->isContainer()) {
                numbered(*c.value, name, n, depth + 1);
            }
        }
    }
};

// A state dict of a quantized model: string keys, each value a tensor, packed weights (a
// torch.ScriptObject, or a tuple of tensors) or a small plain value (the packed params' dtype),
// with some packed weights among them. A training checkpoint's nested dicts and lists are not.
bool isPackedStateDict(const Value &v)
{
    if (!v.isDict() || v.entries().empty())
        return false;
    bool packed = false;
    std::size_t weights = 0;
    for (const auto &e : v.entries()) {
        if (!e.key || !e.key->isString() || !e.value)
            return false;
        const Value &x = *e.value;
        // A tuple of tensors is packed weights only under the name quantized modules save them by.
        const bool holder = isPackedObject(x) || (isTensorTuple(x) && e.key->text().ends_with("_packed_params"));
        if (!holder && !x.isTensor() && x.isContainer())
            return false;
        packed = packed || holder;
        weights += holder || x.isTensor() ? 1 : 0;
    }
    return packed && weights * 2 > v.entries().size();
}

// A TorchScript object: a `__torch__` class whose attributes hold its tensors and submodules.
bool isScriptObject(const Value &v)
{
    return v.kind() == Value::Kind::Object && v.state() && v.state()->isDict() && className(v).starts_with("__torch__.");
}

// Every tensor a TorchScript object holds, named by attribute path: parameters and buffers,
// and tensors kept inside packed parameter objects (quantized and XNNPACK contexts).
void flattenScriptObject(const Value &obj, const std::string &prefix, std::vector<NamedTensor> &out,
                         std::unordered_set<const Value *> &seen, std::uint32_t depth, NameBudget &budget)
{
    if (depth > PickleLimits::kMaxDepth || !seen.insert(&obj).second)
        return;
    for (const auto &c : childrenOf(obj, ChildLabels::Deferred)) {
        if (!c.value || c.role == ChildRole::Args)
            continue;
        if (!c.value->isTensor() && !c.value->isContainer())
            continue;  // names only for what can hold tensors
        const bool anonymous = c.role == ChildRole::State;
        if (!anonymous)
            budget.charge(prefix.size() + childLabelSize(c));
        const std::string name = anonymous ? prefix : prefix + childLabel(c);
        if (c.value->isTensor()) {
            out.push_back({anonymous ? (prefix.empty() ? std::string("(state)") : prefix.substr(0, prefix.size() - 1))
                                     : name,
                           c.value});
        } else if (c.value->isContainer()) {
            flattenScriptObject(*c.value, anonymous ? prefix : name + ".", out, seen, depth + 1, budget);
        }
    }
}

// torch's state_dict() of a TorchScript module, named from its classes' __parameters__ and
// __buffers__ declarations: per module its parameters, then its buffers (each in attribute order,
// None skipped), then its submodules; a plain tensor attribute is neither and is left out, as torch
// leaves it out. Quantized and XNNPACK weights live in packed objects (torch.classes) or in modules
// saved through their __getstate__ (a tuple, not attributes), which torch's state_dict() of a script
// module skips: their tensors go to `packed`, named by attribute path, so the weights stay listed. False when a module's class declared nothing (its code record is missing, does not
// read or is of another form): the caller then names tensors as without declarations.
struct DeclaredScriptWalk {
    DeclaredScriptWalk(const ScriptClasses &c, std::vector<NamedTensor> &o, std::vector<NamedTensor> &p)
        : classes(c), out(o), packed(p)
    {
    }
    const ScriptClasses &classes;
    std::vector<NamedTensor> &out;
    std::vector<NamedTensor> &packed;
    std::vector<ValuePtr> parameters;
    std::unordered_set<const Value *> seen;
    NameBudget budget;
    // Per declaration, its names as sets: a class with many names used by many modules is hashed once.
    std::unordered_map<const ScriptClassDecl *, std::pair<std::unordered_set<std::string_view>, std::unordered_set<std::string_view>>> sets;

    bool walk(const Value &obj, const std::string &prefix, std::uint32_t depth)
    {
        if (depth > PickleLimits::kMaxDepth)
            return false;
        if (!seen.insert(&obj).second)
            return true;  // a module reached twice is listed once, as for a pickled module tree
        const ScriptClassDecl *decl = classes.find(className(obj));
        if (!decl || !obj.state() || !obj.state()->isDict())
            return false;
        auto [it, fresh] = sets.try_emplace(decl);
        if (fresh) {
            it->second.first.insert(decl->parameters.begin(), decl->parameters.end());
            it->second.second.insert(decl->buffers.begin(), decl->buffers.end());
        }
        const auto &[params, buffers] = it->second;
        const auto &attrs = obj.state()->entries();
        for (const auto *names : {&params, &buffers})
            for (const auto &e : attrs) {
                if (!e.key || !e.key->isString() || !e.value || !e.value->isTensor() || !names->contains(e.key->text()))
                    continue;
                budget.charge(prefix.size() + e.key->text().size());
                out.push_back({prefix + e.key->text(), e.value});
                if (names == &params)
                    parameters.push_back(e.value);
            }
        for (const auto &e : attrs) {
            if (!e.key || !e.value || e.value->kind() != Value::Kind::Object)
                continue;
            const std::string cls = className(*e.value);
            if (cls.starts_with("__torch__.torch.classes.") || (e.value->state() && !e.value->state()->isDict())) {
                budget.charge(prefix.size() + keyText(*e.key).size() + 1);
                flattenScriptObject(*e.value, prefix + keyText(*e.key) + ".", packed, seen, depth + 1, budget);
            } else if (isScriptModule(*e.value) || (isScriptObject(*e.value) && classes.find(cls))) {
                const std::string key = keyText(*e.key);
                budget.charge(prefix.size() + key.size() + 1);
                if (!walk(*e.value, prefix + key + ".", depth + 1))
                    return false;
            }
        }
        return true;
    }
};

bool isOptimizerState(const Value &v)
{
    if (!v.isDict())
        return false;
    auto state = v.get("state");
    auto groups = v.get("param_groups");
    return state && state->isDict() && groups && groups->isSequence();
}

// A module's parameters and persistent buffers, then its children's, as state_dict() orders them.
// A submodule registered under two names (a shared block) is listed under both, as torch's
// state_dict() lists it; `seen` holds the modules on the current path only, so that a module that
// contains itself ends there. A tree that spells out more names than the budget is refused.
void flattenModule(const Value &module, const std::string &prefix, std::vector<NamedTensor> &out,
                   std::unordered_set<const Value *> &seen, std::uint32_t depth, NameBudget &budget)
{
    if (depth > PickleLimits::kMaxDepth || !seen.insert(&module).second)
        return;
    struct Leave {
        std::unordered_set<const Value *> &seen;
        const Value *module;
        ~Leave() { seen.erase(module); }
    } leave{seen, &module};
    const auto &attrs = module.state();
    std::unordered_set<std::string> nonPersistent;
    if (auto np = attrs->get("_non_persistent_buffers_set"); np && (np->kind() == Value::Kind::Set || np->isSequence()))
        for (const auto &n : np->items())
            if (n && n->isString())
                nonPersistent.insert(n->text());
    for (const char *group : {"_parameters", "_buffers"}) {
        auto d = attrs->get(group);
        if (!d || !d->isDict())
            continue;
        for (const auto &e : d->entries()) {
            if (!e.key || !e.value || !e.value->isTensor())
                continue;  // None entries (a Linear without bias) are not saved
            const std::string name = keyText(*e.key);
            if (std::string_view(group) == "_buffers" && nonPersistent.contains(name))
                continue;
            budget.charge(prefix.size() + name.size());
            out.push_back({prefix + name, e.value});
        }
    }
    // Quantized modules keep their weights packed in torch.classes objects among their attributes,
    // which their state_dict() saves under the attribute's name (PackedParameter's `param`,
    // LinearPackedParams' `_packed_params`).
    if (attrs->isDict())
        for (const auto &e : attrs->entries())
            if (e.key && e.key->isString() && e.value && isPackedObject(*e.value)) {
                PackedNamer namer(out, budget);
                namer.add(e.value, prefix + e.key->text());
            }
    if (auto children = attrs->get("_modules"); children && children->isDict())
        for (const auto &e : children->entries())
            if (e.key && e.value && isModule(*e.value) && !seen.contains(e.value.get())) {
                std::string key = keyText(*e.key);
                budget.charge(prefix.size() + key.size() + 1);
                flattenModule(*e.value, prefix + key + ".", out, seen, depth + 1, budget);
            }
}

std::vector<NamedTensor> tensorsOfDict(const Value &d)
{
    std::vector<NamedTensor> out;
    out.reserve(d.entries().size());
    NameBudget budget;
    PackedNamer packed(out, budget);
    for (const auto &e : d.entries())
        if (e.value && e.value->isTensor())
            out.push_back({keyText(*e.key), e.value});
        else if (e.key && e.key->isString() && e.value && (isPackedObject(*e.value) || isTensorTuple(*e.value)))
            packed.add(e.value, e.key->text());  // a quantized model's packed weights
    return out;
}

// Validates every tensor reachable from the root once, whatever path reaches it, and lists each
// with the first path (in document order) that reaches it. Paths are kept as links to the parent's
// and made into text only for tensors: a long key nested deep costs its length once, not per level.
void validateTensors(Document &doc)
{
    struct PathNode {
        std::size_t parent;      // index into nodes; kNoParent at a root
        std::size_t size;        // length of the whole path's text
        const Value *key;        // the label is keyText(*key) when set (no copy of a long key)
        std::string label;
    };
    constexpr std::size_t kNoParent = ~std::size_t(0);
    std::vector<PathNode> nodes{{kNoParent, 11, nullptr, "(constants)"}, {kNoParent, 0, nullptr, ""}};
    std::vector<std::size_t> chain;  // reused: one path is made per tensor
    auto pathOf = [&nodes, &chain](std::size_t n) {
        chain.clear();
        for (; n != kNoParent; n = nodes[n].parent)
            chain.push_back(n);
        std::string path;
        path.reserve(nodes[chain.front()].size);
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            const auto &node = nodes[*it];
            if (!path.empty())
                path += '.';
            path += node.key ? (node.key->isString() ? node.key->text() : keyText(*node.key)) : node.label;
        }
        return path;
    };
    NameBudget budget;
    AddressSet seen;
    AddressSet checked;
    std::vector<std::pair<ValuePtr, std::size_t>> stack{{doc.constants, 0}, {doc.root, 1}};
    std::size_t reported = 0;
    while (!stack.empty()) {
        auto [v, node] = std::move(stack.back());
        stack.pop_back();
        if (!v || !seen.insert(v.get()))
            continue;
        if (v->isTensor() && v->tensorRef() && checked.insert(v->tensorRef().get())) {
            budget.charge(nodes[node].size);
            std::string path = pathOf(node);
            const auto &problem = v->tensorRef()->validate();
            if (!problem.empty() && reported++ < 50)
                doc.warnings.push_back("tensor '" + path + "': " + problem);
            doc.tensors.push_back({path.empty() ? std::string("tensor") : std::move(path), v});
        }
        auto children = childrenOf(*v, ChildLabels::Deferred);
        for (auto it = children.rbegin(); it != children.rend(); ++it) {
            // Only tensors and containers can hold or be a tensor: scalars need neither a visit
            // nor a path (they are half of the values of a state dict: its keys' and shapes' ints).
            if (!it->value || !(it->value->isTensor() || it->value->isContainer()) || seen.contains(it->value.get()))
                continue;
            const std::size_t parentSize = nodes[node].size;
            const std::size_t labelSize = childLabelSize(*it);
            nodes.push_back({node, parentSize == 0 ? labelSize : parentSize + 1 + labelSize, it->key,
                             std::move(it->label)});
            stack.emplace_back(std::move(it->value), nodes.size() - 1);
        }
    }
    if (reported > 50)
        doc.warnings.push_back(std::to_string(reported - 50) + " more tensors do not fit their storage");
}

constexpr std::array<std::string_view, 14> kStateDictKeys{
    "model_state_dict", "state_dict", "model", "net", "network", "module", "model_state",
    "weights", "params", "generator", "ema", "model_ema", "state_dict_ema", "student",
};
constexpr std::array<std::string_view, 7> kOptimizerKeys{
    "optimizer_state_dict", "optimizer", "optim", "optimizer_state", "opt", "optimizers", "optimizer_states",
};
constexpr std::array<std::string_view, 14> kTrainingKeys{
    "epoch", "epochs", "global_step", "step", "iteration", "iter", "train_loss", "val_loss",
    "loss", "best_acc", "best_prec1", "best_loss", "lr_scheduler", "scheduler",
};
constexpr std::array<std::string_view, 11> kInferenceKeys{
    "class_names", "classes", "labels", "idx_to_class", "input_mean", "input_std", "preprocessing",
    "model_config", "config", "architecture", "normalization",
};

bool hasAnyKey(const Value &d, auto keys)
{
    return std::any_of(keys.begin(), keys.end(), [&d](std::string_view k) { return d.get(std::string(k)) != nullptr; });
}

void useStateDict(Document &doc, const ValuePtr &v, KeyPath path, const ScriptClasses &classes)
{
    doc.scriptDeclared = false;
    doc.hasStateDict = true;
    doc.stateDictPath = std::move(path);
    if (isModule(*v)) {
        doc.stateDictSource = "module_tree";
        std::unordered_set<const Value *> seen;
        NameBudget budget;
        flattenModule(*v, "", doc.stateDict, seen, 0, budget);
    } else if (isScriptObject(*v)) {
        doc.stateDictSource = "script_module";
        std::vector<NamedTensor> declared;
        std::vector<NamedTensor> packed;
        DeclaredScriptWalk walk(classes, declared, packed);
        if (walk.walk(*v, "", 0)) {
            doc.stateDict = std::move(declared);
            doc.stateDict.insert(doc.stateDict.end(), packed.begin(), packed.end());
            // torch.jit.load makes these nn.Parameters; the pickle saved them as plain tensors.
            for (const auto &p : walk.parameters)
                p->tensorRef()->isParameter = true;
            doc.scriptDeclared = true;
        } else {
            std::unordered_set<const Value *> seen;
            NameBudget budget;
            flattenScriptObject(*v, "", doc.stateDict, seen, 0, budget);
        }
    } else {
        doc.stateDictSource = "dict";
        doc.stateDict = tensorsOfDict(*v);
    }
    doc.weightPaths.push_back(doc.stateDictPath);
}

// The optimizer state `v` is or holds, with its path below `v`'s: an optimizer's state dict, a
// pickled optimizer instance (as what its state_dict() would give), or an object that keeps one as
// an attribute (OpenNMT's Optim keeps its torch.optim.Adam as `optimizer`). Null when none.
// `read`: the objects already read as pickled optimizers, and what each gave. Reading one walks its
// param groups, and a pickle's memo can put one object under every key and attribute of the file.
using PickledOptimizers = std::unordered_map<const Value *, ValuePtr>;
ValuePtr optimizerIn(const ValuePtr &v, KeyPath &path, PickledOptimizers &read)
{
    if (!v)
        return nullptr;
    if (isOptimizerState(*v))
        return v;
    const auto pickled = [&read](const ValuePtr &x) {
        const auto [it, added] = read.try_emplace(x.get());
        if (added)
            it->second = pickledOptimizerState(*x);
        return it->second;
    };
    if (auto state = pickled(v))
        return state;
    // DeepSpeed's ZeRO optimizers save the torch optimizer's state dict inside their own: stages 1
    // and 2 as `base_optimizer_state` (beside single_partition_of_fp32_groups), stage 3 as
    // `optimizer_state_dict` (beside fp32_flat_groups).
    if (v->isDict())
        for (const char *key : {"base_optimizer_state", "optimizer_state_dict"})
            if (const auto inner = v->get(key); inner && isOptimizerState(*inner)) {
                path.push_back(key);
                return inner;
            }
    if (v->kind() == Value::Kind::Object && v->state() && v->state()->isDict())
        for (const auto &e : v->state()->entries())
            if (e.key && e.key->isString() && e.value)
                if (auto state = pickled(e.value)) {
                    path.push_back(e.key->text());
                    return state;
                }
    return nullptr;
}

void findOptimizer(Document &doc, const Value &root)
{
    // torch.save(optimizer.state_dict()) alone (Hugging Face Trainer's optimizer.pt).
    if (doc.root.get() == &root && isOptimizerState(root)) {
        doc.optimizer = doc.root;
        doc.optimizerPath.clear();
        return;
    }
    PickledOptimizers read;
    for (auto key : kOptimizerKeys) {
        auto v = root.get(std::string(key));
        if (!v)
            continue;
        KeyPath path{std::string(key)};
        if (auto state = optimizerIn(v, path, read)) {
            doc.optimizer = state;
            doc.optimizerPath = std::move(path);
            return;
        }
        // Lightning and multi-optimizer files keep a list of optimizer states.
        if (v->isSequence() && !v->items().empty() && v->items()[0] && isOptimizerState(*v->items()[0])) {
            doc.optimizer = v->items()[0];
            doc.optimizerPath = {std::string(key), "0"};
            return;
        }
    }
    for (const auto &e : root.entries()) {
        if (!e.key || !e.value)
            continue;
        KeyPath path{keyText(*e.key)};
        if (auto state = optimizerIn(e.value, path, read)) {
            doc.optimizer = state;
            doc.optimizerPath = std::move(path);
            return;
        }
    }
}

constexpr const char *kOptimizerAlone =
    "the file holds an optimizer's state alone (its param groups and per-parameter state), no model weights";

// DeepSpeed ZeRO stage 3 saves each rank's model states with the parameters partitioned: the
// module's state dict holds an empty tensor per parameter, the real shapes are under `param_shapes`
// (a dict per param group, as DeepSpeed's zero_to_fp32.py reads them) and the weights are in the
// *_optim_states.pt files. Such a state dict is no set of weights: set aside, and said why. A
// parameter of real size (stage 1 and 2 keep the fp16 weights there) keeps it.
void setAsidePlaceholders(Document &doc, const Value &root)
{
    const auto shapes = root.get("param_shapes");
    if (!shapes || !(shapes->isDict() || shapes->isSequence()))
        return;
    // Each group dict once, each shape at most kMaxShapeDims long and each name counted once: the
    // pickle's memo can list one dict, or one long list as every shape, any number of times.
    constexpr std::size_t kMaxShapeDims = 64;
    std::vector<const Value *> groups;
    std::unordered_set<const Value *> seenGroups;
    if (shapes->isDict())
        groups.push_back(shapes.get());
    else
        for (const auto &g : shapes->items())
            if (g && g->isDict() && seenGroups.insert(g.get()).second)
                groups.push_back(g.get());
    std::unordered_map<std::string_view, const NamedTensor *> byName;
    for (const auto &t : doc.stateDict)
        byName.emplace(t.name, &t);
    std::unordered_set<const NamedTensor *> counted;
    std::size_t placeholders = 0;
    std::string example;
    for (const auto *g : groups)
        for (const auto &e : g->entries()) {
            if (!e.key || !e.key->isString() || !e.value || !e.value->isSequence() ||
                e.value->items().size() > kMaxShapeDims)
                continue;
            const auto it = byName.find(e.key->text());
            if (it == byName.end() || counted.contains(it->second))
                continue;
            std::vector<std::int64_t> shape;
            for (const auto &d : e.value->items())
                if (d && d->isInt() && d->asInt() > 0)
                    shape.push_back(d->asInt());
            if (shape.size() != e.value->items().size())
                continue;  // a shape with no elements, or not of integers: nothing to tell by it
            if (it->second->ref().numel() != 0)
                return;  // real weights
            counted.insert(it->second);
            if (placeholders++ == 0)
                example = e.key->text() + " " + shapeText(shape);
        }
    if (!placeholders)
        return;
    std::string stage = "3";
    if (const auto config = root.get("ds_config"); config && config->isDict())
        if (const auto zero = config->get("zero_optimization"); zero && zero->isDict())
            if (const auto n = zero->get("stage"); n && n->isInt())
                stage = std::to_string(n->asInt());
    doc.noWeightsReason =
        "'" + pathText(doc.stateDictPath) + "' holds " + std::to_string(placeholders) +
        (placeholders == 1 ? " empty placeholder" : " empty placeholders") +
        ", not weights: the file is the model states of a DeepSpeed ZeRO stage " + stage +
        " checkpoint, whose parameters are partitioned across ranks (their shapes are under 'param_shapes', such as " +
        example + "); the weights are in the *_optim_states.pt files beside it, which DeepSpeed's zero_to_fp32.py "
                  "gathers into a state dict";
    doc.warnings.push_back(doc.noWeightsReason);
    std::erase(doc.weightPaths, doc.stateDictPath);
    doc.hasStateDict = false;
    doc.scriptDeclared = false;
    doc.stateDict.clear();
    doc.stateDictSource.clear();
    doc.stateDictPath.clear();
}

bool isLightning(const Value &root)
{
    return root.get("pytorch-lightning_version") ||
           (root.get("state_dict") &&
            (root.get("optimizer_states") || root.get("lr_schedulers") || root.get("loops") || root.get("callbacks")));
}

// The kind of a dict root that is not a state dict itself, once its weights (a module tree when
// `fromModule`) and optimizer are found.
DocumentKind kindOfDictRoot(const Document &doc, const Value &root, bool fromModule)
{
    if (isLightning(root))
        return DocumentKind::LightningCheckpoint;
    // An optimizer's state saved alone: the file is the state dict, or DeepSpeed's optimizer
    // partition. (Training state without weights, such as AllenNLP's training_state.th with its
    // metric tracker beside the optimizer, stays a training checkpoint.)
    if (doc.optimizer && !doc.hasStateDict && (doc.optimizerPath.empty() || !deepSpeedPartition(doc).empty()))
        return DocumentKind::OptimizerState;
    if (doc.optimizer || (doc.hasStateDict && hasAnyKey(root, kTrainingKeys)))
        return DocumentKind::TrainingCheckpoint;  // training state may keep its weights elsewhere
    if (doc.hasStateDict && hasAnyKey(root, kInferenceKeys))
        return DocumentKind::InferencePackage;
    if (fromModule)
        return DocumentKind::FullModel;
    if (doc.hasStateDict && doc.stateDictPath.size() == 1 && root.entries().size() == 1)
        return DocumentKind::StateDict;  // a state dict wrapped under one key
    return DocumentKind::Generic;
}

} // namespace

void classifyKind(Document &doc);

namespace {
// How a warning that the optimizer was paired by file order begins (replaced when paired again).
constexpr std::string_view kPairedByOrder = "optimizer paired by order: ";
std::string quoted(const KeyPath &path);
void pairOptimizer(Document &doc);
} // namespace

std::string kindName(DocumentKind k)
{
    switch (k) {
    case DocumentKind::StateDict: return "state_dict";
    case DocumentKind::TrainingCheckpoint: return "training_checkpoint";
    case DocumentKind::InferencePackage: return "inference_package";
    case DocumentKind::FullModel: return "full_model";
    case DocumentKind::LightningCheckpoint: return "lightning_checkpoint";
    case DocumentKind::Tensor: return "tensor";
    case DocumentKind::ScriptModule: return "torchscript_module";
    case DocumentKind::Generic: return "generic";
    case DocumentKind::OptimizerState: return "optimizer_state";
    }
    return "?";
}

void detectConventions(Document &doc);

void classify(Document &doc)
{
    classifyKind(doc);
    detectConventions(doc);
}

void classifyKind(Document &doc)
{
    validateTensors(doc);
    const ValuePtr &root = doc.root;
    doc.kind = DocumentKind::Generic;
    if (!root)
        return;
    if (root->isTensor()) {
        doc.kind = DocumentKind::Tensor;
        doc.hasStateDict = true;
        doc.stateDictSource = "dict";
        doc.stateDict.push_back({"tensor", root});
        return;
    }
    if (isModule(*root)) {
        doc.kind = DocumentKind::FullModel;
        useStateDict(doc, root, {}, doc.scriptClasses);
        return;
    }
    if (isScriptObject(*root)) {
        doc.kind = DocumentKind::ScriptModule;
        useStateDict(doc, root, {}, doc.scriptClasses);
        if (doc.constants) {
            std::unordered_set<const Value *> seen;
            std::vector<NamedTensor> constants;
            NameBudget budget;
            flattenScriptObject(*doc.constants, "constants.", constants, seen, 0, budget);
            doc.stateDict.insert(doc.stateDict.end(), constants.begin(), constants.end());
        }
        return;
    }
    if (!root->isDict()) {
        // torch.save(optimizer): the instance, read as what its state_dict() would give.
        if (auto state = pickledOptimizerState(*root)) {
            doc.optimizer = std::move(state);
            doc.optimizerPath.clear();
            doc.kind = DocumentKind::OptimizerState;
            doc.noWeightsReason = kOptimizerAlone;
        }
        return;
    }
    if (isTensorDict(*root) || isMostlyTensorDict(*root) || isPackedStateDict(*root)) {
        doc.kind = DocumentKind::StateDict;
        useStateDict(doc, root, {}, doc.scriptClasses);
        const bool quantized = isPackedStateDict(*root);
        for (const auto &e : root->entries())
            if (e.value && !e.value->isTensor() &&
                !(quantized && (isPackedObject(*e.value) || isTensorTuple(*e.value) ||
                                e.value->kind() == Value::Kind::Global)))
                doc.warnings.push_back("the state dict also holds a non-tensor entry '" + keyText(*e.key) + "' (" +
                                       e.value->typeName() + ")");
        return;
    }
    // Every weight set under the root, one or two levels down; the model's is the first of the
    // usual keys (model before EMA), else the largest. The others are listed.
    struct WeightSet {
        KeyPath path;
        ValuePtr value;
        std::size_t priority;
        std::size_t count;
    };
    auto isWeights = [](const Value &v) {
        return isTensorDict(v) || isPackedStateDict(v) || isModule(v) || isScriptObject(v);
    };
    // Normalisation constants kept as tensors ({'mean': tensor([...]), 'std': ...}) are a dict of
    // tensors too, but no model's weights.
    auto isPreprocessing = [](const std::string &key) {
        return key == "preprocessing" || key == "normalization" || key == "normalisation" || key == "transform" ||
               key == "transforms";
    };
    auto priorityOf = [](const std::string &key) {
        auto it = std::find(kStateDictKeys.begin(), kStateDictKeys.end(), key);
        return it == kStateDictKeys.end() ? kStateDictKeys.size() : static_cast<std::size_t>(it - kStateDictKeys.begin());
    };
    auto sizeOf = [](const Value &v) { return v.isDict() ? v.entries().size() : std::size_t(1); };
    std::vector<WeightSet> sets;
    // An optimizer's per-parameter state ({'step', 'exp_avg', 'exp_avg_sq'} under each id) reads
    // like dicts of tensors, but it is no set of weights: an optimizer is not searched.
    const bool optimizerRoot = isOptimizerState(*root);
    for (const auto &e : root->entries()) {
        if (!e.key || !e.value)
            continue;
        const std::string k = keyText(*e.key);
        if (isPreprocessing(k) || (optimizerRoot && (k == "state" || k == "param_groups")))
            continue;
        if (isWeights(*e.value)) {
            sets.push_back({{k}, e.value, priorityOf(k), sizeOf(*e.value)});
        } else if (e.value->isDict() && !isOptimizerState(*e.value)) {
            for (const auto &e2 : e.value->entries())
                if (e2.key && e2.value && !isPreprocessing(keyText(*e2.key)) && isWeights(*e2.value))
                    sets.push_back({{k, keyText(*e2.key)}, e2.value, kStateDictKeys.size() + 1, sizeOf(*e2.value)});
        }
    }
    bool fromModule = false;
    if (!sets.empty()) {
        const auto best = std::min_element(sets.begin(), sets.end(), [](const WeightSet &a, const WeightSet &b) {
            return a.priority != b.priority ? a.priority < b.priority : a.count > b.count;
        });
        fromModule = isModule(*best->value);
        useStateDict(doc, best->value, best->path, doc.scriptClasses);
        for (const auto &w : sets)
            if (&w != &*best) {
                doc.otherWeightSets.push_back(w.path);
                doc.weightPaths.push_back(w.path);
            }
    }
    if (doc.hasStateDict)
        setAsidePlaceholders(doc, *root);
    findOptimizer(doc, *root);
    // A GAN's optimizers need not come in the order of its networks: paired by shape.
    if (!sets.empty())
        pairOptimizer(doc);
    doc.kind = kindOfDictRoot(doc, *root, fromModule);
    if (doc.kind == DocumentKind::OptimizerState && doc.noWeightsReason.empty()) {
        const std::string partition = deepSpeedPartition(doc);
        doc.noWeightsReason = partition.empty() ? std::string(kOptimizerAlone)
                                                : "the file holds no model weights: it is a " + partition;
    }
}

namespace {
bool allNamesStartWith(const std::vector<NamedTensor> &tensors, std::string_view prefix)
{
    return !tensors.empty() && std::all_of(tensors.begin(), tensors.end(),
                                           [prefix](const NamedTensor &t) { return t.name.starts_with(prefix); });
}

} // namespace

void detectConventions(Document &doc)
{
    auto &c = doc.conventions;
    const auto &root = doc.root;
    const bool dict = root && root->isDict();
    if (doc.kind == DocumentKind::LightningCheckpoint) {
        std::string version;
        if (auto v = root->get("pytorch-lightning_version"); v && v->isString())
            version = " " + v->text();
        c.push_back("PyTorch Lightning checkpoint" + version);
        for (const char *k : {"hyper_parameters", "callbacks", "loops", "lr_schedulers", "optimizer_states"})
            if (root->get(k))
                c.push_back(std::string("Lightning ") + k);
    }
    if (dict && root->get("model") && root->get("optimizer") && root->get("epoch") &&
        (root->get("args") || root->get("lr_scheduler")))
        c.push_back("torchvision reference-script checkpoint (model, optimizer, lr_scheduler, epoch, args)");
    if (dict && root->get("model") && root->get("ema") && isModule(*root->get("model")))
        c.push_back("YOLO-style checkpoint: full models under 'model' and 'ema'");
    for (const char *k : {"ema", "model_ema", "state_dict_ema", "ema_state_dict"})
        if (dict && root->get(k))
            c.push_back(std::string("EMA weights under '") + k + "'");
    if (doc.path.ends_with("pytorch_model.bin") || doc.path.ends_with("pytorch_model.bin.index.json"))
        c.push_back("Hugging Face pytorch_model.bin");
    if (allNamesStartWith(doc.stateDict, "module."))
        c.push_back("keys carry the 'module.' prefix of DataParallel/DistributedDataParallel");
    if (std::any_of(doc.stateDict.begin(), doc.stateDict.end(),
                    [](const NamedTensor &t) { return isAveragedModelCounter(t.name); })) {
        std::vector<std::string> names;
        names.reserve(doc.stateDict.size());
        for (const auto &t : doc.stateDict)
            names.push_back(t.name);
        if (averagedModelCounter(names) != std::string::npos)
            c.push_back("torch.optim.swa_utils.AveragedModel (SWA or EMA): the model's keys carry its 'module.' "
                        "prefix; n_averaged is the count of models averaged, not a weight");
    }
    if (allNamesStartWith(doc.stateDict, "_orig_mod."))
        c.push_back("keys carry the '_orig_mod.' prefix of torch.compile");
    // A LightningModule's state dict is keyed by its attributes: `model.` for one that wraps its
    // network as self.model, but any name (net., backbone. beside head.) as the user chose.
    if (doc.kind == DocumentKind::LightningCheckpoint)
        if (std::string text = lightningPrefixText(doc); !text.empty())
            c.push_back(std::move(text));
    if (const auto lora = loraAdapter(doc))
        c.push_back(loraAdapterText(*lora));
    if (std::string pruned = pruningSummary(doc); !pruned.empty())
        c.push_back(std::move(pruned));
    std::string lastKey;
    for (const auto &s : trainingStates(doc)) {
        const std::string key = s.key.substr(0, s.key.find('/'));  // Lightning's list is one convention
        if (key != lastKey)
            c.push_back(trainingStateName(s.kind) + " state under '" + key + "'");
        lastKey = key;
    }
}

namespace {

bool isWeightSet(const Value &v)
{
    return isTensorDict(v) || isMostlyTensorDict(v) || isPackedStateDict(v) || isModule(v) || isScriptObject(v);
}

bool startsWith(const KeyPath &path, const KeyPath &prefix)
{
    return prefix.size() <= path.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
}

std::string quoted(const KeyPath &path)
{
    return path.empty() ? std::string("the root") : "'" + pathText(path) + "'";
}

// The sets of weights the file has, for a message: the model's first.
std::string weightSetsText(const Document &doc)
{
    std::vector<std::string> names;
    if (doc.hasStateDict)
        names.push_back(quoted(doc.stateDictPath) + " (the model's weights)");
    for (const auto &o : doc.otherWeightSets)
        names.push_back(quoted(o));
    if (names.empty())
        return "the file holds no set of weights";
    constexpr std::size_t kListed = 20;
    std::string text = names.size() == 1 ? "the file's only set of weights is " : "the file's sets of weights are ";
    for (std::size_t i = 0; i < names.size() && i < kListed; ++i)
        text += (i ? ", " : "") + names[i];
    if (names.size() > kListed)
        text += " and " + std::to_string(names.size() - kListed) + " more";
    return text;
}

// "a dict", "an OrderedDict".
std::string withArticle(const std::string &noun)
{
    const bool vowel = !noun.empty() && std::string_view("aeiouAEIOU").find(noun.front()) != std::string_view::npos;
    return (vowel ? "an " : "a ") + noun;
}

// What a value that is not a set of weights is, in a few words.
std::string describeValue(const Value &v)
{
    if (v.isTensor() && v.tensorRef())
        return "a tensor (" + std::string(dtypeName(v.tensorRef()->dtype)) + ", shape " +
               shapeText(v.tensorRef()->shape) + ")";
    if (isOptimizerState(v))
        return "an optimizer's state";
    if (v.isDict()) {
        std::size_t tensors = 0;
        for (const auto &e : v.entries())
            tensors += e.value && e.value->isTensor();
        const std::size_t n = v.entries().size();
        return withArticle(v.typeName()) + " of " + std::to_string(n) + (n == 1 ? " entry" : " entries") +
               (n == 0         ? std::string()
                : tensors == 0 ? std::string(", none of them a tensor")
                               : ", " + std::to_string(tensors) + " of them tensors");
    }
    if (v.isSequence())
        return withArticle(v.typeName()) + " of " + std::to_string(v.items().size()) + " items";
    if (v.kind() == Value::Kind::Object)
        return "an object of class " + v.typeName();
    return "a value of type " + v.typeName();
}

// Every path whose labels joined by '.' or '/' read `rest`, below `v` (at most `limit` of them).
// Each step takes at least one character of the text, and the children looked at and the depth
// are bounded: a file that repeats one key many times, or holds itself under an empty key (a
// pickle can), costs a bounded search, not an exponential or endless one. Every child listed
// counts, not only those descended into: a dict holding itself beside 20,000 other keys would
// otherwise cost 20,000 per visit.
void matchDotted(const Value &v, std::string_view rest, KeyPath &prefix, std::vector<KeyPath> &found,
                 std::size_t &visits, std::size_t limit)
{
    constexpr std::size_t kMaxChildrenSeen = 1000000;
    constexpr std::size_t kMaxDepth = 64;  // sets of weights sit a few keys down, never this deep
    if (found.size() >= limit || visits >= kMaxChildrenSeen || prefix.size() >= kMaxDepth)
        return;
    const auto children = childrenOf(v);
    visits += children.size() + 1;
    for (const auto &c : children) {
        if (visits > kMaxChildrenSeen)
            return;
        if (found.size() >= limit)
            return;
        if (!c.value || !rest.starts_with(c.label))
            continue;
        if (rest.size() == c.label.size()) {
            prefix.push_back(c.label);
            if (std::find(found.begin(), found.end(), prefix) == found.end())
                found.push_back(prefix);
            prefix.pop_back();
        } else if ((rest[c.label.size()] == '.' || rest[c.label.size()] == '/') && c.value->isContainer()) {
            prefix.push_back(c.label);
            matchDotted(*c.value, rest.substr(c.label.size() + 1), prefix, found, visits, limit);
            prefix.pop_back();
        }
    }
}

// The file's optimizer states, in the order findOptimizer prefers them: the usual keys first (each
// state of a list, as Lightning keeps one per optimizer), then any other root entry.
// `cut`, when given, is set where more were found than kMaxOptimizers.
std::vector<std::pair<ValuePtr, KeyPath>> optimizerCandidates(const Value &root, bool *cut = nullptr)
{
    std::vector<std::pair<ValuePtr, KeyPath>> out;
    std::unordered_set<const Value *> seen;
    auto add = [&](const ValuePtr &v, KeyPath path) {
        if (seen.contains(v.get()))
            return;
        if (out.size() >= kMaxOptimizers) {  // each is mapped in turn: bounded for a hostile file
            if (cut)
                *cut = true;
            return;
        }
        seen.insert(v.get());
        out.emplace_back(v, std::move(path));
    };
    // A pickled optimizer is made into a state dict once (`read`), and is the same wherever it is found.
    PickledOptimizers read;
    auto seenPath = [&out](const KeyPath &path) {
        return std::any_of(out.begin(), out.end(), [&path](const auto &c) { return c.second == path; });
    };
    for (auto key : kOptimizerKeys) {
        auto v = root.get(std::string(key));
        if (!v)
            continue;
        KeyPath path{std::string(key)};
        if (auto state = optimizerIn(v, path, read))
            add(state, std::move(path));
        else if (v->isSequence())
            for (std::size_t i = 0; i < v->items().size(); ++i)
                if (const auto &item = v->items()[i]; item && isOptimizerState(*item))
                    add(item, {std::string(key), std::to_string(i)});
    }
    for (const auto &e : root.entries()) {
        if (!e.key || !e.value)
            continue;
        KeyPath path{keyText(*e.key)};
        if (auto state = optimizerIn(e.value, path, read); state && !seenPath(path))
            add(state, std::move(path));
    }
    return out;
}

// How well the document's optimizer fits its state dict: 0 where some parameter is left unnamed or
// its state has another shape than its weight; else 1, plus 1 for a certain mapping, plus 2 where
// any state tensor had a shape to compare (SGD without momentum keeps none). `map` is the mapping.
int optimizerFit(const Document &doc, std::optional<OptimizerMap> &map)
{
    map = mapOptimizer(doc);
    if (!map || map->parameters.empty() ||
        !std::all_of(map->parameters.begin(), map->parameters.end(),
                     [](const OptimizerParameter &p) { return !p.name.empty() && p.shapeAgrees; }))
        return 0;
    const bool shown = std::any_of(map->parameters.begin(), map->parameters.end(), [](const OptimizerParameter &p) {
        if (!p.state || !p.state->isDict())
            return false;
        return std::any_of(p.state->entries().begin(), p.state->entries().end(), [](const auto &e) {
            return e.value && e.value->isTensor() && e.value->tensorRef() && !e.value->tensorRef()->shape.empty();
        });
    });
    return 1 + (map->certain ? 1 : 0) + (shown ? 2 : 0);
}

// Of several optimizers (a GAN's, one per network, in any order), the one whose saved state fits
// the model's weights: every parameter named and each state tensor (exp_avg, momentum_buffer) of
// its weight's shape, a certain mapping and state that showed shapes ranking first. Where shapes
// cannot decide (several fit alike, or none fits), the first in the file is kept, as findOptimizer
// chose it, and a warning says the pairing is by order.
void pairOptimizer(Document &doc)
{
    std::erase_if(doc.warnings, [](const std::string &w) { return w.starts_with(kPairedByOrder); });
    if (!doc.root || !doc.root->isDict() || !doc.hasStateDict)
        return;
    const auto candidates = optimizerCandidates(*doc.root);
    if (candidates.size() < 2)
        return;
    std::vector<int> ranks(candidates.size(), 0);
    std::vector<std::optional<OptimizerMap>> maps(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        doc.optimizer = candidates[i].first;
        ranks[i] = optimizerFit(doc, maps[i]);
    }
    const int top = *std::max_element(ranks.begin(), ranks.end());
    std::vector<std::size_t> best;
    for (std::size_t i = 0; i < candidates.size(); ++i)
        if (ranks[i] == top)
            best.push_back(i);
    const std::size_t chosen = top == 0 ? 0 : best.front();
    doc.optimizer = candidates[chosen].first;
    doc.optimizerPath = candidates[chosen].second;
    if (top > 0 && best.size() == 1)
        return;
    // Optimizers that each update a different part of the one set of weights (a LightningModule
    // with a generator. and a discriminator., an optimizer each) are all the model's: no pairing to doubt.
    if (top > 0) {
        std::unordered_set<std::string_view> names;
        std::size_t count = 0;
        for (const auto i : best)
            for (const auto &p : maps[i]->parameters) {
                names.insert(p.name);
                ++count;
            }
        if (names.size() == count)
            return;
    }
    const std::string model = doc.stateDictPath.empty() ? std::string("the model's weights")
                                                        : "the model's weights under " + quoted(doc.stateDictPath);
    // Named: every optimizer when none fits, else those that fit alike.
    std::string names;
    for (std::size_t i = 0; i < candidates.size(); ++i)
        if (top == 0 || ranks[i] == top)
            names += (names.empty() ? "" : ", ") + quoted(candidates[i].second);
    doc.warnings.push_back(std::string(kPairedByOrder) +
                           (top == 0 ? "no optimizer state of the file (" + names + ") has the shapes of " + model
                                     : "the optimizer states " + names + (best.size() == 2 ? " both" : " all") +
                                           " fit " + model + " by shape") +
                           ", so the first in the file, " + quoted(doc.optimizerPath) + ", is taken as its optimizer");
}

} // namespace

std::vector<OptimizerEntry> optimizerEntries(const Document &doc, bool *more)
{
    std::vector<OptimizerEntry> out;
    if (more)
        *more = false;
    if (!doc.optimizer)
        return out;
    std::vector<std::pair<ValuePtr, KeyPath>> states;
    if (doc.root && doc.root->isDict() && !doc.optimizerPath.empty())
        states = optimizerCandidates(*doc.root, more);
    // The document's own optimizer is among them (a pickled one is made anew by each search: by path).
    if (std::none_of(states.begin(), states.end(), [&doc](const auto &c) { return c.second == doc.optimizerPath; }))
        states.insert(states.begin(), {doc.optimizer, doc.optimizerPath});
    for (auto &[state, path] : states) {
        OptimizerEntry s;
        s.primary = path == doc.optimizerPath;
        s.state = s.primary ? doc.optimizer : state;
        s.path = path;
        s.className = optimizerClassName(*s.state);
        if (const auto groups = s.state->get("param_groups"); groups && groups->isSequence()) {
            s.groups = groups->items().size();
            for (const auto &g : groups->items())
                if (const auto params = g && g->isDict() ? g->get("params") : nullptr; params && params->isSequence())
                    s.parameters += params->items().size();
        }
        if (const auto st = s.state->get("state"); st && st->isDict())
            s.states = st->entries().size();
        s.step = optimizerStep(*s.state);
        out.push_back(std::move(s));
    }
    if (out.size() < 2)
        return out;
    // Which weights each updates: every weight set of the file (the model's first), each as the
    // state dict of a document of its own, matched as pairOptimizer matches the model's.
    struct Set {
        KeyPath path;
        Document doc;
    };
    std::vector<Set> sets;
    if (doc.hasStateDict) {
        Set set{doc.stateDictPath, {}};
        set.doc.path = doc.path;
        set.doc.kind = doc.kind;
        set.doc.hasStateDict = true;
        set.doc.stateDict = doc.stateDict;
        set.doc.stateDictSource = doc.stateDictSource;
        set.doc.stateDictPath = doc.stateDictPath;
        sets.push_back(std::move(set));
    }
    constexpr std::size_t kMaxSets = 16;  // each is matched against each optimizer: bounded
    for (const auto &other : doc.otherWeightSets) {
        if (sets.size() >= kMaxSets)
            break;
        const ValuePtr v = findPath(doc.root, other);
        if (!v || !isWeightSet(*v))
            continue;
        Set set{other, {}};
        set.doc.path = doc.path;
        set.doc.kind = doc.kind;
        try {
            useStateDict(set.doc, v, other, doc.scriptClasses);
        } catch (const std::exception &) {
            continue;  // its names are past the budget: not matched
        }
        sets.push_back(std::move(set));
    }
    for (auto &s : out) {
        if (sets.empty()) {
            s.updates = "the file holds no weights to match it to";
            continue;
        }
        std::vector<int> ranks;
        std::vector<std::optional<OptimizerMap>> maps(sets.size());
        for (std::size_t i = 0; i < sets.size(); ++i) {
            sets[i].doc.optimizer = s.state;
            ranks.push_back(optimizerFit(sets[i].doc, maps[i]));
            sets[i].doc.optimizer = nullptr;
        }
        const int top = *std::max_element(ranks.begin(), ranks.end());
        std::vector<std::size_t> best;
        for (std::size_t i = 0; i < sets.size(); ++i)
            if (ranks[i] == top)
                best.push_back(i);
        if (top == 0) {
            s.updates = sets.size() == 1 ? "which of the model's weights it updates cannot be told: " +
                                               (maps[0] ? maps[0]->note : std::string("its state was not read"))
                                         : "its state fits none of the file's weight sets by shape: which weights it "
                                           "updates cannot be told";
            continue;
        }
        if (best.size() > 1) {
            std::string names;
            for (std::size_t i = 0; i < best.size(); ++i)
                names += (i == 0 ? "" : i + 1 == best.size() ? " and " : ", ") + quoted(sets[best[i]].path);
            s.updates = "its state fits the weights under " + names + " alike by shape: which it updates cannot be told";
            continue;
        }
        const OptimizerMap &map = *maps[best.front()];
        if (sets.size() > 1) {
            s.updatesKnown = true;
            s.updates = "updates the weights under " + quoted(sets[best.front()].path) +
                        ": its state fits them alone by shape" +
                        (map.certain ? std::string() : ", though which parameter is which is uncertain");
            continue;
        }
        // One set of weights holding several networks (a LightningModule's generator. and
        // discriminator.): the attribute its parameters are all under, where they are named with certainty.
        if (!map.certain) {
            s.updates = "which of the model's weights it updates cannot be told with certainty: " + map.note;
            continue;
        }
        std::string prefix = map.parameters.front().name.substr(0, map.parameters.front().name.find('.') + 1);
        for (const auto &p : map.parameters)
            if (!p.name.starts_with(prefix) || prefix.empty() || prefix.back() != '.')
                prefix.clear();
        s.updatesKnown = true;
        const std::string count = std::to_string(map.parameters.size()) +
                                  (map.parameters.size() == 1 ? " parameter" : " parameters");
        s.updates = prefix.empty() ? "updates " + count + " of the model, named with certainty by shape"
                                   : "updates the " + count + " under '" + prefix +
                                         "', named with certainty by shape";
    }
    return out;
}

KeyPath weightSetPath(const Document &doc, const std::string &text)
{
    KeyPath path;
    if (!text.empty()) {
        std::string_view rest = text;
        for (std::size_t slash; (slash = rest.find('/')) != std::string_view::npos; rest.remove_prefix(slash + 1))
            path.emplace_back(rest.substr(0, slash));
        path.emplace_back(rest);
    }
    if (findPath(doc.root, path))
        return path;
    std::vector<KeyPath> found;
    if (doc.root && !text.empty()) {
        KeyPath prefix;
        std::size_t visits = 0;
        matchDotted(*doc.root, text, prefix, found, visits, 4);
    }
    if (found.size() == 1)
        return found.front();
    if (found.empty())
        throw FormatError(doc.path + ": nothing is at '" + text + "' to use as the model's weights; " +
                          weightSetsText(doc));
    std::string paths;
    for (const auto &p : found)
        paths += (paths.empty() ? "" : ", ") + quoted(p);
    throw FormatError(doc.path + ": '" + text + "' could mean " + paths + (found.size() >= 4 ? " and more" : "") +
                      ": write the path with '/' between its keys");
}

void useWeightSet(Document &doc, const KeyPath &path)
{
    if (doc.hasStateDict && path == doc.stateDictPath)
        return;
    const ValuePtr v = findPath(doc.root, path);
    if (!v)
        throw FormatError(doc.path + ": nothing is at " + quoted(path) + " to use as the model's weights; " +
                          weightSetsText(doc));
    if (!isWeightSet(*v))
        throw FormatError(doc.path + ": " + quoted(path) + " holds " + describeValue(*v) +
                          ", not a set of weights (a dict of tensors or a module); " + weightSetsText(doc));
    const bool had = doc.hasStateDict;
    const KeyPath former = doc.stateDictPath;
    {
        // Naming a module tree's tensors can fail (the names' budget): the document stays as it was.
        Document chosen;
        useStateDict(chosen, v, path, doc.scriptClasses);
        doc.stateDictSource = std::move(chosen.stateDictSource);
        doc.stateDict = std::move(chosen.stateDict);
        doc.scriptDeclared = chosen.scriptDeclared;
    }
    doc.hasStateDict = true;
    doc.stateDictPath = path;
    if (std::find(doc.weightPaths.begin(), doc.weightPaths.end(), path) == doc.weightPaths.end())
        doc.weightPaths.push_back(path);
    std::erase(doc.otherWeightSets, path);
    // The former weights are another set unless one holds the other (a module and its submodule).
    if (had && !startsWith(path, former) && !startsWith(former, path))
        doc.otherWeightSets.insert(doc.otherWeightSets.begin(), former);
    const ValuePtr &root = doc.root;
    if (root->isDict() && !isTensorDict(*root) && !isMostlyTensorDict(*root) && !isPackedStateDict(*root)) {
        pairOptimizer(doc);
        doc.kind = kindOfDictRoot(doc, *root, isModule(*v));
    }
    doc.conventions.clear();
    detectConventions(doc);
}

std::string optimizerNotRead(const Document &doc)
{
    if (doc.optimizer || !doc.root || !doc.root->isDict())
        return {};
    for (auto key : kOptimizerKeys) {
        const auto v = doc.root->get(std::string(key));
        if (!v || !v->isDict() || isOptimizerState(*v))
            continue;  // none, not a dict, or a whole state dict (read, or left aside on purpose)
        const auto state = v->get("state");
        const auto groups = v->get("param_groups");
        if (!state && !groups)
            continue;  // a dict of settings under an optimizer's name, not its state
        const std::string named = "'" + std::string(key) + "'";
        std::string wrong;
        if (!groups)
            wrong = "has 'state' but no 'param_groups'";
        else if (!state)
            wrong = "has 'param_groups' but no 'state'";
        else if (!state->isDict())
            wrong = "has a 'state' that is a " + state->typeName() + ", not a dict";
        else  // isOptimizerState: 'param_groups' is what is wrong
            wrong = "has a 'param_groups' that is a " + groups->typeName() + ", not a list";
        return named + " is not an optimizer state dict as torch.optim writes it: it " + wrong +
               ", and Optimizer.load_state_dict needs both";
    }
    return {};
}

} // namespace ckpt
