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

bool TarArchive::looksLikeTar(std::span<const std::uint8_t> data)
{
    return data.size() >= kBlock && std::memcmp(data.data() + 257, "ustar", 5) == 0;
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
