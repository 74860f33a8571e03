#include "safetensorsreader.h"

#include "error.h"
#include "mappedfile.h"
#include "textcodec.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

namespace ckpt {

namespace {
using json = nlohmann::ordered_json;

std::uint64_t headerLength(std::span<const std::uint8_t> d)
{
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
        n = (n << 8) | d[static_cast<std::size_t>(i)];
    return n;
}

// Parses JSON and refuses duplicate keys at the top level (nlohmann would keep the last silently).
json parseUnique(std::string_view text, const std::string &what)
{
    std::set<std::string> seen;
    std::string duplicate;
    json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json &parsed) {
        if (depth == 1 && event == json::parse_event_t::key && duplicate.empty()) {
            const auto key = parsed.get<std::string>();
            if (!seen.insert(key).second)
                duplicate = key;
        }
        return true;
    };
    json j;
    try {
        j = json::parse(text.begin(), text.end(), cb);
    } catch (const json::exception &e) {
        throw FormatError(what + " is not valid JSON: " + e.what());
    }
    if (!duplicate.empty())
        throw FormatError(what + " names '" + duplicate + "' twice");
    if (!j.is_object())
        throw FormatError(what + " is not a JSON object");
    return j;
}
} // namespace

bool looksLikeSafetensors(std::span<const std::uint8_t> d)
{
    if (d.size() < 10)
        return false;
    // A header longer than the file is still safetensors, to be refused with that reason.
    return headerLength(d) >= 2 && d[8] == '{';
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
    const json header = parseUnique(text, "safetensors header");
    const std::uint64_t dataStart = 8 + n;
    const auto buffer = d.subspan(static_cast<std::size_t>(dataStart));

    struct Range {
        std::uint64_t begin, end;
        std::string name;
    };
    std::vector<Range> ranges;
    auto root = Value::dict();
    for (const auto &[name, info] : header.items()) {
        if (name == "__metadata__") {
            if (!info.is_object())
                throw FormatError("safetensors: __metadata__ is not an object");
            auto meta = Value::dict();
            for (const auto &[k, v] : info.items()) {
                if (!v.is_string())
                    throw FormatError("safetensors: __metadata__ value '" + k + "' is not a string");
                meta->entries().push_back({Value::string(k), Value::string(v.get<std::string>())});
            }
            doc.formatMetadata = meta;
            continue;
        }
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
        for (const auto &dim : info["shape"]) {
            if (!dim.is_number_unsigned())
                throw FormatError(where + ": shape holds " + dim.dump() + ", not a non-negative integer");
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

void readShardIndex(Document &doc, std::span<const std::uint8_t> d, const ReadOptions &options)
{
    const std::string_view text(reinterpret_cast<const char *>(d.data()), d.size());
    const json index = parseUnique(text, "shard index");
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
        throw FormatError("shard index has no weight_map object");
    const auto dir = std::filesystem::path(doc.path).parent_path();
    // Open each shard once, in order of first mention.
    std::vector<std::string> shards;
    for (const auto &[name, file] : index["weight_map"].items()) {
        if (!file.is_string())
            throw FormatError("shard index: weight_map['" + name + "'] is not a file name");
        const auto f = file.get<std::string>();
        if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "..")
            throw FormatError("shard index: shard name '" + f + "' is not a plain file name next to the index");
        if (std::find(shards.begin(), shards.end(), f) == shards.end())
            shards.push_back(f);
    }
    std::map<std::string, Document> opened;
    for (std::size_t i = 0; i < shards.size(); ++i) {
        ReadOptions sub;
        if (options.progress)
            sub.progress = [&options, i, n = shards.size()](double f) {
                return options.progress((static_cast<double>(i) + f) / static_cast<double>(n));
            };
        const auto path = (dir / shards[i]).string();
        Document shard = readDocument(path, sub);  // its errors already name the shard's path
        if (!shard.hasStateDict)
            throw FormatError("shard '" + shards[i] + "' holds no state dict");
        doc.extraFiles.push_back(shard.file);
        doc.arenas.insert(doc.arenas.end(), shard.arenas.begin(), shard.arenas.end());
        doc.extraFiles.insert(doc.extraFiles.end(), shard.extraFiles.begin(), shard.extraFiles.end());
        doc.warnings.insert(doc.warnings.end(), shard.warnings.begin(), shard.warnings.end());
        doc.globals.insert(doc.globals.end(), shard.globals.begin(), shard.globals.end());
        for (const auto &[k, v] : shard.storages)
            doc.storages.emplace(shards[i] + ":" + k, v);
        opened.emplace(shards[i], std::move(shard));
    }
    auto root = Value::dict();
    for (const auto &[name, file] : index["weight_map"].items()) {
        const auto &shard = opened.at(file.get<std::string>());
        const NamedTensor *found = nullptr;
        for (const auto &t : shard.stateDict)
            if (t.name == name) {
                found = &t;
                break;
            }
        if (!found)
            throw FormatError("shard index: tensor '" + name + "' is not in shard '" + file.get<std::string>() + "'");
        root->entries().push_back({Value::string(name), found->value});
    }
    if (index.contains("metadata") && index["metadata"].is_object()) {
        auto meta = Value::dict();
        for (const auto &[k, v] : index["metadata"].items())
            meta->entries().push_back({Value::string(k), v.is_string() ? Value::string(v.get<std::string>())
                                                                       : Value::string(v.dump())});
        doc.formatMetadata = meta;
    }
    doc.format = ContainerFormat::Sharded;
    doc.formatDetail = "sharded checkpoint, " + std::to_string(shards.size()) + " shards (" +
                       formatName(opened.begin()->second.format) + ")";
    doc.root = root;
}

} // namespace ckpt
