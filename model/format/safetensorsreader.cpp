#include "safetensorsreader.h"
#include "safetensorswriter.h"

#include "error.h"
#include "jsonexport.h"
#include "mappedfile.h"
#include "metadata.h"
#include "textcodec.h"
#include "valuetree.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace ckpt {

namespace {
// nlohmann's ordered_json finds keys by linear search: a header of n names takes n^2 steps (a
// 2 MB header took 13 s). Parse into std::map-backed objects and keep the file's order aside.
using json = nlohmann::json;

struct ParsedJson {
    json value;
    std::vector<std::string> order;                            // top-level keys, first mention
    std::map<std::string, std::vector<std::string>> childOrder;  // keys of each top-level object
};

std::uint64_t headerLength(std::span<const std::uint8_t> d)
{
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
        n = (n << 8) | d[static_cast<std::size_t>(i)];
    return n;
}

// Records the order of keys at the top two levels, refuses duplicate keys at the top level
// (nlohmann would keep the last silently) and more than `maxKeys` of them. A SAX pass, because
// nlohmann's parse callbacks rescan an object's members each time one of them ends (quadratic).
class KeyOrder final : public nlohmann::json_sax<json> {
public:
    KeyOrder(ParsedJson &out, std::size_t maxKeys, const std::string &what) : m_out(out), m_maxKeys(maxKeys), m_what(what) {}
    std::string duplicate;
    std::string error;

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t &) override { return true; }
    bool string(string_t &) override { return true; }
    bool binary(binary_t &) override { return true; }
    bool start_object(std::size_t) override { return enter(); }
    bool end_object() override { return --m_depth, true; }
    bool start_array(std::size_t) override { return enter(); }
    bool end_array() override { return --m_depth, true; }
    bool key(string_t &key) override
    {
        if (m_depth == 1) {
            if (!m_seen.insert(key).second) {
                if (duplicate.empty())
                    duplicate = key;
                m_children = nullptr;
                return true;
            }
            if (m_seen.size() > m_maxKeys)
                throw FormatError(m_what + " holds more than " + std::to_string(m_maxKeys) + " entries, the limit");
            m_out.order.push_back(key);
            m_children = &m_out.childOrder[key];
            m_seenChild.clear();
        } else if (m_depth == 2 && m_children && m_seenChild.insert(key).second) {
            m_children->push_back(key);
        }
        return true;
    }
    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &e) override
    {
        error = e.what();
        return false;
    }

private:
    // Refused here, before anything is built: nlohmann's dump and comparisons recurse once a level.
    bool enter()
    {
        if (++m_depth > SafetensorsLimits::kMaxJsonDepth)
            throw FormatError(m_what + " nests deeper than " + std::to_string(SafetensorsLimits::kMaxJsonDepth) +
                              " levels, the limit");
        return true;
    }
    ParsedJson &m_out;
    std::size_t m_maxKeys;
    const std::string &m_what;
    int m_depth = 0;
    std::set<std::string> m_seen;
    std::set<std::string> m_seenChild;
    std::vector<std::string> *m_children = nullptr;
};

// The state dict's order this tool recorded when it wrote the file (kSafetensorsKeyOrder, a JSON
// list of every tensor and alias name): the file stores the names sorted. Used only when it names
// each tensor of the file exactly once; anything else (another tool's entry, an edited header)
// leaves the file's own order.
void restoreKeyOrder(const Document &doc, Value &root)
{
    if (!doc.formatMetadata || root.entries().size() < 2)
        return;
    const auto text = doc.formatMetadata->get(std::string(kSafetensorsKeyOrder));
    if (!text || !text->isString())
        return;
    const json order = json::parse(text->text(), nullptr, false);
    if (!order.is_array() || order.size() != root.entries().size())
        return;
    std::unordered_map<std::string_view, std::size_t> at;  // name -> its place in the file's order
    at.reserve(root.entries().size());
    for (std::size_t i = 0; i < root.entries().size(); ++i)
        at.emplace(root.entries()[i].key->text(), i);
    std::vector<Value::DictEntry> ordered;
    ordered.reserve(order.size());
    std::vector<bool> used(root.entries().size(), false);
    for (const auto &name : order) {
        if (!name.is_string())
            return;
        const auto it = at.find(name.get_ref<const std::string &>());
        if (it == at.end() || used[it->second])
            return;
        used[it->second] = true;
        ordered.push_back(root.entries()[it->second]);
    }
    root.entries() = std::move(ordered);
}

// A JSON value for an error message: short scalars as written, the rest by kind. Never the whole
// value: it can be megabytes long, or nested as deep as the limit allows.
std::string describe(const json &v)
{
    switch (v.type()) {
    case json::value_t::array:
        return "a list of " + std::to_string(v.size());
    case json::value_t::object:
        return "an object";
    case json::value_t::string: {
        const auto &text = v.get_ref<const std::string &>();
        if (text.size() <= 32)
            return v.dump(-1, ' ', false, json::error_handler_t::replace);
        return "a string of " + std::to_string(text.size()) + " bytes";
    }
    default:
        return v.dump(-1, ' ', false, json::error_handler_t::replace);
    }
}

ParsedJson parseUnique(std::string_view text, const std::string &what, std::size_t maxKeys)
{
    ParsedJson out;
    KeyOrder order(out, maxKeys, what);
    if (!json::sax_parse(text.begin(), text.end(), &order))
        throw FormatError(what + " is not valid JSON: " + order.error);
    if (!order.duplicate.empty())
        throw FormatError(what + " names '" + order.duplicate + "' twice");
    try {
        out.value = json::parse(text.begin(), text.end());
    } catch (const json::exception &e) {
        throw FormatError(what + " is not valid JSON: " + e.what());
    }
    if (!out.value.is_object())
        throw FormatError(what + " is not a JSON object");
    return out;
}

// A safetensors header in one SAX pass, building only what is read: each tensor's entry as a
// small JSON value, and __metadata__'s strings straight into the entries kept, at most
// kMaxMetadataEntries of them (the rest only counted). Building the whole header as a JSON tree,
// then as values, took 56 s and 4.2 GB for a 95 MB header of 8 million metadata entries.
// Problems are recorded, and said after the pass, so that invalid JSON is said as such first.
class HeaderReader final : public nlohmann::json_sax<json> {
public:
    struct Tensor {
        std::string name;
        json info;
    };
    std::vector<Tensor> tensors;                                  // in the header's order
    std::vector<std::pair<std::string, std::string>> metadata;    // first mention's order, last value
    std::size_t metadataDropped = 0;                              // entries past the cap (a key given twice there, twice)
    bool rootIsObject = false;
    bool hasMetadata = false;
    bool metadataIsObject = false;
    std::size_t metadataAt = 0;  // tensors before __metadata__
    std::string duplicate;       // a top-level name given twice
    std::string notString;       // a __metadata__ key whose value is not a string
    std::string error;           // the JSON parser's

    explicit HeaderReader(std::size_t maxKeys) : m_maxKeys(maxKeys) {}

    bool null() override { return scalar([](Dom &d) { return d.null(); }); }
    bool boolean(bool v) override { return scalar([v](Dom &d) { return d.boolean(v); }); }
    bool number_integer(number_integer_t v) override { return scalar([v](Dom &d) { return d.number_integer(v); }); }
    bool number_unsigned(number_unsigned_t v) override { return scalar([v](Dom &d) { return d.number_unsigned(v); }); }
    bool number_float(number_float_t v, const string_t &s) override
    {
        return scalar([v, &s](Dom &d) { return d.number_float(v, s); });
    }
    bool binary(binary_t &v) override { return scalar([&v](Dom &d) { return d.binary(v); }); }
    bool string(string_t &v) override
    {
        if (m_in == In::Metadata && m_depth == 2 && metadataIsObject) {
            keep(v);
            return true;
        }
        return scalar([&v](Dom &d) { return d.string(v); });
    }
    bool start_object(std::size_t) override { return start(true); }
    bool start_array(std::size_t) override { return start(false); }
    bool end_object() override { return finish(true); }
    bool end_array() override { return finish(false); }
    bool key(string_t &k) override
    {
        if (m_depth == 1 && rootIsObject) {
            topLevel(k);
        } else if (m_in == In::Tensor) {
            m_dom->key(k);
        } else if (m_in == In::Metadata && m_depth == 2) {
            m_key = k;
        }
        return true;
    }
    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &e) override
    {
        error = e.what();
        return false;
    }

private:
    using Dom = nlohmann::detail::json_sax_dom_parser<json>;
    enum class In { Nothing, Tensor, Metadata };

    template <class F>
    bool scalar(F &&forward)
    {
        if (m_in == In::Tensor)
            forward(*m_dom);
        else if (m_in == In::Metadata && m_depth == 2 && metadataIsObject && notString.empty())
            notString = m_key;
        return true;
    }
    bool start(bool object)
    {
        // Refused here, before anything is built: nlohmann's dump and comparisons recurse once a level.
        if (++m_depth > SafetensorsLimits::kMaxJsonDepth)
            throw FormatError("safetensors header nests deeper than " + std::to_string(SafetensorsLimits::kMaxJsonDepth) +
                              " levels, the limit");
        if (m_depth == 1) {
            rootIsObject = object;
        } else if (m_in == In::Tensor) {
            object ? m_dom->start_object(std::size_t(-1)) : m_dom->start_array(std::size_t(-1));
        } else if (m_in == In::Metadata) {
            if (m_depth == 2)
                metadataIsObject = object;
            else if (m_depth == 3 && metadataIsObject && notString.empty())
                notString = m_key;
        }
        return true;
    }
    bool finish(bool object)
    {
        if (m_in == In::Tensor && m_depth >= 2)
            object ? m_dom->end_object() : m_dom->end_array();
        if (--m_depth == 0)
            close();
        return true;
    }
    void topLevel(const std::string &k)
    {
        close();
        if (!m_seen.insert(k).second) {
            if (duplicate.empty())
                duplicate = k;
            return;
        }
        if (m_seen.size() > m_maxKeys)
            throw FormatError("safetensors header holds more than " + std::to_string(m_maxKeys) + " entries, the limit");
        if (k == "__metadata__") {
            hasMetadata = true;
            metadataAt = tensors.size();
            m_in = In::Metadata;
            return;
        }
        tensors.push_back({k, json()});
        m_dom.emplace(tensors.back().info);  // the vector does not grow until close()
        m_in = In::Tensor;
    }
    void close()
    {
        m_dom.reset();
        m_in = In::Nothing;
    }
    void keep(const std::string &value)
    {
        if (const auto it = m_metadataIndex.find(m_key); it != m_metadataIndex.end()) {
            metadata[it->second].second = value;  // as the library's map keeps the last
            return;
        }
        if (metadata.size() >= SafetensorsLimits::kMaxMetadataEntries) {
            ++metadataDropped;
            return;
        }
        m_metadataIndex.emplace(m_key, metadata.size());
        metadata.emplace_back(m_key, value);
    }

    std::size_t m_maxKeys;
    int m_depth = 0;
    In m_in = In::Nothing;
    std::optional<Dom> m_dom;
    std::string m_key;
    std::unordered_set<std::string> m_seen;
    std::unordered_map<std::string, std::size_t> m_metadataIndex;
};
} // namespace

bool looksLikeSafetensors(std::span<const std::uint8_t> d)
{
    if (d.size() < 10)
        return false;
    // A header longer than the file is still safetensors, to be refused with that reason. A header
    // that fits the file exactly as its length says, and opens as JSON text does (another value
    // than an object, a byte order mark, white space), is one too, refused for what it holds:
    // no other format starts with a small length and JSON.
    const std::uint64_t n = headerLength(d);
    if (n >= 2 && d[8] == '{')
        return true;
    const bool opensJson = d[8] == '[' || d[8] == '"' || d[8] == ' ' || d[8] == '\t' || d[8] == '\n' ||
                           d[8] == '\r' || (d[8] == 0xEF && d[9] == 0xBB);
    return n >= 2 && n <= d.size() - 8 && opensJson;
}

void readSafetensors(Document &doc, std::span<const std::uint8_t> d)
{
    if (d.size() < 8)
        throw FormatError("safetensors: file is shorter than its 8-byte header length");
    const std::uint64_t n = headerLength(d);
    if (n > SafetensorsLimits::kMaxHeaderBytes)
        throw FormatError("safetensors: header of " + std::to_string(n) + " bytes exceeds the limit of " +
                          std::to_string(SafetensorsLimits::kMaxHeaderBytes));
    if (n > d.size() - 8)
        throw FormatError("safetensors: header of " + std::to_string(n) + " bytes is longer than the file (" +
                          std::to_string(d.size()) + " bytes)");
    std::string_view text(reinterpret_cast<const char *>(d.data() + 8), static_cast<std::size_t>(n));
    if (!isValidUtf8(text))
        throw FormatError("safetensors: header is not UTF-8");
    // nlohmann's parser skips a byte order mark; the safetensors library (serde_json) refuses it.
    if (text.starts_with("\xEF\xBB\xBF"))
        throw FormatError("safetensors: header starts with a byte order mark, which the safetensors library refuses");
    // One key beyond the tensor limit is the __metadata__ entry.
    HeaderReader header(SafetensorsLimits::kMaxTensors + 1);
    if (!json::sax_parse(text.begin(), text.end(), &header))
        throw FormatError("safetensors header is not valid JSON: " + header.error);
    if (!header.rootIsObject)
        throw FormatError("safetensors header is not a JSON object");
    if (!header.duplicate.empty())
        throw FormatError("safetensors header names '" + header.duplicate + "' twice");
    const std::uint64_t dataStart = 8 + n;
    const auto buffer = d.subspan(static_cast<std::size_t>(dataStart));

    struct Range {
        std::uint64_t begin, end;
        std::string name;
    };
    std::vector<Range> ranges;
    auto root = Value::dict();
    const std::size_t tensorCount = header.tensors.size();
    if (tensorCount > SafetensorsLimits::kMaxTensors)
        throw FormatError("safetensors: " + std::to_string(tensorCount) + " tensors exceed the limit of " +
                          std::to_string(SafetensorsLimits::kMaxTensors) + " tensors a file");
    // __metadata__, in its place among the tensors (a problem with it is said where the file has it).
    const auto readMetadata = [&] {
        if (!header.metadataIsObject)
            throw FormatError("safetensors: __metadata__ is not an object");
        if (!header.notString.empty())
            throw FormatError("safetensors: __metadata__ value '" + header.notString + "' is not a string");
        auto meta = Value::dict();
        meta->entries().reserve(header.metadata.size());
        for (auto &[k, v] : header.metadata)
            meta->entries().push_back({Value::string(std::move(k)), Value::string(std::move(v))});
        if (header.metadataDropped > 0)
            doc.warnings.push_back("safetensors: __metadata__ holds more than " + std::to_string(header.metadata.size()) +
                                   " entries; the first " + std::to_string(header.metadata.size()) + " are kept, " +
                                   std::to_string(header.metadataDropped) + " more are not shown");
        doc.formatMetadata = meta;
    };
    for (std::size_t i = 0; i <= header.tensors.size(); ++i) {
        if (header.hasMetadata && i == header.metadataAt)
            readMetadata();
        if (i == header.tensors.size())
            break;
        const std::string &name = header.tensors[i].name;
        const json &info = header.tensors[i].info;
        auto where = "safetensors: tensor '" + name + "'";
        if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
            throw FormatError(where + " lacks dtype, shape or data_offsets");
        if (!info["dtype"].is_string())
            throw FormatError(where + ": dtype is not a string");
        const auto tag = info["dtype"].get<std::string>();
        const auto dt = dtypeFromSafetensors(tag);
        if (!dt)
            throw FormatError(where + ": unknown dtype '" + tag + "'");
        auto ref = std::make_shared<TensorRef>();
        ref->dtype = *dt;
        ref->rebuild = "safetensors";
        if (!info["shape"].is_array())
            throw FormatError(where + ": shape is not a list");
        if (info["shape"].size() > TensorLimits::kMaxRank)
            throw FormatError(where + ": shape of " + std::to_string(info["shape"].size()) +
                              " dimensions exceeds the limit of " + std::to_string(TensorLimits::kMaxRank));
        for (const auto &dim : info["shape"]) {
            if (!dim.is_number_unsigned())
                throw FormatError(where + ": shape holds " + describe(dim) + ", not a non-negative integer");
            const auto v = dim.get<std::uint64_t>();
            if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                throw FormatError(where + ": dimension " + std::to_string(v) + " is too large");
            ref->shape.push_back(static_cast<std::int64_t>(v));
        }
        // Contiguous row-major strides.
        ref->strides.assign(ref->shape.size(), 1);
        for (std::size_t i = ref->shape.size(); i-- > 1;)
            if (__builtin_mul_overflow(ref->strides[i], std::max<std::int64_t>(1, ref->shape[i]), &ref->strides[i - 1]))
                throw FormatError(where + ": shape overflows");
        const auto &offs = info["data_offsets"];
        if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
            throw FormatError(where + ": data_offsets is not [begin, end]");
        const auto begin = offs[0].get<std::uint64_t>();
        const auto end = offs[1].get<std::uint64_t>();
        if (begin > end || end > buffer.size())
            throw FormatError(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                              "] fall outside the " + std::to_string(buffer.size()) + "-byte data buffer");
        const auto bytes = ref->nbytes();
        if (bytes < 0)
            throw FormatError(where + ": shape " + shapeText(ref->shape) + " overflows 64-bit byte counts");
        if (static_cast<std::uint64_t>(bytes) != end - begin)
            throw FormatError(where + ": shape " + shapeText(ref->shape) + " of " + tag + " needs " +
                              std::to_string(bytes) + " bytes but data_offsets span " + std::to_string(end - begin));
        auto storage = std::make_shared<StorageRef>();
        storage->key = name;
        storage->dtype = *dt;
        storage->location = "cpu";
        storage->declaredNumel = ref->numel();
        storage->setBytes(buffer.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin)));
        ref->storage = storage;
        doc.storages.emplace(name, storage);
        ranges.push_back({begin, end, name});
        root->entries().push_back({Value::string(name), Value::tensor(ref)});
    }
    // Tensors tile the buffer exactly: no overlap, no gap, nothing after the last.
    std::sort(ranges.begin(), ranges.end(), [](const Range &a, const Range &b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected = 0;
    for (const auto &r : ranges) {
        if (r.begin < expected)
            throw FormatError("safetensors: tensor '" + r.name + "' overlaps the tensor before it");
        if (r.begin > expected)
            throw FormatError("safetensors: " + std::to_string(r.begin - expected) + " bytes before tensor '" + r.name +
                              "' belong to no tensor");
        expected = r.end;
    }
    if (expected != buffer.size())
        throw FormatError("safetensors: " + std::to_string(buffer.size() - expected) +
                          " bytes after the last tensor belong to no tensor");
    // Names this tool recorded as aliases when it wrote the file ("alias:NAME": "TARGET", for a
    // tensor that was the same tensor as another: safetensors cannot share): each is that tensor
    // again, as torch.load gives the tied weights of the file it came from. A name the header
    // already has, or a target it lacks, is left as metadata.
    if (doc.formatMetadata) {
        std::unordered_map<std::string_view, ValuePtr> byName;
        byName.reserve(root->entries().size());
        for (const auto &e : root->entries())
            byName.emplace(e.key->text(), e.value);
        std::vector<Value::DictEntry> aliases;
        for (const auto &e : doc.formatMetadata->entries()) {
            const std::string &key = e.key->text();
            if (!key.starts_with("alias:") || key == "alias:__metadata__" || byName.contains(std::string_view(key).substr(6)))
                continue;
            if (const auto it = byName.find(e.value->text()); it != byName.end())
                aliases.push_back({Value::string(key.substr(6)), it->second});
        }
        for (auto &a : aliases)
            if (byName.emplace(a.key->text(), a.value).second) {
                // Each alias is a tensor to every command (listed, measured, converted): they count
                // against the tensor limit, so a few bytes of metadata cannot name one tensor a
                // million times.
                if (root->entries().size() >= SafetensorsLimits::kMaxTensors)
                    throw FormatError("safetensors: the tensors and the aliases __metadata__ records exceed the limit of " +
                                      std::to_string(SafetensorsLimits::kMaxTensors) + " tensors a file");
                root->entries().push_back(std::move(a));
            }
    }
    restoreKeyOrder(doc, *root);
    doc.format = ContainerFormat::Safetensors;
    doc.formatDetail = "safetensors, header " + std::to_string(n) + " bytes, " + std::to_string(ranges.size()) + " tensors";
    doc.root = root;
}

bool looksLikeShardIndex(std::span<const std::uint8_t> d)
{
    const std::string_view head(reinterpret_cast<const char *>(d.data()), std::min<std::size_t>(d.size(), 4096));
    return !d.empty() && head.find_first_not_of(" \t\r\n") != std::string_view::npos &&
           head[head.find_first_not_of(" \t\r\n")] == '{' && head.find("\"weight_map\"") != std::string_view::npos;
}

namespace {
// Whether a loader that joins `name` to the index's folder, as transformers does (os.path.join),
// reaches a file outside that folder: an absolute path (a drive on Windows) or more '..' steps
// than the folders named before them. Both separators count: either one works on Windows.
bool leavesFolder(const std::string &name)
{
    if (name.starts_with('/') || name.starts_with('\\') ||
        (name.size() >= 2 && name[1] == ':' && ((name[0] | 0x20) >= 'a' && (name[0] | 0x20) <= 'z')))
        return true;
    int depth = 0;
    std::size_t begin = 0;
    while (begin <= name.size()) {
        const std::size_t end = std::min(name.find_first_of("/\\", begin), name.size());
        const std::string_view part(name.data() + begin, end - begin);
        if (part == "..") {
            if (--depth < 0)
                return true;
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
        begin = end + 1;
    }
    return false;
}

// Shard indexes being read on this thread. A shard that is itself an index is refused before it
// is read (below); this catches one that became an index after that check, so an index naming
// itself, or indexes naming each other, can neither recurse without end nor fan out.
thread_local int t_indexDepth = 0;
struct IndexDepth {
    IndexDepth() { ++t_indexDepth; }
    ~IndexDepth() { --t_indexDepth; }
    IndexDepth(const IndexDepth &) = delete;
    IndexDepth &operator=(const IndexDepth &) = delete;
};
} // namespace

namespace {
// Every (name, file) string pair of a top-level "weight_map" object, in one SAX pass that keeps
// nothing else: for an index the reader refuses (a key given twice, which Python's json takes as
// the last; more entries than the limit), what a loader would still follow is looked at, bounded.
class WeightMapStrings final : public nlohmann::json_sax<json> {
public:
    std::vector<std::pair<std::string, std::string>> pairs;
    static constexpr std::size_t kMaxPairs = 1u << 20;
    bool null() override { return value(); }
    bool boolean(bool) override { return value(); }
    bool number_integer(json::number_integer_t) override { return value(); }
    bool number_unsigned(json::number_unsigned_t) override { return value(); }
    bool number_float(json::number_float_t, const json::string_t &) override { return value(); }
    bool binary(json::binary_t &) override { return value(); }
    bool string(json::string_t &v) override
    {
        if (m_depth == 2 && m_inWeightMap && pairs.size() < kMaxPairs)
            pairs.emplace_back(m_key, v);
        return value();
    }
    bool start_object(std::size_t) override { return open(); }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(); }
    bool end_array() override { return close(); }
    bool key(json::string_t &k) override
    {
        if (m_depth == 1)
            m_topKey = k;
        m_key = k;
        return true;
    }
    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &) override { return false; }

private:
    int m_depth = 0;
    bool m_inWeightMap = false;
    std::string m_topKey, m_key;
    bool value() { return true; }
    bool open()
    {
        ++m_depth;
        if (m_depth == 2)
            m_inWeightMap = m_topKey == "weight_map";
        return m_depth <= 64;
    }
    bool close()
    {
        if (m_depth == 2)
            m_inWeightMap = false;
        --m_depth;
        return true;
    }
};
} // namespace

// Shard names that send a loader out of the folder, each once: transformers would read that file
// (whatever it is: a pickle that runs code), so a scanner must call the index dangerous. Throws
// ReadFailure naming them when there are any; never opens them.
static void refuseEscapingShards(Document &doc, const std::vector<std::pair<std::string, std::string>> &pairs)
{
    const auto dir = std::filesystem::path(doc.path).parent_path();
    std::vector<std::string> outside;
    std::set<std::string> outsideSeen;
    constexpr std::size_t kMaxOutsideListed = 16;
    std::size_t outsideCount = 0;
    std::string firstOutside;  // "weight_map['NAME'] names 'FILE'" of the first
    std::filesystem::path firstOutsidePath;
    for (const auto &[name, f] : pairs) {
        if (!leavesFolder(f) || !outsideSeen.insert(f).second)
            continue;
        const std::string what = "weight_map['" + name + "'] names '" + f + "'";
        if (++outsideCount == 1) {
            firstOutside = what;
            firstOutsidePath = (dir / f).lexically_normal();
        }
        if (outsideCount <= kMaxOutsideListed)
            outside.push_back("the index makes a loader read a file outside its folder: " + what);
    }
    if (outside.empty())
        return;
    if (outsideCount > outside.size())
        outside.push_back("and " + std::to_string(outsideCount - outside.size()) + " more files outside its folder");
    throw ReadFailure("shard index: " + firstOutside + ", a file outside the index's folder (" +
                          firstOutsidePath.string() +
                          "): transformers would load it from there, so the index is dangerous; it is not read here",
                      doc.globals, std::move(outside));
}

void readShardIndex(Document &doc, std::span<const std::uint8_t> d, const ReadOptions &options)
{
    if (t_indexDepth > 0)
        throw FormatError("shard index named as a shard by another shard index: a shard must be a checkpoint "
                          "file (safetensors or torch), not an index");
    const IndexDepth depth;
    if (d.size() > SafetensorsLimits::kMaxHeaderBytes)
        throw FormatError("shard index of " + std::to_string(d.size()) + " bytes exceeds the limit of " +
                          std::to_string(SafetensorsLimits::kMaxHeaderBytes));
    const std::string_view text(reinterpret_cast<const char *>(d.data()), d.size());
    // An index refused below (a key twice, too many entries) may still send transformers out of
    // the folder: that is said first, as the danger it is.
    const auto escapesFirst = [&]() {
        WeightMapStrings strings;
        json::sax_parse(text.begin(), text.end(), &strings);
        refuseEscapingShards(doc, strings.pairs);
    };
    ParsedJson parsed;
    try {
        parsed = parseUnique(text, "shard index", SafetensorsLimits::kMaxTensors);
    } catch (const FormatError &) {
        escapesFirst();
        throw;
    }
    const json &index = parsed.value;
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
        throw FormatError("shard index has no weight_map object");
    const auto &weightOrder = parsed.childOrder.at("weight_map");
    if (weightOrder.size() > SafetensorsLimits::kMaxTensors) {
        escapesFirst();
        throw FormatError("shard index: " + std::to_string(weightOrder.size()) + " tensors exceed the limit of " +
                          std::to_string(SafetensorsLimits::kMaxTensors) + " tensors");
    }
    {
        // Every name a loader would follow is looked at before any other fault is said (transformers
        // opens sorted(set(weight_map.values())): "../x" comes before the names a fault stops at).
        std::vector<std::pair<std::string, std::string>> pairs;
        for (const auto &name : weightOrder)
            if (const json &file = index["weight_map"].at(name); file.is_string())
                pairs.emplace_back(name, file.get<std::string>());
        refuseEscapingShards(doc, pairs);
    }
    const auto dir = std::filesystem::path(doc.path).parent_path();
    // Open each shard once, in order of first mention.
    std::vector<std::string> shards;
    std::vector<std::string> firstTensor;  // of each shard, for messages
    for (const auto &name : weightOrder) {
        const json &file = index["weight_map"].at(name);
        if (!file.is_string())
            throw FormatError("shard index: weight_map['" + name + "'] is not a file name");
        const auto f = file.get<std::string>();
        if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." ||
            f == "..")
            throw FormatError("shard index: shard name '" + f + "' (weight_map['" + name +
                              "']) is not a plain file name next to the index");
        if (std::find(shards.begin(), shards.end(), f) == shards.end()) {
            shards.push_back(f);
            firstTensor.push_back(name);
        }
    }
    if (shards.empty())
        throw FormatError("shard index: weight_map names no tensors");
    std::map<std::string, Document> opened;
    std::unordered_map<std::string, std::size_t> globalAt;  // where each global is in doc.globals
    for (std::size_t i = 0; i < shards.size(); ++i) {
        ReadOptions sub;
        if (options.progress)
            sub.progress = [&options, i, n = shards.size()](double f) {
                return options.progress((static_cast<double>(i) + f) / static_cast<double>(n));
            };
        const auto path = (dir / shards[i]).string();
        const std::string entry = "shard '" + shards[i] + "' (weight_map['" + firstTensor[i] + "'])";
        // Before reading it: a shard that is an index could name this index again, or fan out.
        std::shared_ptr<MappedFile> probe;
        try {
            probe = MappedFile::open(path);  // a folder, a FIFO, a missing file: said with the entry
        } catch (const FormatError &e) {
            throw FormatError("shard index: " + entry + ": " + path + ": " + e.what());
        }
        if (looksLikeShardIndex(probe->bytes()))
            throw FormatError("shard index: " + entry + " is itself a shard index; a shard must be a "
                              "checkpoint file (safetensors or torch), not an index");
        probe.reset();
        Document shard;
        try {
            shard = readDocument(path, sub);  // its errors already name the shard's path
        } catch (const ReadFailure &e) {
            // What the shards named so far would run in Python all the same: a scanner reports it.
            std::vector<GlobalUse> named = doc.globals;
            named.insert(named.end(), e.globals.begin(), e.globals.end());
            throw ReadFailure(e.what(), std::move(named), e.hazards);
        }
        if (!shard.hasStateDict) {
            std::vector<GlobalUse> named = doc.globals;
            named.insert(named.end(), shard.globals.begin(), shard.globals.end());
            throw ReadFailure("shard '" + shards[i] + "' holds no state dict", std::move(named));
        }
        if (shard.hasPickle() && !doc.pickledShards) {
            doc.pickledShards = true;
            doc.pickleProtocol = shard.pickleProtocol;
        }
        doc.opcodes.insert(doc.opcodes.end(), shard.opcodes.begin(), shard.opcodes.end());
        for (const auto &a : shard.anomalies)
            doc.anomalies.push_back(shards[i] + ": " + a);
        doc.extraFiles.push_back(shard.file);
        doc.arenas.insert(doc.arenas.end(), shard.arenas.begin(), shard.arenas.end());
        doc.extraFiles.insert(doc.extraFiles.end(), shard.extraFiles.begin(), shard.extraFiles.end());
        doc.warnings.insert(doc.warnings.end(), shard.warnings.begin(), shard.warnings.end());
        // One entry a global, as for one file: its uses summed over the shards, and where it is
        // first named (an offset in the pickle of the first shard, in weight_map order, that names it).
        for (const auto &g : shard.globals) {
            const auto [at, fresh] = globalAt.try_emplace(g.module + '\n' + g.qualname + '\n' + g.name, doc.globals.size());
            if (fresh)
                doc.globals.push_back(g);
            else if (auto &count = doc.globals[at->second].count; __builtin_add_overflow(count, g.count, &count)) {
                count = std::numeric_limits<std::int64_t>::max();
            }
        }
        for (const auto &[k, v] : shard.storages)
            doc.storages.emplace(shards[i] + ":" + k, v);
        opened.emplace(shards[i], std::move(shard));
    }
    // Names of each shard's state dict, indexed once (a linear search per name is quadratic).
    std::map<std::string, std::unordered_map<std::string_view, const NamedTensor *>> byName;
    for (const auto &[f, shard] : opened) {
        auto &names = byName[f];
        for (const auto &t : shard.stateDict)
            names.emplace(t.name, &t);
    }
    // transformers loads each shard whole (load_state_dict of the shard file) and gives the model
    // every tensor in it: the index only says which files to open. So a tensor the index places in
    // the wrong shard is taken from the shard that holds it, and a tensor of a shard that the index
    // does not name is part of the model too; both are said, since the index disagrees with them.
    const auto joined = [](const std::vector<std::string> &items, const char *sep) {
        std::string out;
        for (const auto &i : items)
            out += (out.empty() ? "" : sep) + i;
        return out;
    };
    auto root = Value::dict();
    std::unordered_set<const NamedTensor *> used;
    std::unordered_set<std::string_view> present;
    std::vector<std::string> misplaced;
    for (const auto &name : weightOrder) {
        const std::string named = index["weight_map"].at(name).get<std::string>();
        const NamedTensor *found = nullptr;
        std::string holder = named;
        if (const auto it = byName.at(named).find(name); it != byName.at(named).end())
            found = it->second;
        for (std::size_t i = 0; !found && i < shards.size(); ++i)
            if (const auto it = byName.at(shards[i]).find(name); it != byName.at(shards[i]).end())
                found = it->second, holder = shards[i];
        if (!found)
            throw FormatError("shard index: tensor '" + name + "' (weight_map: shard '" + named +
                              "') is in none of the " + std::to_string(shards.size()) + " shards");
        if (holder != named && misplaced.size() < 3)
            misplaced.push_back("'" + name + "' is in '" + holder + "', not '" + named + "'");
        used.insert(found);
        present.insert(found->name);
        root->entries().push_back({Value::string(name), found->value});
    }
    if (!misplaced.empty())
        doc.warnings.push_back("the shard index names the wrong shard for some tensors (" + joined(misplaced, "; ") +
                               "): each is read from the shard that holds it, as transformers loads whole shards");
    for (const auto &f : shards) {
        std::vector<std::string> extra;
        std::size_t count = 0;
        for (const auto &t : opened.at(f).stateDict) {
            if (used.count(&t) || present.count(t.name))
                continue;
            present.insert(t.name);
            root->entries().push_back({Value::string(t.name), t.value});
            if (++count <= 3)
                extra.push_back(t.name);
        }
        if (count > 0)
            doc.warnings.push_back("shard '" + f + "' holds " + std::to_string(count) + " tensor" +
                                   (count == 1 ? "" : "s") + " the index does not name (" + joined(extra, ", ") +
                                   (count > extra.size() ? ", …" : "") +
                                   "): read as part of the model, since transformers loads each shard whole");
    }
    if (index.contains("metadata") && index["metadata"].is_object()) {
        // The values as json.load gives them (a number, a list, a dict in its order, an integer of
        // any width exact), by the one reading of JSON as values the tool has. Read again from the
        // text because the parse above keeps neither nested order nor integers past 64 bits. The
        // text is known to parse, nesting at most kMaxJsonDepth.
        const auto metadata = parseOrderedJsonMember(text, "metadata");
        if (metadata.is_object())
            doc.formatMetadata = jsonToValue(metadata);
    }
    doc.format = ContainerFormat::Sharded;
    doc.formatDetail = "sharded checkpoint, " + std::to_string(shards.size()) + " shards (" +
                       formatName(opened.begin()->second.format) + ")";
    doc.root = root;
}

ValuePtr findFormatMetadata(const Document &doc, const std::string &path)
{
    if (!doc.formatMetadata || !doc.formatMetadata->isDict())
        return nullptr;
    const std::string_view prefix = doc.format == ContainerFormat::Safetensors ? "__metadata__/" : "metadata/";
    if (!path.starts_with(prefix))
        return nullptr;
    const std::string rest = path.substr(prefix.size());
    // The key whole first (a key may hold "/"), then its first part and keys within its value.
    if (doc.formatMetadata->get(rest))
        return formatMetadataValue(doc, rest);
    std::vector<std::string> parts;
    for (std::size_t from = 0;;) {
        const auto slash = rest.find('/', from);
        parts.push_back(rest.substr(from, slash == std::string::npos ? std::string::npos : slash - from));
        if (slash == std::string::npos)
            break;
        from = slash + 1;
    }
    if (parts.size() < 2 || !doc.formatMetadata->get(parts[0]))
        return nullptr;
    const ValuePtr top = formatMetadataValue(doc, parts[0]);
    return findPath(top, std::vector<std::string>(parts.begin() + 1, parts.end()));
}

} // namespace ckpt
