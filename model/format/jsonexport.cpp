#include "jsonexport.h"
#include "tensoridentity.h"

#include "checkpointfolder.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <ostream>

#include "error.h"
#include "frameworkfiles.h"
#include "keyalign.h"
#include "metadata.h"
#include "optimizermap.h"
#include "pruning.h"
#include "picklemachine.h"
#include "security.h"
#include "textcodec.h"
#include "valuetree.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace ckpt {

namespace {

using json = nlohmann::ordered_json;

json tensorJson(const TensorRef &t)
{
    json j{{"dtype", std::string(dtypeName(t.dtype))}, {"shape", t.shape}, {"device", t.device()}};
    if (t.isParameter)
        j["parameter"] = true;
    if (t.requiresGrad)
        j["requires_grad"] = true;
    if (!t.problem.empty())
        j["problem"] = t.problem;
    return j;
}

// About what one JSON document may take (a sixth of a gigabyte as text, more as a tree).
constexpr std::size_t kJsonOutputBudget = std::size_t{160} << 20;

// How many bytes (roughly, as dumped) one JSON document may still take. A value a pickle
// references many times through the memo costs the pickle a few bytes per reference but the JSON
// its whole text each time: past the budget the rest is left out, marked {"__truncated__": ...}.
struct JsonBudget {
    std::size_t left = kJsonOutputBudget;
    bool spend(std::size_t bytes)
    {
        if (bytes > left) {
            left = 0;
            return false;
        }
        left -= bytes;
        return true;
    }
    bool exhausted() const { return left == 0; }
};

json truncatedMarker() { return json{{"__truncated__", "output limit"}}; }

// The value of decimal digits (no sign) that fit 64 bits unsigned.
std::optional<std::uint64_t> unsignedOf(std::string_view digits)
{
    std::uint64_t u = 0;
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), u);
    if (r.ec != std::errc() || r.ptr != digits.data() + digits.size() || digits.empty() || digits[0] == '-' ||
        digits[0] == '+')
        return std::nullopt;
    return u;
}

using ObjectBuilder = JsonObjectBuilder;

class JsonWriter {
public:
    explicit JsonWriter(JsonBudget &budget) : m_budget(budget) {}
    // Plain JSON for another program to read: shared values written in full at each place, and
    // what would otherwise be marked (a cycle, the nesting or output limit) thrown as a
    // FormatError about `what`.
    JsonWriter(JsonBudget &budget, std::string what, std::size_t limit)
        : m_budget(budget), m_plain(true), m_what(std::move(what)), m_limit(limit)
    {
    }

    // `path` names the value in __ref__ entries of later sightings.
    json write(const ValuePtr &v, const std::string &path, std::uint32_t depth)
    {
        return write(v, Where{kNoNode, nullptr, path, Join::Root}, depth);
    }

private:
    static constexpr std::size_t kNoNode = ~std::size_t(0);
    // Strings and bytes at least this long are written once; later sightings are a __ref__.
    static constexpr std::size_t kSharedStringBytes = 1024;
    static constexpr std::size_t kPlainNodeBytes = 16;

    // How a child's path joins its parent's: "a/b"; "b" alone under an empty path (dict entries and
    // elements, as before); or always with the slash ("(state)", "(args)", "[0]", dict_items).
    enum class Join : std::uint8_t { Root, SkipEmpty, Always };
    struct Where {
        std::size_t parent;
        const Value *key;        // the label is this key's text when set
        std::string_view label;
        Join join;
    };
    // Paths are links to the parent's node, made into text only for a __ref__: a long key nested
    // deep then costs its length once rather than once per level.
    struct PathNode {
        std::size_t parent;
        std::size_t size;
        const Value *key;
        std::string label;
        Join join;
    };

    static std::size_t labelSize(const Where &w)
    {
        if (!w.key)
            return w.label.size();
        return w.key->isString() ? w.key->text().size() : keyText(*w.key).size();
    }

    std::size_t nodeFor(const Where &w)
    {
        const std::size_t parentSize = w.parent == kNoNode ? 0 : m_nodes[w.parent].size;
        const bool slash = w.join == Join::Always || (w.join == Join::SkipEmpty && parentSize > 0);
        m_nodes.push_back({w.parent, parentSize + (slash ? 1 : 0) + labelSize(w), w.key,
                           w.key ? std::string() : std::string(w.label), w.join});
        return m_nodes.size() - 1;
    }

    std::string pathOf(std::size_t n) const
    {
        std::vector<std::size_t> chain;
        for (; n != kNoNode; n = m_nodes[n].parent)
            chain.push_back(n);
        std::string path;
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            const auto &node = m_nodes[*it];
            if (node.join == Join::Always || (node.join == Join::SkipEmpty && !path.empty()))
                path += '/';
            path += node.key ? (node.key->isString() ? node.key->text() : keyText(*node.key)) : node.label;
        }
        return path;
    }

    json ref(std::size_t node)
    {
        if (!m_budget.spend(m_nodes[node].size + 16))
            return truncated();
        return json{{"__ref__", pathOf(node)}};
    }

    // The output limit reached: marked, or for plain JSON an error.
    json truncated()
    {
        if (m_plain)
            throw FormatError(m_what + ": past the " + std::to_string(m_limit >> 10) +
                              " KiB of JSON the values written with it may take together (each value the file "
                              "shares written out in full)");
        return truncatedMarker();
    }
    void truncated(ObjectBuilder &builder)
    {
        truncated();
        builder.set("__truncated__", "output limit");
    }

    // A container being written, for plain JSON: one met again inside itself is a cycle.
    class OnPath {
    public:
        OnPath(JsonWriter &w, const Value *v, std::size_t node) : m_w(w), m_v(w.m_plain ? v : nullptr)
        {
            if (m_v && !w.m_onPath.insert(m_v).second) {
                m_v = nullptr;
                throw FormatError(w.m_what + ": '" + w.pathOf(node) + "' contains itself, which JSON cannot hold");
            }
        }
        ~OnPath()
        {
            if (m_v)
                m_w.m_onPath.erase(m_v);
        }
        OnPath(const OnPath &) = delete;
        OnPath &operator=(const OnPath &) = delete;

    private:
        JsonWriter &m_w;
        const Value *m_v;
    };

    json write(const ValuePtr &v, const Where &where, std::uint32_t depth)
    {
        if (!v)
            return nullptr;
        if (depth > PickleLimits::kMaxDepth) {
            if (m_plain)
                throw FormatError(m_what + ": nested deeper than " + std::to_string(PickleLimits::kMaxDepth) + " levels");
            return json{{"__truncated__", "nesting limit"}};
        }
        // Plain JSON writes a shared value at every place: each value is charged for its tree node
        // too, so that a few bytes of pickle sharing a list with itself level after level stop
        // at the budget rather than at gigabytes of nodes.
        if (m_budget.exhausted() || (m_plain && !m_budget.spend(kPlainNodeBytes)))
            return truncated();
        switch (m_plain ? Value::Kind::None : v->kind()) {  // plain JSON refers to nothing
        case Value::Kind::String:
        case Value::Kind::Bytes:
            if (v->text().size() >= kSharedStringBytes) {
                if (auto it = m_seen.find(v.get()); it != m_seen.end())
                    return ref(it->second);
                m_seen.emplace(v.get(), nodeFor(where));
            }
            break;
        case Value::Kind::None:
        case Value::Kind::Bool:
        case Value::Kind::Int:
        case Value::Kind::BigInt:
        case Value::Kind::Float:
        case Value::Kind::Complex:
        case Value::Kind::Global:
        case Value::Kind::Storage:
            break;
        default:
            // Containers: write each object once; later sightings point at the first.
            if (auto it = m_seen.find(v.get()); it != m_seen.end())
                return ref(it->second);
            break;
        }
        switch (v->kind()) {
        case Value::Kind::None: m_budget.spend(4); return nullptr;
        case Value::Kind::Bool: m_budget.spend(5); return v->asBool();
        case Value::Kind::Int: m_budget.spend(8); return v->asInt();
        case Value::Kind::BigInt:
            if (!m_budget.spend(v->text().size() + 12))
                return truncated();
            // Plain JSON: what fits 64 bits unsigned is a JSON number as it is; a wider one stays
            // tagged in the tree, and pythonJsonText writes its digits (JSON numbers have no width).
            if (m_plain)
                if (const auto u = unsignedOf(v->text()))
                    return *u;
            return json{{"__int__", v->text()}};
        case Value::Kind::Float:
            m_budget.spend(8);
            if (!std::isfinite(v->asFloat()))
                return json{{"__float__", formatFloat(v->asFloat())}};
            return v->asFloat();
        case Value::Kind::Complex: m_budget.spend(16); return json{{"__complex__", {v->asFloat(), v->imag()}}};
        case Value::Kind::String:
            if (!m_budget.spend(v->text().size() + 2))
                return truncated();
            return v->text();
        case Value::Kind::Bytes:
            m_budget.spend(48 + std::min<std::size_t>(v->text().size(), 256) * 2);
            return json{{"__bytes__", {{"length", v->text().size()}, {"hex", hexPreview(v->text(), 256)}}}};
        case Value::Kind::Global:
            if (!m_budget.spend(v->text().size() + v->name().size() + 16))
                return truncated();
            return json{{"__global__", v->qualifiedName()}};
        case Value::Kind::Storage:
            m_budget.spend(64 + v->storageRef()->key.size());
            return json{{"__storage__", {{"key", v->storageRef()->key}, {"dtype", std::string(dtypeName(v->storageRef()->dtype))}}}};
        default: break;
        }
        const std::size_t node = nodeFor(where);
        if (!m_plain)
            m_seen.emplace(v.get(), node);
        const OnPath onPath(*this, v.get(), node);
        m_budget.spend(2);
        auto child = [node](const Child &c, Join join) {
            return Where{node, c.key, c.key ? std::string_view() : std::string_view(c.label), join};
        };
        switch (v->kind()) {
        case Value::Kind::Tuple:
        case Value::Kind::List: {
            json a = json::array();
            for (const auto &c : childrenOf(*v, ChildLabels::Deferred)) {
                if (m_budget.exhausted()) {
                    a.push_back(truncated());
                    break;
                }
                a.push_back(write(c.value, child(c, Join::SkipEmpty), depth + 1));
            }
            return a;
        }
        case Value::Kind::Set:
        case Value::Kind::FrozenSet: {
            json a = json::array();
            for (const auto &c : childrenOf(*v, ChildLabels::Deferred)) {
                if (m_budget.exhausted()) {
                    a.push_back(truncated());
                    break;
                }
                a.push_back(write(c.value, child(c, Join::SkipEmpty), depth + 1));
            }
            return json{{v->kind() == Value::Kind::Set ? "__set__" : "__frozenset__", a}};
        }
        case Value::Kind::Dict: {
            json o = json::object();
            ObjectBuilder builder(o);
            for (const auto &c : childrenOf(*v, ChildLabels::Deferred))
                if (c.role == ChildRole::Key) {
                    if (!m_budget.spend(childLabelSize(c) + 4)) {
                        truncated(builder);
                        break;
                    }
                    builder.set(childLabel(c), write(c.value, child(c, Join::SkipEmpty), depth + 1));
                }
            return o;
        }
        case Value::Kind::Tensor: {
            m_budget.spend(96);
            json t{{"__tensor__", tensorJson(*v->tensorRef())}};
            if (v->state())
                t["state"] = write(v->state(), Where{node, nullptr, "(state)", Join::Always}, depth + 1);
            if (!v->pythonClass().empty())
                t["__tensor__"]["class"] = v->pythonClass();
            return t;
        }
        case Value::Kind::Object: {
            const bool named = v->objectClass() && v->objectClass()->kind() == Value::Kind::Global;
            m_budget.spend(16 + (named ? v->objectClass()->text().size() + v->objectClass()->name().size() : 0));
            json o{{"__class__", named ? v->objectClass()->qualifiedName() : std::string("<computed>")}};
            if (v->args() && !(v->args()->isSequence() && v->args()->items().empty()))
                o["args"] = write(v->args(), Where{node, nullptr, "(args)", Join::Always}, depth + 1);
            if (v->state())
                o["state"] = write(v->state(), Where{node, nullptr, "(state)", Join::Always}, depth + 1);
            if (!v->items().empty()) {
                json a = json::array();
                for (std::size_t i = 0; i < v->items().size(); ++i) {
                    if (m_budget.exhausted()) {
                        a.push_back(truncated());
                        break;
                    }
                    const std::string label = "[" + std::to_string(i) + "]";
                    a.push_back(write(v->items()[i], Where{node, nullptr, label, Join::Always}, depth + 1));
                }
                o["items"] = a;
            }
            if (!v->entries().empty()) {
                json d = json::object();
                ObjectBuilder builder(d);
                for (const auto &e : v->entries()) {
                    if (!m_budget.spend((e.key && e.key->isString() ? e.key->text().size() : 16) + 4)) {
                        truncated(builder);
                        break;
                    }
                    builder.set(e.key ? keyText(*e.key) : std::string("?"),
                                write(e.value, Where{node, e.key.get(), "?", Join::Always}, depth + 1));
                }
                o["dict_items"] = d;
            }
            return o;
        }
        default: return nullptr;
        }
    }

    JsonBudget &m_budget;
    const bool m_plain = false;
    const std::string m_what;
    const std::size_t m_limit = kJsonOutputBudget;
    std::vector<PathNode> m_nodes;
    std::unordered_map<const Value *, std::size_t> m_seen;  // containers, and long strings and bytes
    std::unordered_set<const Value *> m_onPath;             // plain JSON: the containers being written
};

// An empty object with room for `keys` keys. ordered_json objects are vectors of (const key,
// value) pairs: growing one copies every value in it (a whole tensor list), so room comes first.
json objectWithRoom(std::size_t keys)
{
    json j = json::object();
    j.get_ref<json::object_t &>().reserve(keys);
    return j;
}

// The keys of a tensor list's entry, in the order written; tensorMembers hands them over by number.
enum EntryKey : std::size_t {
    kName, kDtype, kShape, kStrides, kStorageOffset, kNumel, kBytes, kDevice, kRequiresGrad, kStorage, kLayout,
    kQuantization, kProblem
};
constexpr std::array<std::string_view, 13> kEntryKeys{
    "name", "dtype", "shape", "strides", "storage_offset", "numel", "bytes", "device", "requires_grad", "storage",
    "layout", "quantization", "problem"};

// The members of one entry of the tensor list, in order, each handed to add(key, value): the one
// account of an entry, for the tree (tensorEntry) and for the streamed text (writeDocumentJson).
template <class Add> void tensorMembers(const NamedTensor &t, Add &&add)
{
    const auto &r = t.ref();
    add(kName, t.name);
    add(kDtype, dtypeName(r.dtype));
    add(kShape, r.shape);
    add(kStrides, r.strides);
    add(kStorageOffset, r.storageOffset);
    add(kNumel, r.numel());
    add(kBytes, r.nbytes());
    add(kDevice, r.device());
    add(kRequiresGrad, r.requiresGrad);
    if (r.storage)
        add(kStorage, r.storage->key);
    if (r.layout == TensorRef::Layout::SparseCoo)
        add(kLayout, "sparse_coo");
    else if (r.layout == TensorRef::Layout::SparseCsr)
        add(kLayout, "sparse_csr");
    else if (r.layout == TensorRef::Layout::Meta)
        add(kLayout, "meta");
    if (r.quantization) {
        const auto &q = *r.quantization;
        json qj{{"scheme", q.scheme}};
        if (q.scales) {
            qj["axis"] = q.axis;
        } else {
            qj["scale"] = q.scale;
            qj["zero_point"] = q.zeroPoint;
        }
        add(kQuantization, qj);
    }
    if (!r.problem.empty())
        add(kProblem, r.problem);
}

json tensorEntry(const NamedTensor &t)
{
    json j = objectWithRoom(kEntryKeys.size());
    tensorMembers(t, [&j](std::size_t key, const auto &value) { j[std::string(kEntryKeys[key])] = value; });
    return j;
}

} // namespace

json valueToJson(const ValuePtr &v)
{
    JsonBudget budget;
    return JsonWriter(budget).write(v, "", 0);
}

JsonObjectBuilder::JsonObjectBuilder(json &object) : m_object(object.get_ref<json::object_t &>()) {}

void JsonObjectBuilder::set(std::string key, json value)
{
    auto [it, fresh] = m_index.try_emplace(key, m_object.size());
    if (fresh)
        m_object.emplace_back(std::move(key), std::move(value));
    else
        (m_object.begin() + static_cast<std::ptrdiff_t>(it->second))->second = std::move(value);
}

json valueToPlainJson(const ValuePtr &v, const std::string &what, PlainJsonBudget &budget)
{
    JsonBudget spent{budget.left};
    struct Settle {  // what was spent stays spent, written or not
        PlainJsonBudget &to;
        JsonBudget &from;
        ~Settle() { to.left = from.left; }
    } settle{budget, spent};
    return JsonWriter(spent, what, budget.total).write(v, "", 0);
}

json valueToPlainJsonOrShown(const ValuePtr &v, PlainJsonBudget &budget)
{
    try {
        return valueToPlainJson(v, "value", budget);
    } catch (const FormatError &) {
        return valueToJson(v);
    }
}

namespace {
// Builds an ordered_json from nlohmann's SAX events, adding each key in constant time.
class OrderedJsonBuilder {
public:
    using number_integer_t = json::number_integer_t;
    using number_unsigned_t = json::number_unsigned_t;
    using number_float_t = json::number_float_t;
    using string_t = json::string_t;
    using binary_t = json::binary_t;

    explicit OrderedJsonBuilder(std::size_t maxDepth) : m_maxDepth(maxDepth) {}

    bool null() { return add(nullptr); }
    bool boolean(bool v) { return add(v); }
    bool number_integer(number_integer_t v) { return add(v); }
    bool number_unsigned(number_unsigned_t v) { return add(v); }
    // nlohmann reads an integer past 64 bits as a float; the literal keeps its digits, tagged as
    // valueToJson tags a wider integer (jsonToValue makes it that integer again).
    bool number_float(number_float_t v, const string_t &literal)
    {
        if (literal.find_first_of(".eE") == string_t::npos)
            return add(json{{"__int__", literal}});
        return add(v);
    }
    bool string(string_t &v) { return add(std::move(v)); }
    bool binary(binary_t &v) { return add(json::binary(std::move(v))); }
    bool start_object(std::size_t) { return open(json::object()); }
    bool key(string_t &k)
    {
        m_key = std::move(k);
        return true;
    }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(json::array()); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &) { return false; }

    json take() { return std::move(m_root); }

private:
    struct Open {
        json *value;
        std::unordered_map<std::string, std::size_t> keys;  // objects: where each key is
    };

    json *add(json v, bool)
    {
        if (m_stack.empty()) {
            m_root = std::move(v);
            return &m_root;
        }
        auto &top = m_stack.back();
        if (top.value->is_array()) {
            auto &a = top.value->get_ref<json::array_t &>();
            a.push_back(std::move(v));
            return &a.back();
        }
        auto &o = top.value->get_ref<json::object_t &>();
        auto [it, fresh] = top.keys.try_emplace(m_key, o.size());
        if (fresh) {
            o.emplace_back(std::move(m_key), std::move(v));
            return &o.back().second;
        }
        auto &slot = (o.begin() + static_cast<std::ptrdiff_t>(it->second))->second;
        slot = std::move(v);
        return &slot;
    }
    bool add(json v)
    {
        add(std::move(v), true);
        return true;
    }
    bool open(json v)
    {
        if (m_stack.size() >= m_maxDepth)
            return false;
        m_stack.push_back({add(std::move(v), true), {}});
        return true;
    }
    bool close()
    {
        m_stack.pop_back();
        return true;
    }

    std::size_t m_maxDepth;
    json m_root;
    std::vector<Open> m_stack;
    std::string m_key;
};
} // namespace

namespace {
// The tag valueToJson gives a float JSON cannot hold, by the token Python's json module writes.
constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kNonFiniteTokens{{
    {"-Infinity", "-inf"}, {"Infinity", "inf"}, {"NaN", "nan"}}};

std::string nonFiniteTag(std::string_view name)
{
    return std::string(R"({"__float__":")") + std::string(name) + "\"}";
}

// The text with Python's NaN, Infinity and -Infinity outside strings replaced by their tags; empty
// when it has none (the common case: one pass, no copy).
std::string tagNonFiniteTokens(std::string_view text)
{
    std::string out;
    bool inString = false, any = false;
    std::size_t copied = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (inString) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                inString = false;
            continue;
        }
        if (c == '"') {
            inString = true;
            continue;
        }
        if (c != 'N' && c != 'I' && c != '-')
            continue;
        for (const auto &[token, name] : kNonFiniteTokens)
            if (text.substr(i, token.size()) == token) {
                if (!any)
                    out.reserve(text.size() + 64);
                any = true;
                out.append(text.substr(copied, i - copied));
                out += nonFiniteTag(name);
                i += token.size() - 1;
                copied = i + 1;
                break;
            }
    }
    if (!any)
        return {};
    out.append(text.substr(copied));
    return out;
}

// The text of a {"<tag>": "text"} object (the tags valueToJson writes for what JSON lacks).
const std::string *tagText(const json &j, const char *tag)
{
    if (!j.is_object() || j.size() != 1)
        return nullptr;
    const auto it = j.find(tag);
    return it == j.end() || !it->is_string() ? nullptr : &it->get_ref<const std::string &>();
}

// The float a {"__float__": "nan" | "inf" | "-inf"} object stands for.
std::optional<double> taggedNonFinite(const json &j)
{
    const std::string *tagged = tagText(j, "__float__");
    if (!tagged)
        return std::nullopt;
    const std::string &name = *tagged;
    if (name == "nan")
        return std::numeric_limits<double>::quiet_NaN();
    if (name == "inf")
        return std::numeric_limits<double>::infinity();
    if (name == "-inf")
        return -std::numeric_limits<double>::infinity();
    return std::nullopt;
}

// The digits of a {"__int__": "digits"} object: an integer as Python writes it ("-" then digits,
// no leading zero) that a 64-bit signed integer cannot hold (nothing else is tagged so), within
// the digits a pickle's integer may have.
std::optional<std::string> taggedWideInt(const json &j)
{
    const std::string *tagged = tagText(j, "__int__");
    if (!tagged)
        return std::nullopt;
    const std::string &text = *tagged;
    const std::string_view digits = std::string_view(text).substr(!text.empty() && text[0] == '-' ? 1 : 0);
    if (digits.empty() || digits.size() > PickleLimits::kMaxBigIntBytes * 3 || (digits[0] == '0' && digits.size() > 1) ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    std::int64_t i = 0;
    if (std::from_chars(text.data(), text.data() + text.size(), i).ec == std::errc())
        return std::nullopt;
    return text;
}

void appendPythonJson(std::string &out, const json &j, int indent, int depth)
{
    if (const auto f = taggedNonFinite(j)) {
        out += std::isnan(*f) ? "NaN" : *f > 0 ? "Infinity" : "-Infinity";
        return;
    }
    if (const auto digits = taggedWideInt(j)) {
        out += *digits;
        return;
    }
    const bool object = j.is_object();
    if ((!object && !j.is_array()) || j.empty()) {
        out += j.dump();
        return;
    }
    out += object ? '{' : '[';
    const std::string inner = indent < 0 ? std::string() : "\n" + std::string(static_cast<std::size_t>(indent) * (depth + 1), ' ');
    bool first = true;
    auto item = [&](const std::string *key, const json &v) {
        if (!first)
            out += ',';
        first = false;
        out += inner;
        if (key) {
            out += json(*key).dump();
            out += indent < 0 ? ":" : ": ";
        }
        appendPythonJson(out, v, indent, depth + 1);
    };
    if (object)
        for (const auto &[k, v] : j.items())
            item(&k, v);
    else
        for (const auto &v : j)
            item(nullptr, v);
    if (indent >= 0)
        out += "\n" + std::string(static_cast<std::size_t>(indent) * depth, ' ');
    out += object ? '}' : ']';
}
} // namespace

std::string pythonJsonText(const json &j, int indent)
{
    std::string out;
    appendPythonJson(out, j, indent, 0);
    return out;
}

json parseOrderedJson(std::string_view text, std::size_t maxDepth)
{
    const std::string tagged = tagNonFiniteTokens(text);
    if (!tagged.empty())
        text = tagged;
    OrderedJsonBuilder builder(maxDepth);
    if (!json::sax_parse(text, &builder, json::input_format_t::json, true, false))
        return json(json::value_t::discarded);
    return builder.take();
}

namespace {
// Hands on to `to` only the events of one member of the top-level object: the rest of the text is
// read, not built.
template <class Sax> class MemberFilter {
public:
    using number_integer_t = json::number_integer_t;
    using number_unsigned_t = json::number_unsigned_t;
    using number_float_t = json::number_float_t;
    using string_t = json::string_t;
    using binary_t = json::binary_t;

    MemberFilter(Sax &to, std::string_view member) : m_to(to), m_member(member) {}

    bool null() { return !taken() || m_to.null(); }
    bool boolean(bool v) { return !taken() || m_to.boolean(v); }
    bool number_integer(number_integer_t v) { return !taken() || m_to.number_integer(v); }
    bool number_unsigned(number_unsigned_t v) { return !taken() || m_to.number_unsigned(v); }
    bool number_float(number_float_t v, const string_t &s) { return !taken() || m_to.number_float(v, s); }
    bool string(string_t &v) { return !taken() || m_to.string(v); }
    bool binary(binary_t &v) { return !taken() || m_to.binary(v); }
    bool start_object(std::size_t n) { return open() || m_to.start_object(n); }
    bool end_object() { return close() || m_to.end_object(); }
    bool start_array(std::size_t n) { return open() || m_to.start_array(n); }
    bool end_array() { return close() || m_to.end_array(); }
    bool key(string_t &k)
    {
        if (m_depth == 1) {
            m_inMember = k == m_member;
            return true;
        }
        return !taken() || m_to.key(k);
    }
    bool parse_error(std::size_t p, const std::string &t, const nlohmann::detail::exception &e)
    {
        return m_to.parse_error(p, t, e);
    }

private:
    bool taken() const { return m_inMember && m_depth >= 1; }
    // True when the event is not the member's: the top-level object's own, or another member's.
    bool open()
    {
        const bool skip = !taken();
        ++m_depth;
        return skip;
    }
    bool close()
    {
        --m_depth;
        return !taken();
    }
    Sax &m_to;
    std::string_view m_member;
    std::size_t m_depth = 0;
    bool m_inMember = false;
};
} // namespace

json parseOrderedJsonMember(std::string_view text, std::string_view member, std::size_t maxDepth)
{
    const std::string tagged = tagNonFiniteTokens(text);
    if (!tagged.empty())
        text = tagged;
    OrderedJsonBuilder builder(maxDepth);
    MemberFilter<OrderedJsonBuilder> filter(builder, member);
    if (!json::sax_parse(text, &filter, json::input_format_t::json, true, false))
        return json(json::value_t::discarded);
    return builder.take();
}

namespace {
ValuePtr jsonToValueAt(const json &j, std::uint32_t depth)
{
    if (depth > PickleLimits::kMaxDepth)
        throw FormatError("JSON nests deeper than the limit of " + std::to_string(PickleLimits::kMaxDepth) + " levels");
    switch (j.type()) {
    case json::value_t::object: {
        if (const auto f = taggedNonFinite(j))
            return Value::floating(*f);
        if (const auto digits = taggedWideInt(j))
            return Value::bigInteger(*digits);
        auto d = Value::dict();
        for (const auto &[k, v] : j.items()) {
            auto child = jsonToValueAt(v, depth + 1);
            d->noteChild(child);
            d->entries().push_back({Value::string(k), child});
        }
        return d;
    }
    case json::value_t::array: {
        std::vector<ValuePtr> items;
        for (const auto &v : j)
            items.push_back(jsonToValueAt(v, depth + 1));
        auto l = Value::list(std::move(items));
        for (const auto &i : l->items())
            l->noteChild(i);
        return l;
    }
    case json::value_t::string: return Value::string(j.get<std::string>());
    case json::value_t::boolean: return Value::boolean(j.get<bool>());
    case json::value_t::number_integer: return Value::integer(j.get<std::int64_t>());
    case json::value_t::number_unsigned:
        return j.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                   ? Value::bigInteger(std::to_string(j.get<std::uint64_t>()))
                   : Value::integer(static_cast<std::int64_t>(j.get<std::uint64_t>()));
    case json::value_t::number_float: return Value::floating(j.get<double>());
    default: return Value::none();
    }
}
} // namespace

ValuePtr jsonToValue(const json &j) { return jsonToValueAt(j, 0); }

std::string inferOptimizerType(const Value &opt)
{
    std::set<std::string> keys;
    if (auto state = opt.get("state"))
        for (const auto &e : state->entries())
            if (e.value && e.value->isDict())
                for (const auto &k : e.value->entries())
                    if (k.key && k.key->isString())
                        keys.insert(k.key->text());
    ValuePtr group;
    if (auto groups = opt.get("param_groups"); groups && groups->isSequence() && !groups->items().empty())
        group = groups->items()[0];
    auto groupHas = [&group](const char *k) { return group && group->isDict() && group->get(k); };
    auto groupFlag = [&group](const char *k) {
        auto v = group && group->isDict() ? group->get(k) : nullptr;
        return v && v->kind() == Value::Kind::Bool && v->asBool();
    };
    if (keys.contains("exp_avg") && keys.contains("exp_avg_sq")) {
        if (keys.contains("max_exp_avg_sq") || groupFlag("amsgrad"))
            return "Adam (AMSGrad)";
        return "Adam/AdamW";
    }
    if (keys.contains("exp_avg") && keys.contains("exp_inf"))
        return "Adamax";
    if (keys.contains("square_avg") && keys.contains("acc_delta"))
        return "Adadelta";
    if (keys.contains("square_avg"))
        return "RMSprop";
    if (keys.contains("sum"))
        return "Adagrad";
    if (keys.contains("momentum_buffer") || groupHas("momentum") || groupHas("dampening"))
        return "SGD";
    if (groupHas("betas"))
        return "Adam/AdamW";
    return "unknown";
}

json securityToJson(const SecurityReport &report)
{
    json globals = json::array();
    for (const auto &g : report.globals) {
        json e{{"name", g.use.name},
               {"count", g.use.count},
               {"first_offset", g.use.firstOffset},
               {"class", globalClassName(g.cls)},
               {"weights_only", g.weightsOnlyAllowed}};
        if (!g.reason.empty())
            e["reason"] = g.reason;
        globals.push_back(std::move(e));
    }
    json allocations = json::array();
    for (const auto &a : report.allocations)
        allocations.push_back({{"what", a.what}, {"bytes", a.bytes}});
    return json{{"dangerous", report.dangerous},
                {"weights_only_loadable", report.weightsOnlyLoadable},
                {"weights_only_blockers", report.weightsOnlyBlockers},
                {"globals", globals},
                {"anomalies", report.anomalies},
                {"allocations", allocations}};
}

namespace {
// Stands where the tensor list goes when writeDocumentJson streams it.
const char *const kTensorsPlaceholder = "\x01tensors\x01";

json tensorList(const std::vector<NamedTensor> &list, bool placeholder)
{
    if (placeholder)
        return kTensorsPlaceholder;
    json tensors = json::array();
    tensors.get_ref<json::array_t &>().reserve(list.size());
    for (const auto &t : list)
        tensors.push_back(tensorEntry(t));
    return tensors;
}

} // namespace

ParameterCount parameterCount(const Document &doc)
{
    ParameterCount out;
    std::int64_t trainable = 0;
    std::unordered_set<const Value *> buffers;
    if (doc.stateDictSource == "module_tree") {
        out.exact = true;
        std::unordered_set<const Value *> seen;
        std::vector<ValuePtr> stack{doc.stateDictPath.empty() ? doc.root : findPath(doc.root, doc.stateDictPath)};
        while (!stack.empty()) {
            const ValuePtr m = std::move(stack.back());
            stack.pop_back();
            if (!m || !isModule(*m) || !seen.insert(m.get()).second)
                continue;
            if (auto b = m->state()->get("_buffers"); b && b->isDict())
                for (const auto &e : b->entries())
                    if (e.value)
                        buffers.insert(e.value.get());
            if (auto children = m->state()->get("_modules"); children && children->isDict())
                for (const auto &e : children->entries())
                    stack.push_back(e.value);
        }
    }
    const bool declared = doc.stateDictSource == "script_module" && doc.scriptDeclared;
    if (declared)
        out.exact = true;
    auto knownBuffer = [](const std::string &name) {
        const auto dot = name.rfind('.');
        const std::string_view last = dot == std::string::npos ? std::string_view(name) : std::string_view(name).substr(dot + 1);
        return last == "running_mean" || last == "running_var" || last == "num_batches_tracked";
    };
    // AveragedModel's n_averaged beside its module.* weights is a buffer (its parameters() leave it out).
    std::size_t averagedCounter = std::string::npos;
    if (!declared && !out.exact && std::any_of(doc.stateDict.begin(), doc.stateDict.end(),
                                               [](const NamedTensor &t) { return isAveragedModelCounter(t.name); })) {
        std::vector<std::string> names;
        names.reserve(doc.stateDict.size());
        for (const auto &t : doc.stateDict)
            names.push_back(t.name);
        averagedCounter = averagedModelCounter(names);
    }
    // A pruned parameter's X_mask is a buffer (torch.nn.utils.prune registers it so); its X_orig is the parameter.
    std::unordered_set<std::size_t> masks;
    if (!declared && !out.exact)
        for (const auto &p : prunedParameters(doc.stateDict))
            masks.insert(p.mask);
    std::set<std::tuple<const void *, std::int64_t, std::vector<std::int64_t>, std::vector<std::int64_t>, int>> counted;
    for (std::size_t i = 0; i < doc.stateDict.size(); ++i) {
        const auto &t = doc.stateDict[i];
        if (declared ? !t.ref().isParameter
                     : out.exact ? buffers.contains(t.value.get())
                                 : knownBuffer(t.name) || i == averagedCounter || masks.contains(i))
            continue;
        const TensorRef &r = t.ref();
        // model.parameters() skips a parameter it has yielded: the same object. A module tree keeps
        // the objects, so two Parameters made on one storage count twice, as there; a plain state
        // dict detached them all, so a tied weight is known by its storage, offset, shape and strides.
        const bool byObject = out.exact && !declared;
        const void *where = r.storage && !byObject ? static_cast<const void *>(r.storage.get())
                                                   : static_cast<const void *>(&r);
        if (!counted.insert({where, byObject ? 0 : r.storageOffset, r.shape, r.strides, static_cast<int>(r.dtype)})
                 .second)
            continue;
        const std::int64_t n = std::max<std::int64_t>(0, r.numel());
        if (__builtin_add_overflow(out.count, n, &out.count))
            return {std::numeric_limits<std::int64_t>::max(), out.exact, std::nullopt};
        if (r.requiresGrad)
            trainable += n;  // at most count: no overflow
    }
    if (out.exact)
        out.trainable = trainable;
    return out;
}

std::vector<std::vector<std::string>> tiedTensors(const Document &doc)
{
    std::vector<std::vector<std::string>> groups;
    if (!doc.hasPickle() || !doc.hasStateDict)
        return groups;
    std::map<TensorIdentity, std::size_t> groupOf;
    std::map<const TensorRef *, std::size_t> groupOfObject;
    std::vector<std::vector<std::string>> all;
    for (const auto &t : doc.stateDict) {
        if (!t.value || !t.value->tensorRef())
            continue;
        // A quantized, sparse or storage-less tensor is tied only as the same object.
        const auto identity = tensorIdentity(t.ref());
        const std::size_t group = identity ? groupOf.try_emplace(*identity, all.size()).first->second
                                           : groupOfObject.try_emplace(&t.ref(), all.size()).first->second;
        if (group == all.size())
            all.emplace_back();
        all[group].push_back(t.name);
    }
    for (auto &g : all)
        if (g.size() > 1)
            groups.push_back(std::move(g));
    return groups;
}

namespace {

json optionalNumber(const std::optional<double> &v)
{
    if (!v)
        return nullptr;
    if (!std::isfinite(*v))  // as valueToJson tags a float JSON cannot hold
        return json{{"__float__", std::isnan(*v) ? "nan" : (*v > 0 ? "inf" : "-inf")}};
    return *v;
}

// A folder opened as a checkpoint: its layout, the file read, its other parts and the trainer state.
json folderJson(const CheckpointFolder &f)
{
    json parts = json::array();
    for (const auto &p : f.parts) {
        json part = {{"name", p.name}, {"path", p.path}, {"role", p.role}};
        if (!p.summary.empty())
            part["summary"] = p.summary;
        if (p.scanned)
            part["dangerous_globals"] = p.dangerous;
        parts.push_back(std::move(part));
    }
    json out = {{"path", f.folder}, {"layout", f.layout}, {"model_file", f.modelFile},
                {"model_name", f.modelName}, {"model_role", f.modelRole},
                {"parts", std::move(parts)}};
    if (f.trainerState) {
        const TrainerState &t = *f.trainerState;
        json log = json::array();
        for (const auto &p : t.log) {
            json point = {{"step", p.step}};
            if (p.epoch)
                point["epoch"] = optionalNumber(p.epoch);
            if (p.loss)
                point["loss"] = optionalNumber(p.loss);
            if (p.evalLoss)
                point["eval_loss"] = optionalNumber(p.evalLoss);
            if (p.learningRate)
                point["learning_rate"] = optionalNumber(p.learningRate);
            log.push_back(std::move(point));
        }
        out["trainer_state"] = {
            {"global_step", t.globalStep ? json(*t.globalStep) : json(nullptr)},
            {"max_steps", t.maxSteps ? json(*t.maxSteps) : json(nullptr)},
            {"epoch", optionalNumber(t.epoch)},
            {"best_metric", optionalNumber(t.bestMetric)},
            {"best_model_checkpoint", t.bestModelCheckpoint.empty() ? json(nullptr) : json(t.bestModelCheckpoint)},
            {"last_loss", optionalNumber(t.lastLoss())},
            {"last_eval_loss", optionalNumber(t.lastEvalLoss())},
            {"log_history", std::move(log)}};
    }
    if (!f.runCheckpoints.empty()) {
        out["run_checkpoints"] = f.runCheckpoints;  // the first kMaxRunCheckpoints by number
        out["run_checkpoints_found"] = f.runCheckpointsFound;
    }
    out["notes"] = f.notes;
    return out;
}

json documentJson(const Document &doc, bool placeholder)
{
    // One budget for every value the document writes: an optimizer's per-parameter states are
    // written one by one, and each may reference the same long string.
    JsonBudget budget;
    auto valueToJson = [&budget](const ValuePtr &v) { return JsonWriter(budget).write(v, "", 0); };
    json j = objectWithRoom(24);
    j["file"] = doc.path;
    j["format"] = formatName(doc.format);
    j["format_detail"] = doc.formatDetail;
    j["pickle_protocol"] = doc.hasPickle() ? json(doc.pickleProtocol) : json(nullptr);
    j["kind"] = kindName(doc.kind);
    if (doc.hasStateDict) {
        json tensors = tensorList(doc.stateDict, placeholder);
        json &sd = j["state_dict"];
        sd = objectWithRoom(8);
        sd["path"] = doc.stateDictPath;
        sd["source"] = doc.stateDictSource;
        sd["others"] = doc.otherWeightSets;
        sd["tensors"] = std::move(tensors);  // moved: a copy of 20,000 entries costs more than making them
        const ParameterCount params = parameterCount(doc);
        sd["parameters"] = params.count;
        sd["parameters_exact"] = params.exact;
        sd["trainable_parameters"] = params.trainable ? json(*params.trainable) : json(nullptr);
        sd["elements"] = doc.parameterCount();  // every tensor's, tied ones and buffers included
        sd["tied"] = tiedTensors(doc);
        // torch.nn.utils.prune's pairs: the parameter the model computes, the two tensors it is made
        // of, and how much of it is masked (the mask's zeros; null where too costly to count here).
        if (const auto pruned = prunedParameters(doc.stateDict); !pruned.empty()) {
            const auto counts = maskedCounts(doc.stateDict, pruned);
            json list = json::array();
            for (std::size_t k = 0; k < pruned.size(); ++k) {
                const auto &p = pruned[k];
                const std::int64_t n = doc.stateDict[p.mask].ref().numel();
                list.push_back({{"name", p.name},
                                {"orig", doc.stateDict[p.orig].name},
                                {"mask", doc.stateDict[p.mask].name},
                                {"shape", doc.stateDict[p.orig].ref().shape},
                                {"masked", counts[k] ? json(*counts[k]) : json(nullptr)},
                                {"masked_fraction", counts[k] && n > 0 ? json(double(*counts[k]) / double(n)) : json(nullptr)}});
            }
            sd["pruned"] = std::move(list);
        }
        sd["bytes"] = doc.stateDictBytes();
    } else {
        j["state_dict"] = nullptr;
        // No state dict: still list every tensor the file holds, by path.
        j["tensors"] = tensorList(doc.tensors, placeholder);
    }
    if (doc.optimizer) {
        // A group or state the file lists again (through the memo) is a __ref__ to the first, not
        // written anew each time. Only the whole object: torch gives every group the same `betas`
        // tuple from its defaults, which each group shows as numbers.
        std::unordered_map<const Value *, std::string> firstAt;
        auto once = [&](const ValuePtr &v, std::string where) {
            if (!v || !v->isContainer())
                return valueToJson(v);
            const auto [it, added] = firstAt.try_emplace(v.get(), std::move(where));
            return added ? valueToJson(v) : json{{"__ref__", it->second}};
        };
        json groups = json::array();
        if (auto g = doc.optimizer->get("param_groups"))
            for (std::size_t i = 0; i < g->items().size(); ++i)
                groups.push_back(once(g->items()[i], "param_groups/" + std::to_string(i)));
        std::set<std::string> stateKeys;
        std::size_t count = 0;
        // Each per-parameter state read once: a pickle can give every parameter the same large dict.
        std::unordered_set<const Value *> seen;
        if (auto s = doc.optimizer->get("state"))
            for (const auto &e : s->entries()) {
                ++count;
                if (e.value && e.value->isDict() && seen.insert(e.value.get()).second)
                    for (const auto &k : e.value->entries())
                        if (k.key)
                            stateKeys.insert(keyText(*k.key));
            }
        j["optimizer"] = {{"path", doc.optimizerPath},
                          {"type", optimizerClassName(*doc.optimizer)},
                          {"param_groups", groups},
                          {"state", {{"count", count}, {"keys", stateKeys}}}};
        if (auto map = mapOptimizer(doc)) {
            json params = json::array();
            for (const auto &p : map->parameters) {
                json e{{"id", p.key.empty() ? json(p.id) : json(p.key)}, {"group", p.group}, {"name", p.name.empty() ? json(nullptr) : json(p.name)}};
                if (p.state)
                    e["state"] = once(p.state, "parameters/" + std::to_string(params.size()) + "/state");
                if (!p.shapeAgrees)
                    e["shape_mismatch"] = true;
                params.push_back(std::move(e));
            }
            j["optimizer"]["parameters"] = params;
            j["optimizer"]["mapping"] = {{"certain", map->certain}, {"note", map->note}};
        }
    } else {
        j["optimizer"] = nullptr;
        if (auto why = optimizerNotRead(doc); !why.empty())
            j["optimizer_not_read"] = std::move(why);
    }
    // Every optimizer of the file (a GAN keeps one per network), the one above among them.
    json optimizers = json::array();
    bool moreOptimizers = false;
    for (const auto &s : optimizerEntries(doc, &moreOptimizers)) {
        json o{{"path", s.path},          {"type", s.className},        {"primary", s.primary},
               {"param_groups", s.groups}, {"parameters", s.parameters}, {"states", s.states},
               {"step", s.step ? json(*s.step) : json(nullptr)}};
        if (!s.updates.empty())
            o["updates"] = {{"known", s.updatesKnown}, {"note", s.updates}};
        optimizers.push_back(std::move(o));
    }
    j["optimizers"] = std::move(optimizers);
    if (moreOptimizers)
        j["optimizers_cut"] = true;  // the file holds more than kMaxOptimizers; the others are not read
    // Metadata: every root entry that is neither the weights nor the optimizer.
    json meta = json::object();
    ObjectBuilder metaBuilder(meta);
    // A pickled object at the root (training_args.bin): its class, then its attributes as metadata.
    const bool objectRoot = doc.root && doc.root->kind() == Value::Kind::Object;
    if (objectRoot)
        metaBuilder.set("__class__", className(*doc.root));
    if (doc.root && (doc.root->isDict() || objectRoot)) {
        JsonWriter writer(budget);
        for (const auto &e : metadataEntries(doc)) {
            if (!budget.spend(e.key.size() + 4)) {
                metaBuilder.set("__truncated__", "output limit");
                break;
            }
            switch (e.role) {
            case MetadataEntry::Role::OtherWeights:
                metaBuilder.set(e.key, json{{"__weights__", "listed under state_dict.others"}});
                break;
            case MetadataEntry::Role::HoldsWeights:
                metaBuilder.set(e.key, json("<contains weights or optimizer state>"));
                break;
            case MetadataEntry::Role::Plain:
                metaBuilder.set(e.key, writer.write(e.value, e.key, 1));
                break;
            }
        }
    }
    if (doc.formatMetadata)
        metaBuilder.set("__metadata__", valueToJson(doc.formatMetadata));
    j["metadata"] = std::move(meta);
    // Lightning's ModelCheckpoint and EarlyStopping states, their 0-d tensors as numbers.
    json callbacks = json::array();
    for (const auto &c : lightningCallbacks(doc)) {
        json fields = json::object();
        for (const auto &[k, v] : c.fields)
            fields[k] = valueToJson(v);
        callbacks.push_back({{"callback", c.name}, {"key", c.key}, {"state", std::move(fields)}});
    }
    j["callbacks"] = std::move(callbacks);
    j["conventions"] = doc.conventions;
    if (doc.sidecar)
        j["sidecar"] = {{"file", doc.sidecarPath}, {"content", valueToJson(doc.sidecar)}};
    if (doc.folder)
        j["folder"] = folderJson(*doc.folder);
    if (!doc.sourceRecords.empty())
        j["torchscript_code"] = doc.sourceRecords;
    json globals = json::array();
    for (const auto &g : doc.globals)
        globals.push_back({{"name", g.name}, {"count", g.count}, {"first_offset", g.firstOffset}});
    j["globals"] = std::move(globals);
    j["security"] = securityToJson(securityReport(doc));
    j["warnings"] = doc.warnings;
    return j;
}
} // namespace

json runFolderToJson(const RunFolder &run, const std::string &error)
{
    json checkpoints = json::array();
    for (const auto &c : run.checkpoints)
        checkpoints.push_back({{"name", c.name},
                               {"path", c.path},
                               {"number", c.number},
                               {"global_step", c.globalStep ? json(*c.globalStep) : json(nullptr)},
                               {"epoch", optionalNumber(c.epoch)},
                               {"last_loss", optionalNumber(c.lastLoss)}});
    return {{"file", run.folder},
            {"error", error},
            {"run", {{"folder", run.folder},
                     {"found", run.found},
                     {"entries_cut", run.entriesCut},
                     {"checkpoints", std::move(checkpoints)}}}};
}

json documentToJson(const Document &doc) { return documentJson(doc, false); }

namespace jsontext {

namespace {
// Printable ASCII other than the quote and the backslash: written as it is.
bool plainText(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F && c != '"' && c != '\\';
    });
}

void appendQuoted(std::string &out, std::string_view s)
{
    out += '"';
    out += s;
    out += '"';
}

template <class T> void appendNumber(std::string &out, T v)
{
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}
} // namespace

// Anything but plain text goes through nlohmann: its escapes, and its U+FFFD or its error.
void appendString(std::string &out, std::string_view s)
{
    if (plainText(s))
        appendQuoted(out, s);
    else
        out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

void appendStringStrict(std::string &out, std::string_view s)
{
    if (plainText(s))
        appendQuoted(out, s);
    else
        out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::strict);
}

void appendInt(std::string &out, std::int64_t v) { appendNumber(out, v); }

void appendUnsigned(std::string &out, std::uint64_t v) { appendNumber(out, v); }

void appendValue(std::string &out, const json &v, std::string_view pad, int indent)
{
    // dump's text at the top level, each line break followed by the nesting's indentation (a
    // dumped string holds no raw line break).
    const std::string text = v.dump(indent, ' ', false, json::error_handler_t::replace);
    for (std::size_t from = 0;;) {
        const auto nl = text.find('\n', from);
        out.append(text, from, (nl == std::string::npos ? text.size() : nl) - from);
        if (nl == std::string::npos)
            break;
        out += pad;
        from = nl + 1;
    }
}

ObjectLayout::ObjectLayout(std::string_view pad, int indent, std::span<const std::string_view> keys)
    : m_pad(pad), m_memberPad(m_pad + std::string(static_cast<std::size_t>(indent), ' ')),
      m_itemPad(m_memberPad + std::string(static_cast<std::size_t>(indent), ' ')), m_indent(indent)
{
    m_keys.reserve(2 * keys.size());
    for (const auto k : keys) {
        const std::string line = m_memberPad + '"' + std::string(k) + "\": ";
        m_keys.push_back('{' + line);
        m_keys.push_back(',' + line);
    }
}

void ObjectLayout::value(std::string &out, const std::vector<std::int64_t> &v) const
{
    if (v.empty()) {
        out += "[]";
        return;
    }
    out += '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i)
            out += ',';
        out += m_itemPad;
        appendInt(out, v[i]);
    }
    out += m_memberPad;
    out += ']';
}

void ObjectLayout::close(std::string &out) const
{
    out += m_pad;
    out += '}';
}

namespace {
constexpr std::size_t kStreamBuffer = std::size_t{1} << 16;
}

ArrayStream::ArrayStream(std::ostream &out, std::string_view pad, int indent)
    : m_out(out), m_pad(pad), m_elementPad(m_pad + std::string(static_cast<std::size_t>(indent), ' '))
{
    m_buf.reserve(kStreamBuffer);
}

void ArrayStream::flushIfFull()
{
    if (m_buf.size() >= kStreamBuffer - 4096) {
        m_out.write(m_buf.data(), static_cast<std::streamsize>(m_buf.size()));
        m_buf.clear();
    }
}

std::string &ArrayStream::next()
{
    flushIfFull();
    m_buf += m_count++ ? ',' : '[';
    m_buf += m_elementPad;
    return m_buf;
}

void ArrayStream::finish()
{
    if (m_count) {
        m_buf += m_pad;
        m_buf += ']';
    } else {
        m_buf += "[]";
    }
    m_out.write(m_buf.data(), static_cast<std::streamsize>(m_buf.size()));
    m_buf.clear();
}

} // namespace jsontext

void writeDocumentJson(const Document &doc, std::ostream &out, int indent)
{
    const std::string text =
        documentJson(doc, true).dump(indent, ' ', false, json::error_handler_t::replace);
    const std::string mark = json(kTensorsPlaceholder).dump();  // as dump escapes it
    const auto at = text.find(mark);  // documentJson always writes it
    if (text.find(mark, at + 1) != std::string::npos) {
        // A string of the file's reads as the mark too (only a file made to): which one stands for
        // the list is unknown, so the document is made whole instead.
        out << documentToJson(doc).dump(indent, ' ', false, json::error_handler_t::replace);
        return;
    }
    const auto lineStart = text.rfind('\n', at) + 1;
    const std::size_t level = text.find_first_not_of(' ', lineStart) - lineStart;  // the key's indentation
    out.write(text.data(), static_cast<std::streamsize>(at));
    jsontext::ArrayStream list(out, "\n" + std::string(level, ' '), indent);
    const jsontext::ObjectLayout layout(list.elementPad(), indent, kEntryKeys);
    for (const auto &t : doc.hasStateDict ? doc.stateDict : doc.tensors) {
        std::string &o = list.next();
        bool first = true;
        tensorMembers(t, [&](std::size_t key, const auto &value) {
            layout.member(o, key, first);
            first = false;
            layout.value(o, value);
        });
        layout.close(o);
    }
    list.finish();
    out.write(text.data() + at + mark.size(), static_cast<std::streamsize>(text.size() - at - mark.size()));
}

} // namespace ckpt
