#include "tararchive.h"

#include "error.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_set>

namespace ckpt {

namespace {
constexpr std::size_t kBlock = 512;

std::string field(std::span<const std::uint8_t> h, std::size_t off, std::size_t len)
{
    const char *p = reinterpret_cast<const char *>(h.data() + off);
    return {p, strnlen(p, len)};
}

// A header's number field as Python's tarfile reads it (nti): base-256 when the first byte is
// 0x80 (0xFF: negative), else ASCII text up to the first NUL, whitespace stripped, as int(text, 8)
// parses it (a sign, a 0o prefix, single underscores between digits). Empty when tarfile would
// raise "invalid header". Values past 64 bits are clamped: they are sizes no file has.
std::optional<std::int64_t> ntiValue(std::span<const std::uint8_t> h, std::size_t off, std::size_t len)
{
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    if (h[off] == 0x80 || h[off] == 0xFF) {
        std::uint64_t v = 0;
        bool clamped = false;
        for (std::size_t i = 1; i < len; ++i) {
            clamped = clamped || (v >> 55) != 0;
            v = (v << 8) | h[off + i];
        }
        if (h[off] == 0x80)
            return clamped || v > static_cast<std::uint64_t>(kMax) ? kMax : static_cast<std::int64_t>(v);
        return -kMax;  // negative: tarfile takes it, no real field holds one
    }
    const char *p = reinterpret_cast<const char *>(h.data() + off);
    std::string_view t(p, strnlen(p, len));
    if (std::any_of(t.begin(), t.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
        return std::nullopt;  // not ASCII
    const auto blank = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); };
    while (!t.empty() && blank(t.front()))
        t.remove_prefix(1);
    while (!t.empty() && blank(t.back()))
        t.remove_suffix(1);
    if (t.empty())
        return 0;
    std::size_t i = 0;
    const bool negative = t[0] == '-';
    if (t[0] == '+' || t[0] == '-')
        ++i;
    if (i + 1 < t.size() && t[i] == '0' && (t[i + 1] == 'o' || t[i + 1] == 'O')) {
        i += 2;
        if (i < t.size() && t[i] == '_')
            ++i;
    }
    if (i == t.size())
        return std::nullopt;
    const auto octalDigit = [](char c) { return c >= '0' && c <= '7'; };
    const std::size_t first = i;
    std::int64_t v = 0;
    for (; i < t.size(); ++i) {
        if (t[i] == '_' && i > first && i + 1 < t.size() && octalDigit(t[i - 1]) && octalDigit(t[i + 1]))
            continue;  // int() allows single underscores between digits
        if (!octalDigit(t[i]))
            return std::nullopt;
        v = v > (kMax >> 3) ? kMax : v * 8 + (t[i] - '0');
    }
    return negative ? -v : v;
}

std::uint64_t number(std::span<const std::uint8_t> h, std::size_t off, std::size_t len, const std::string &what)
{
    const auto v = ntiValue(h, off, len);
    if (!v)
        throw FormatError("tar: " + what + " is not an octal number");
    if (*v < 0)
        throw FormatError("tar: " + what + " is negative");
    return static_cast<std::uint64_t>(*v);
}

// Whether tarfile takes a block as a header (TarInfo.frobuf): its checksum is the sum of its bytes
// with that field as blanks (unsigned or signed), and every number field reads.
bool validHeader(std::span<const std::uint8_t> h)
{
    const auto stored = ntiValue(h, 148, 8);
    if (!stored)
        return false;
    std::int64_t sumUnsigned = 8 * ' ', sumSigned = 8 * ' ';
    for (std::size_t i = 0; i < kBlock; ++i) {
        if (i >= 148 && i < 156)
            continue;
        sumUnsigned += h[i];
        sumSigned += static_cast<std::int8_t>(h[i]);
    }
    if (*stored != sumUnsigned && *stored != sumSigned)
        return false;
    // mode, uid, gid, size, mtime, devmajor, devminor
    constexpr std::pair<std::size_t, std::size_t> fields[]{{100, 8}, {108, 8}, {116, 8}, {124, 12},
                                                           {136, 12}, {329, 8}, {337, 8}};
    return std::all_of(std::begin(fields), std::end(fields), [&](const auto &f) { return ntiValue(h, f.first, f.second).has_value(); });
}

bool zeroBlock(std::span<const std::uint8_t> h)
{
    return std::all_of(h.begin(), h.end(), [](std::uint8_t b) { return b == 0; });
}

// tarfile applies a PAX record's path, linkpath or size (and GNU.sparse.*) to the next member, or
// with 'g' to all later ones: it renames a member, or moves where the next header starts. This
// reader does not follow them, so an archive that sets any is refused. The bytes are searched, not
// parsed: Python versions parse records differently (older ones read on into the block's padding),
// but none can set a keyword whose name and '=' do not appear. Real archives set only mtime and
// the like (torch 0.1.x wrote an mtime record before every member).
void refusePaxRenames(std::span<const std::uint8_t> block, std::uint64_t at, char type)
{
    const std::string_view text(reinterpret_cast<const char *>(block.data()), block.size());
    // "path=" is also in "linkpath=", "size=" in "GNU.sparse.size=": the longer name is tried first.
    for (const std::string_view keyword : {"linkpath=", "path=", "GNU.sparse", "size="})
        if (text.find(keyword) != std::string_view::npos)
            throw FormatError(std::string("tar: the PAX ") + (type == 'g' ? "global " : "") + "header at offset " +
                              std::to_string(at) + " sets '" + std::string(keyword.substr(0, keyword.find('='))) +
                              "': Python's tarfile (and so torch.load) would rename or resize a member, and read "
                              "another one than this reader; refused");
}
} // namespace

// As Python's tarfile takes a header, and so torch.load, which tries tarfile before the pickle
// formats: a first block, not all zeros, that tarfile reads as a header (checksum and number
// fields as it parses them). No "ustar" magic needed: old tar headers have none, and a pickle can
// hide in the name field. When tarfile refuses the first header, torch reads a pickle from offset 0.
bool TarArchive::looksLikeTar(std::span<const std::uint8_t> data)
{
    if (data.size() < kBlock)
        return false;
    const auto h = data.first(kBlock);
    return !zeroBlock(h) && validHeader(h);
}

// The members Python's tarfile lists, by its rules: the ustar prefix joined to any header's name
// (tarfile does not ask for the magic), a GNU 'L' record naming the next member (the outermost of
// several wins), data only after regular files and types it does not know (it takes those for
// files; links, folders and devices have none, whatever their size field says).
TarArchive::TarArchive(std::span<const std::uint8_t> data) : m_data(data)
{
    std::uint64_t pos = 0;
    std::optional<std::string> longName;
    // Every member's name, "./" dropped (find() takes either): of two with one name tarfile, and
    // so torch.load, takes the last, and this reader the first, so an archive with two is refused.
    std::unordered_set<std::string> names;
    // After a GNU long-name or PAX record tarfile needs a header: missing, zero or invalid, it
    // raises ReadError, and torch.load then reads the file as a pickle from offset 0.
    bool extended = false;
    const auto notTar = [&](std::uint64_t at) {
        return NotATar("tar: the extended header before offset " + std::to_string(at) +
                       " has no valid header after it: Python's tarfile refuses the archive, and torch.load then "
                       "reads the file as a pickle from its first byte");
    };
    while (true) {
        if (pos + kBlock > data.size()) {
            if (extended)
                throw notTar(pos);
            break;
        }
        auto h = data.subspan(static_cast<std::size_t>(pos), kBlock);
        if (zeroBlock(h) || !validHeader(h)) {
            if (extended)
                throw notTar(pos);
            if (pos == 0 && !zeroBlock(h))
                throw NotATar("tar: the first header is not one Python's tarfile reads (its checksum or a number "
                              "field): torch.load reads the file as a pickle from its first byte");
            break;  // the end of the archive, or where tarfile stops reading it
        }
        extended = false;
        std::string name = field(h, 0, 100);
        const std::uint64_t size = number(h, 124, 12, "size of '" + name + "'");
        const char type = static_cast<char>(h[156]);
        const std::uint64_t dataAt = pos + kBlock;
        const auto runsPast = [&] {
            return FormatError("tar: member '" + name + "' of " + std::to_string(size) + " bytes runs past the end");
        };
        if (type == 'L' || type == 'K' || type == 'x' || type == 'g' || type == 'X') {
            if (size > data.size() - dataAt)
                throw runsPast();
            const std::uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
            // tarfile reads whole blocks: the padding after the declared size counts too.
            const auto block = data.subspan(static_cast<std::size_t>(dataAt),
                                            static_cast<std::size_t>(std::min(padded, data.size() - dataAt)));
            if (type == 'L' && !longName)
                longName = field(block, 0, block.size());
            else if (type != 'L' && type != 'K')
                refusePaxRenames(block, pos, type);
            pos = dataAt + padded;
            extended = true;
            continue;
        }
        if (type == 'S')
            throw FormatError("tar: member '" + name + "' is a GNU sparse file, which is not supported");
        const bool folder = type == '5' || (type == '\0' && name.ends_with('/'));
        if (folder)
            while (name.ends_with('/'))
                name.pop_back();
        if (const std::string prefix = field(h, 345, 155); !prefix.empty())
            name = prefix + "/" + name;
        if (longName) {
            name = std::move(*longName);
            longName.reset();
            if (folder && name.ends_with('/'))
                name.pop_back();
        }
        if (!names.insert(name.starts_with("./") ? name.substr(2) : name).second)
            throw FormatError("tar: member '" + name + "' appears twice; readers disagree on which copy they use "
                              "(Python's tarfile, and so torch.load, reads the last), so the archive is refused");
        const bool known = type == '0' || type == '\0' || (type >= '1' && type <= '7');
        const bool file = !known || (!folder && (type == '0' || type == '\0' || type == '7'));
        if (!file) {
            pos = dataAt;
            continue;
        }
        if (size > data.size() - dataAt)
            throw runsPast();
        if (m_members.size() >= kMaxMembers)
            throw FormatError("tar: more than " + std::to_string(kMaxMembers) + " members");
        m_members.push_back({name, dataAt, size});
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
