#include "valuetree.h"

#include "picklemachine.h"

#include <unordered_set>

namespace ckpt {

std::vector<Child> childrenOf(const Value &v, ChildLabels labels)
{
    const bool deferred = labels == ChildLabels::Deferred;
    auto keyed = [deferred](const ValuePtr &key, const ValuePtr &value, ChildRole role) {
        if (!key)
            return Child{"?", value, role};
        if (deferred)
            return Child{{}, value, role, key.get()};
        return Child{keyText(*key), value, role};
    };
    std::vector<Child> out;
    switch (v.kind()) {
    case Value::Kind::Dict:
        out.reserve(v.entries().size() + 1);
        for (const auto &e : v.entries())
            out.push_back(keyed(e.key, e.value, ChildRole::Key));
        if (v.state())
            out.push_back({"(state)", v.state(), ChildRole::State});
        break;
    case Value::Kind::Tuple:
    case Value::Kind::List:
    case Value::Kind::Set:
    case Value::Kind::FrozenSet:
        out.reserve(v.items().size());
        for (std::size_t i = 0; i < v.items().size(); ++i)
            out.push_back({std::to_string(i), v.items()[i], ChildRole::Index});
        break;
    case Value::Kind::Object:
        if (v.args() && !(v.args()->isSequence() && v.args()->items().empty()))
            out.push_back({"(args)", v.args(), ChildRole::Args});
        if (v.state()) {
            if (v.state()->isDict() && v.state()->pythonClass().empty()) {
                for (const auto &e : v.state()->entries())
                    out.push_back(keyed(e.key, e.value, ChildRole::Attribute));
            } else {
                out.push_back({"(state)", v.state(), ChildRole::State});
            }
        }
        for (std::size_t i = 0; i < v.items().size(); ++i)
            out.push_back({"[" + std::to_string(i) + "]", v.items()[i], ChildRole::Item});
        for (const auto &e : v.entries())
            out.push_back(keyed(e.key, e.value, ChildRole::Item));
        break;
    case Value::Kind::Tensor:
        if (v.state())
            out.push_back({"(state)", v.state(), ChildRole::State});
        break;
    default:
        break;
    }
    return out;
}

std::string childLabel(const Child &c) { return c.key ? keyText(*c.key) : c.label; }

std::size_t childLabelSize(const Child &c)
{
    if (!c.key)
        return c.label.size();
    return c.key->isString() ? c.key->text().size() : keyText(*c.key).size();
}

ValuePtr findPath(const ValuePtr &root, const std::vector<std::string> &path)
{
    ValuePtr cur = root;
    for (const auto &step : path) {
        if (!cur)
            return nullptr;
        ValuePtr next;
        for (auto &c : childrenOf(*cur))
            if (c.label == step) {
                next = c.value;
                break;
            }
        cur = next;
    }
    return cur;
}

std::string className(const Value &v)
{
    if (v.kind() == Value::Kind::Object && v.objectClass() && v.objectClass()->kind() == Value::Kind::Global)
        return v.objectClass()->qualifiedName();
    return {};
}

bool isModule(const Value &v)
{
    return v.kind() == Value::Kind::Object && v.state() && v.state()->isDict() && v.state()->get("_parameters") &&
           v.state()->get("_modules");
}

bool isScriptModule(const Value &v)
{
    return className(v).starts_with("__torch__.") && v.state() && v.state()->isDict() && v.state()->get("training");
}

std::vector<ModuleEntry> moduleTree(const Value &root)
{
    std::vector<ModuleEntry> out;
    const bool script = isScriptModule(root);
    if (!script && !isModule(root))
        return out;
    std::unordered_set<const Value *> seen;
    // Depth-first in registration order: children are pushed in reverse.
    struct Pending {
        const Value *module;
        std::string path;
        std::uint32_t depth;
    };
    std::vector<Pending> stack{{&root, std::string(), 0}};
    std::size_t total = 0;  // bytes of the paths made
    while (!stack.empty()) {
        Pending p = std::move(stack.back());
        stack.pop_back();
        if (p.depth > PickleLimits::kMaxDepth || !seen.insert(p.module).second)
            continue;
        out.push_back({p.path, className(*p.module)});
        // A pickled module keeps its children in _modules; a TorchScript module as attributes.
        auto children = script ? p.module->state() : p.module->state()->get("_modules");
        if (!children || !children->isDict())
            continue;
        const auto &entries = children->entries();
        for (auto it = entries.rbegin(); it != entries.rend(); ++it)
            if (it->key && it->value && (script ? isScriptModule(*it->value) : isModule(*it->value))) {
                std::string key = keyText(*it->key);
                total += p.path.size() + 1 + key.size();
                if (total > PickleLimits::kMaxPathTotalBytes)
                    return out;  // long keys nested deep: the paths would take gigabytes
                stack.push_back({it->value.get(), p.path.empty() ? std::move(key) : p.path + "." + key, p.depth + 1});
            }
    }
    return out;
}

} // namespace ckpt
