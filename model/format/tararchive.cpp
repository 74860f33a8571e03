#include "tararchive.h"

#include "error.h"

#include <algorithm>
#include <cstring>

namespace ckpt {

namespace {
constexpr std::size_t kBlock = 512;

std::string field(std::span<const std::uint8_t> h, std::size_t off, std::size_t len)
{
    const char *p = reinterpret_cast<const char *>(h.data() + off);
    return {p, strnlen(p, len)};
}

std::uint64_t octal(std::span<const std::uint8_t> h, std::size_t off, std::size_t len, const std::string &what)
{
    std::uint64_t v = 0;
    std::size_t i = 0;
    while (i < len && (h[off + i] == ' ' || h[off + i] == 0))
        ++i;
    for (; i < len && h[off + i] >= '0' && h[off + i] <= '7'; ++i) {
        if (v > (~std::uint64_t(0) >> 3))
            throw FormatError("tar: " + what + " overflows");
        v = v * 8 + (h[off + i] - '0');
    }
    return v;
}
} // namespace

// As Python's tarfile takes a header, and so torch.load, which tries tarfile before the pickle
// formats: a first block, not all zeros, whose checksum field (octal text up to a NUL, blanks
// stripped) equals the sum of its bytes with that field counted as blanks, unsigned or signed.
// No "ustar" magic needed: old tar headers have none, and a pickle can hide in the name field.
bool TarArchive::looksLikeTar(std::span<const std::uint8_t> data)
{
    if (data.size() < kBlock)
        return false;
    const auto h = data.first(kBlock);
    if (std::all_of(h.begin(), h.end(), [](std::uint8_t b) { return b == 0; }))
        return false;
    std::string text = field(h, 148, 8);
    const auto blank = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    while (!text.empty() && blank(text.back()))
        text.pop_back();
    const auto first = std::find_if_not(text.begin(), text.end(), blank);
    text.erase(text.begin(), first);
    std::int64_t stored = 0;
    for (char c : text) {
        if (c < '0' || c > '7')
            return false;  // tarfile: "invalid header"
        stored = stored * 8 + (c - '0');
    }
    std::int64_t sumUnsigned = 8 * ' ', sumSigned = 8 * ' ';
    for (std::size_t i = 0; i < kBlock; ++i) {
        if (i >= 148 && i < 156)
            continue;
        sumUnsigned += h[i];
        sumSigned += static_cast<std::int8_t>(h[i]);
    }
    return stored == sumUnsigned || stored == sumSigned;
}

TarArchive::TarArchive(std::span<const std::uint8_t> data) : m_data(data)
{
    std::uint64_t pos = 0;
    std::string longName;
    while (pos + kBlock <= data.size()) {
        auto h = data.subspan(static_cast<std::size_t>(pos), kBlock);
        if (std::all_of(h.begin(), h.end(), [](std::uint8_t b) { return b == 0; }))
            break;  // end of archive
        std::string name = field(h, 0, 100);
        const std::string prefix = field(h, 345, 155);
        if (std::memcmp(h.data() + 257, "ustar", 5) == 0 && !prefix.empty())
            name = prefix + "/" + name;
        const std::uint64_t size = octal(h, 124, 12, "size of '" + name + "'");
        const char type = static_cast<char>(h[156]);
        const std::uint64_t dataAt = pos + kBlock;
        if (size > data.size() - dataAt)
            throw FormatError("tar: member '" + name + "' of " + std::to_string(size) + " bytes runs past the end");
        if (type == 'L') {
            longName = std::string(reinterpret_cast<const char *>(data.data() + dataAt), strnlen(reinterpret_cast<const char *>(data.data() + dataAt), static_cast<std::size_t>(size)));
        } else if (type == '0' || type == '\0') {
            if (m_members.size() >= kMaxMembers)
                throw FormatError("tar: more than " + std::to_string(kMaxMembers) + " members");
            m_members.push_back({longName.empty() ? name : longName, dataAt, size});
            longName.clear();
        }
        pos = dataAt + (size + kBlock - 1) / kBlock * kBlock;
    }
}

const TarArchive::Member *TarArchive::find(const std::string &name) const
{
    for (const auto &m : m_members)
        if (m.name == name || m.name == "./" + name)
            return &m;
    return nullptr;
}

std::span<const std::uint8_t> TarArchive::bytes(const Member &m) const
{
    return m_data.subspan(static_cast<std::size_t>(m.offset), static_cast<std::size_t>(m.size));
}

} // namespace ckpt
