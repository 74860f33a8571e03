#include "safetensorswriter.h"

#include "error.h"
#include "jsonexport.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

namespace ckpt {

namespace {
// The safetensors library's Dtype order (it sorts by dtype, widest-last enum first).
int dtypeRank(DType t)
{
    switch (t) {
    case DType::Bool:
        return 0;
    case DType::UInt8:
        return 1;
    case DType::Int8:
        return 2;
    case DType::Float8E5M2:
        return 3;
    case DType::Float8E4M3FN:
        return 4;
    case DType::Int16:
        return 5;
    case DType::UInt16:
        return 6;
    case DType::Float16:
        return 7;
    case DType::BFloat16:
        return 8;
    case DType::Int32:
        return 9;
    case DType::UInt32:
        return 10;
    case DType::Float32:
        return 11;
    case DType::Complex64:
        return 12;
    case DType::Float64:
        return 13;
    case DType::Int64:
        return 14;
    case DType::UInt64:
        return 15;
    default:
        return -1;
    }
}
} // namespace

std::string SafetensorsWriter::header(std::vector<SafetensorsEntry> &entries,
                                      const std::map<std::string, std::string> &metadata)
{
    std::unordered_set<std::string_view> names;  // views of the entries' own names, moved by nothing below
    names.reserve(entries.size());
    for (const auto &e : entries) {
        if (dtypeSafetensorsTag(e.dtype).empty() || dtypeRank(e.dtype) < 0)
            throw FormatError("tensor '" + e.name + "': safetensors has no type for " +
                              std::string(dtypeName(e.dtype)));
        if (e.name == "__metadata__" || !names.insert(e.name).second)
            throw FormatError("tensor name '" + e.name + "' is used twice or reserved");
        std::uint64_t n = dtypeSize(e.dtype);
        for (auto d : e.shape)
            if (d < 0 || __builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n))
                throw FormatError("tensor '" + e.name + "': shape overflows");
        if (n != e.byteSize)
            throw FormatError("tensor '" + e.name + "': " + std::to_string(e.byteSize) + " bytes for a shape of " +
                              std::to_string(n));
    }
    names = {};
    std::stable_sort(entries.begin(), entries.end(), [](const SafetensorsEntry &a, const SafetensorsEntry &b) {
        const int ra = dtypeRank(a.dtype), rb = dtypeRank(b.dtype);
        return ra != rb ? ra > rb : a.name < b.name;
    });
    // The JSON text written directly, as nlohmann's compact dump(-1) with error_handler_t::strict
    // writes the same object (invalid UTF-8 throws its error): a tree of 100,000 entries first
    // cost more than the rest of the header.
    std::string text = "{";
    bool first = true;
    const auto key = [&text, &first](std::string_view k) {
        if (!first)
            text += ',';
        first = false;
        jsontext::appendStringStrict(text, k);
        text += ':';
    };
    if (!metadata.empty()) {
        key("__metadata__");
        text += '{';
        bool firstMeta = true;
        for (const auto &[k, v] : metadata) {
            if (!firstMeta)
                text += ',';
            firstMeta = false;
            jsontext::appendStringStrict(text, k);
            text += ':';
            jsontext::appendStringStrict(text, v);
        }
        text += '}';
    }
    std::uint64_t offset = 0;
    for (const auto &e : entries) {
        key(e.name);
        text += "{\"dtype\":\"";
        text += dtypeSafetensorsTag(e.dtype);  // plain ASCII tags
        text += "\",\"shape\":[";
        for (std::size_t i = 0; i < e.shape.size(); ++i) {
            if (i)
                text += ',';
            jsontext::appendInt(text, e.shape[i]);
        }
        text += "],\"data_offsets\":[";
        jsontext::appendUnsigned(text, offset);
        text += ',';
        jsontext::appendUnsigned(text, offset + e.byteSize);
        text += "]}";
        offset += e.byteSize;
    }
    text += '}';
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string out;
    out.reserve(8 + text.size());
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xFF));
    out += text;
    return out;
}

void SafetensorsWriter::write(const Sink &sink, std::vector<SafetensorsEntry> entries,
                              const std::map<std::string, std::string> &metadata,
                              const std::function<void(std::uint64_t, std::uint64_t)> &progress)
{
    const std::string head = header(entries, metadata);
    sink({reinterpret_cast<const std::uint8_t *>(head.data()), head.size()});
    std::uint64_t total = 0, done = 0;
    for (const auto &e : entries)
        total += e.byteSize;
    for (const auto &e : entries) {
        std::uint64_t produced = 0;
        // A tensor producing more than its share would shift every offset after it: refused
        // before the excess reaches the file.
        e.produce([&](std::span<const std::uint8_t> b) {
            if (b.size() > e.byteSize - produced)
                throw FormatError("tensor '" + e.name + "' produced more than its " + std::to_string(e.byteSize) +
                                  " bytes");
            produced += b.size();
            sink(b);
        });
        if (produced != e.byteSize)
            throw FormatError("tensor '" + e.name + "' produced " + std::to_string(produced) + " bytes, expected " +
                              std::to_string(e.byteSize));
        done += produced;
        if (progress)
            progress(done, total);
    }
}

} // namespace ckpt
