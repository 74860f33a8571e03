#include "tararchive.h"

#include "error.h"

#include <algorithm>
#include <cstring>
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
// 0x80 (0xFF: negative), else ASCII text up to the first NUL, blanks stripped, as int(text, 8)
// parses it. Only forms on which int() gives the same value are taken; any other is refused
// (tarfile would refuse the archive or stop reading it there).
std::uint64_t number(std::span<const std::uint8_t> h, std::size_t off, std::size_t len, const std::string &what)
{
    if (h[off] == 0x80) {
        std::uint64_t v = 0;
        for (std::size_t i = 1; i < len; ++i) {
            if (v >> 56)
                throw FormatError("tar: " + what + " overflows");
            v = (v << 8) | h[off + i];
        }
        return v;
    }
    if (h[off] == 0xFF)
        throw FormatError("tar: " + what + " is negative");
    const char *p = reinterpret_cast<const char *>(h.data() + off);
    std::string_view t(p, strnlen(p, len));
    const auto blank = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); };
    while (!t.empty() && blank(t.front()))
        t.remove_prefix(1);
    while (!t.empty() && blank(t.back()))
        t.remove_suffix(1);
    if (t.empty())
        return 0;
    const auto bad = [&] { return FormatError("tar: " + what + " is not an octal number"); };
    std::size_t i = t.front() == '+' ? 1 : 0;
    if (i + 1 < t.size() && t[i] == '0' && (t[i + 1] == 'o' || t[i + 1] == 'O')) {
        i += 2;
        if (i < t.size() && t[i] == '_')
            ++i;
    }
    if (i == t.size())
        throw bad();
    const auto octalDigit = [](char c) { return c >= '0' && c <= '7'; };
    const std::size_t first = i;
    std::uint64_t v = 0;
    for (; i < t.size(); ++i) {
        if (t[i] == '_' && i > first && i + 1 < t.size() && octalDigit(t[i - 1]) && octalDigit(t[i + 1]))
            continue;  // int() allows single underscores between digits
        if (!octalDigit(t[i]))
            throw bad();
        if (v > (~std::uint64_t(0) >> 3))
            throw FormatError("tar: " + what + " overflows");
        v = v * 8 + static_cast<std::uint64_t>(t[i] - '0');
    }
    return v;
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
    while (pos + kBlock <= data.size()) {
        auto h = data.subspan(static_cast<std::size_t>(pos), kBlock);
        if (std::all_of(h.begin(), h.end(), [](std::uint8_t b) { return b == 0; }))
            break;  // end of archive
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
