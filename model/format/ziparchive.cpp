#include "ziparchive.h"

#include "error.h"
#include "mappedfile.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <string_view>
#include <zlib.h>

namespace ckpt {

namespace {
constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kEnd64Sig = 0x06064b50;
constexpr std::uint32_t kEnd64LocatorSig = 0x07064b50;

// Bounds-checked little-endian reads over the whole archive.
struct Reader {
    std::span<const std::uint8_t> d;
    void need(std::uint64_t off, std::uint64_t n, const char *what) const
    {
        if (off > d.size() || n > d.size() - off)
            throw FormatError(std::string("zip: ") + what + " at offset " + std::to_string(off) +
                              " runs past the end of the file");
    }
    // The same for a part of one record ("local header of 'archive/data.pkl'"): the message is
    // only made when it is needed, not once per record of a 20,000-record archive.
    void need(std::uint64_t off, std::uint64_t n, const char *what, const std::string &record) const
    {
        if (off > d.size() || n > d.size() - off)
            need(off, n, (std::string(what) + " of '" + record + "'").c_str());
    }
    std::uint16_t u16(std::uint64_t off) const { return static_cast<std::uint16_t>(d[off] | (d[off + 1] << 8)); }
    std::uint32_t u32(std::uint64_t off) const
    {
        return static_cast<std::uint32_t>(d[off]) | (static_cast<std::uint32_t>(d[off + 1]) << 8) |
               (static_cast<std::uint32_t>(d[off + 2]) << 16) | (static_cast<std::uint32_t>(d[off + 3]) << 24);
    }
    std::uint64_t u64(std::uint64_t off) const { return u32(off) | (static_cast<std::uint64_t>(u32(off + 4)) << 32); }
};
} // namespace

bool ZipArchive::looksLikeZip(std::span<const std::uint8_t> data)
{
    if (data.size() < 4)
        return false;
    const std::uint32_t sig = Reader{data}.u32(0);
    return sig == kLocalSig || sig == kEndSig;
}

ZipArchive::ZipArchive(std::span<const std::uint8_t> data) : m_data(data)
{
    Reader r{data};
    if (data.size() < 22)
        throw FormatError("zip: file of " + std::to_string(data.size()) + " bytes is too short for a zip directory");
    // The end record sits in the last 64 KiB + 22 bytes (its comment is at most 65535 bytes).
    std::uint64_t eocd = data.size();
    const std::uint64_t lowest = data.size() > 65557 ? data.size() - 65557 : 0;
    for (std::uint64_t off = data.size() - 22 + 1; off-- > lowest;) {
        if (r.u32(off) == kEndSig) {
            eocd = off;
            break;
        }
    }
    if (eocd == data.size())
        throw FormatError("zip: no end-of-central-directory record (truncated download?)");
    std::uint64_t count = r.u16(eocd + 10);
    std::uint64_t cdSize = r.u32(eocd + 12);
    std::uint64_t cdOffset = r.u32(eocd + 16);
    if (eocd >= 20 && r.u32(eocd - 20) == kEnd64LocatorSig) {
        const std::uint64_t z64 = r.u64(eocd - 20 + 8);
        r.need(z64, 56, "ZIP64 end record");
        if (r.u32(z64) != kEnd64Sig)
            throw FormatError("zip: ZIP64 locator points at offset " + std::to_string(z64) +
                              " where there is no ZIP64 end record");
        count = r.u64(z64 + 32);
        cdSize = r.u64(z64 + 40);
        cdOffset = r.u64(z64 + 48);
    } else if (count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF) {
        throw FormatError("zip: ZIP64 sentinel values in the end record but no ZIP64 locator");
    }
    if (count > kMaxEntries)
        throw FormatError("zip: " + std::to_string(count) + " entries exceed the limit of " +
                          std::to_string(kMaxEntries));
    r.need(cdOffset, cdSize, "central directory");
    // The directory is read in order, and each entry's local header where it points: a mapping
    // opened for random reads (see MappedFile::setAccess) reads each of those pages alone. Records
    // packed closer than a read-ahead window are better read whole, in large reads, up to a size
    // that is cheap to read (a file of 200,000 small records can be gigabytes: its headers alone).
    constexpr std::uint64_t kDenseRecordSpacing = 64u << 10, kMaxWholePrefetch = 256u << 20;
    const bool dense = count > 0 && cdOffset / count < kDenseRecordSpacing && cdOffset + cdSize <= kMaxWholePrefetch;
    prefetchMapped(dense ? data.subspan(0, cdOffset + cdSize) : data.subspan(cdOffset, cdSize));
    m_entries.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, cdSize / 46)));
    std::uint64_t off = cdOffset;
    for (std::uint64_t i = 0; i < count; ++i) {
        r.need(off, 46, "central directory entry");
        if (r.u32(off) != kCentralSig)
            throw FormatError("zip: central directory entry " + std::to_string(i) + " at offset " +
                              std::to_string(off) + " has a bad signature");
        Entry e;
        e.flags = r.u16(off + 8);
        e.method = r.u16(off + 10);
        e.crc32 = r.u32(off + 16);
        e.compressedSize = r.u32(off + 20);
        e.size = r.u32(off + 24);
        const std::uint16_t nameLen = r.u16(off + 28);
        const std::uint16_t extraLen = r.u16(off + 30);
        const std::uint16_t commentLen = r.u16(off + 32);
        e.localHeaderOffset = r.u32(off + 42);
        r.need(off + 46, std::uint64_t(nameLen) + extraLen + commentLen, "central directory entry name");
        e.name.assign(reinterpret_cast<const char *>(data.data() + off + 46), nameLen);
        // ZIP64 extended information: the fields whose 32-bit value is the sentinel, in order.
        std::uint64_t x = off + 46 + nameLen;
        const std::uint64_t xEnd = x + extraLen;
        bool needSize = e.size == 0xFFFFFFFF, needComp = e.compressedSize == 0xFFFFFFFF,
             needOff = e.localHeaderOffset == 0xFFFFFFFF;
        while (x + 4 <= xEnd) {
            const std::uint16_t id = r.u16(x);
            const std::uint16_t len = r.u16(x + 2);
            if (x + 4 + len > xEnd)
                break;
            if (id == 0x0001) {
                std::uint64_t p = x + 4;
                const std::uint64_t pEnd = p + len;
                if (needSize && p + 8 <= pEnd) {
                    e.size = r.u64(p);
                    p += 8;
                    needSize = false;
                }
                if (needComp && p + 8 <= pEnd) {
                    e.compressedSize = r.u64(p);
                    p += 8;
                    needComp = false;
                }
                if (needOff && p + 8 <= pEnd) {
                    e.localHeaderOffset = r.u64(p);
                    needOff = false;
                }
            }
            x += 4 + std::uint64_t(len);
        }
        if (needSize || needComp || needOff)
            throw FormatError("zip: entry '" + e.name + "' uses ZIP64 sentinels without the ZIP64 extra field");
        off += 46 + std::uint64_t(nameLen) + extraLen + commentLen;

        r.need(e.localHeaderOffset, 30, "local header", e.name);
        if (r.u32(e.localHeaderOffset) != kLocalSig)
            throw FormatError("zip: entry '" + e.name + "' points at offset " + std::to_string(e.localHeaderOffset) +
                              " where there is no local header");
        const std::uint64_t lName = r.u16(e.localHeaderOffset + 26);
        const std::uint64_t lExtra = r.u16(e.localHeaderOffset + 28);
        e.dataOffset = e.localHeaderOffset + 30 + lName + lExtra;
        r.need(e.localHeaderOffset + 30, lName, "local name", e.name);
        if (std::string_view(reinterpret_cast<const char *>(data.data() + e.localHeaderOffset + 30), lName) != e.name)
            m_anomalies.push_back("record '" + e.name + "': the local header names it differently");
        r.need(e.dataOffset, e.compressedSize, "data", e.name);
        m_entries.push_back(std::move(e));
    }
    // torch takes the folder of the first record as the archive's, and refuses the archive when
    // any record lies outside it ("file in archive is not in a subdirectory"). A record outside
    // could hold what another reader takes for the checkpoint: refuse it here too. (An archive
    // whose first record is in no folder has no prefix; torch refuses it, this reader takes its
    // records by their full names.)
    if (!m_entries.empty()) {
        const auto &first = m_entries.front().name;
        const auto slash = first.find('/');
        if (slash != std::string::npos) {
            m_prefix = first.substr(0, slash + 1);
            for (const auto &e : m_entries)
                if (e.name.compare(0, m_prefix.size(), m_prefix) != 0)
                    throw FormatError("zip: record '" + e.name + "' is not under '" + m_prefix +
                                      "', the folder of the first record '" + first +
                                      "'; torch refuses such an archive (file in archive is not in a subdirectory)");
        }
    }
    // torch's reader (miniz) finds a record by a binary search over names compared without regard
    // to ASCII case, so of two copies it may read either (in practice the last); this reader and
    // Python's zipfile differ again. A scan of one copy says nothing about the other: copies that
    // differ are refused. Identical copies are harmless, and stay an anomaly.
    m_index.reserve(m_entries.size());
    std::vector<bool> repeated(m_entries.size());
    const auto isUpper = [](char c) { return c >= 'A' && c <= 'Z'; };
    const bool anyUpper = std::any_of(m_entries.begin(), m_entries.end(), [&](const Entry &e) {
        return std::any_of(e.name.begin(), e.name.end(), isUpper);
    });
    // Lower-cased name -> first entry with it. When no name has capitals (all that torch writes)
    // every name is its own folded form, and the index itself is that map; otherwise the folded
    // names are kept here, those without capitals viewed in place.
    std::unordered_map<std::string_view, std::size_t> folded;
    std::deque<std::string> lowered;
    if (anyUpper)
        folded.reserve(m_entries.size());
    for (std::size_t i = 0; i < m_entries.size(); ++i) {
        const Entry &e = m_entries[i];
        std::string_view key = e.name;
        if (std::any_of(e.name.begin(), e.name.end(), isUpper)) {
            std::string low = e.name;
            std::transform(low.begin(), low.end(), low.begin(),
                           [&](char c) { return isUpper(c) ? static_cast<char>(c - 'A' + 'a') : c; });
            key = lowered.emplace_back(std::move(low));
        }
        // Of identical copies, the index keeps the first.
        const auto [it, fresh] = anyUpper ? folded.emplace(key, i) : m_index.emplace(key, i);
        repeated[i] = !fresh;
        if (!fresh && !sameContent(m_entries[it->second], e)) {
            const std::string &first = m_entries[it->second].name;
            throw FormatError("zip: record '" + e.name + "' appears twice" +
                              (first == e.name ? "" : " (as '" + first + "', which torch takes for the same name)") +
                              " with different contents; readers disagree on which copy they use (torch reads the "
                              "last), so a scan of one copy says nothing about what torch loads");
        }
        if (anyUpper)
            m_index.emplace(std::string_view(e.name), i);
    }
    findAnomalies(repeated);
}

bool ZipArchive::sameContent(const Entry &a, const Entry &b) const
{
    if (a.method != b.method || (a.flags & 0x1) != (b.flags & 0x1) || a.size != b.size ||
        a.compressedSize != b.compressedSize || a.crc32 != b.crc32)
        return false;
    if (a.dataOffset == b.dataOffset)
        return true;  // two directory entries for one record
    // Both ranges were checked against the file when the entries were read. A million entries
    // naming copies of one large record would compare for hours: past the file's own size in
    // bytes compared, further copies count as differing (and the archive is refused).
    if (m_comparedBytes + a.compressedSize > m_data.size())
        return false;
    m_comparedBytes += a.compressedSize;
    return std::memcmp(m_data.data() + a.dataOffset, m_data.data() + b.dataOffset,
                       static_cast<std::size_t>(a.compressedSize)) == 0;
}

void ZipArchive::findAnomalies(const std::vector<bool> &repeated)
{
    std::vector<const Entry *> byOffset;
    byOffset.reserve(m_entries.size());
    for (std::size_t i = 0; i < m_entries.size(); ++i) {
        const Entry &e = m_entries[i];
        if (repeated[i])
            m_anomalies.push_back("record '" + e.name + "' appears more than once");
        if (e.name.starts_with('/') || e.name.find("..") != std::string::npos || e.name.find('\\') != std::string::npos)
            m_anomalies.push_back("record '" + e.name + "' has a path-like name");
        if (e.flags & 0x1)
            m_anomalies.push_back("record '" + e.name + "' is flagged as encrypted");
        byOffset.push_back(&e);
    }
    std::sort(byOffset.begin(), byOffset.end(),
              [](const Entry *a, const Entry *b) { return a->localHeaderOffset < b->localHeaderOffset; });
    if (!byOffset.empty() && byOffset.front()->localHeaderOffset > 0)
        m_anomalies.push_back(std::to_string(byOffset.front()->localHeaderOffset) +
                              " bytes precede the first zip record");
    for (std::size_t i = 1; i < byOffset.size(); ++i)
        if (byOffset[i - 1]->dataOffset + byOffset[i - 1]->compressedSize > byOffset[i]->localHeaderOffset)
            m_anomalies.push_back("records '" + byOffset[i - 1]->name + "' and '" + byOffset[i]->name + "' overlap");
}

const ZipArchive::Entry *ZipArchive::find(const std::string &relativeName) const
{
    // Joined on the stack: this runs once per storage, 20,000 times for some files.
    char buf[256];
    const std::size_t n = m_prefix.size() + relativeName.size();
    if (n > sizeof buf) {
        const std::string full = m_prefix + relativeName;
        const auto it = m_index.find(std::string_view(full));
        return it == m_index.end() ? nullptr : &m_entries[it->second];
    }
    std::memcpy(buf, m_prefix.data(), m_prefix.size());
    std::memcpy(buf + m_prefix.size(), relativeName.data(), relativeName.size());
    const auto it = m_index.find(std::string_view(buf, n));
    return it == m_index.end() ? nullptr : &m_entries[it->second];
}

RecordBytes ZipArchive::read(const Entry &e) const
{
    RecordBytes out;
    auto raw = m_data.subspan(static_cast<std::size_t>(e.dataOffset), static_cast<std::size_t>(e.compressedSize));
    if (e.flags & 0x1)
        throw FormatError("zip: record '" + e.name + "' is encrypted");
    if (e.method == 0) {
        if (e.size != e.compressedSize)
            throw FormatError("zip: stored record '" + e.name + "' declares " + std::to_string(e.size) +
                              " bytes but holds " + std::to_string(e.compressedSize));
        out.bytes = raw;
        return out;
    }
    if (e.method != 8)
        throw FormatError("zip: record '" + e.name + "' uses compression method " + std::to_string(e.method) +
                          " (only stored and deflated are supported)");
    if (e.size > kMaxInflatedBytes)
        throw FormatError("zip: deflated record '" + e.name + "' declares " + std::to_string(e.size) +
                          " bytes, past the limit of " + std::to_string(kMaxInflatedBytes));
    if (e.size > e.compressedSize * kMaxDeflateRatio)  // compressedSize fits in the file: no overflow
        throw FormatError("zip: deflated record '" + e.name + "' declares " + std::to_string(e.size) + " bytes from " +
                          std::to_string(e.compressedSize) + ", past deflate's limit ratio of " +
                          std::to_string(kMaxDeflateRatio) + ":1");
    auto buf = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(e.size));
    prefetchMapped(raw);  // inflated in order, from a mapping that may be set for random reads
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
        throw FormatError("zip: cannot start inflating '" + e.name + "'");
    std::uint64_t consumed = 0;
    std::uint64_t produced = 0;
    std::uint8_t probe = 0;  // one byte past the declared size: output there means the record lies
    int rc = Z_OK;
    while (rc == Z_OK) {
        const auto inChunk = static_cast<uInt>(std::min<std::uint64_t>(raw.size() - consumed, 1u << 30));
        zs.next_in = const_cast<Bytef *>(raw.data() + consumed);
        zs.avail_in = inChunk;
        const bool full = produced == buf->size();
        const auto outChunk = full ? 1u : static_cast<uInt>(std::min<std::uint64_t>(buf->size() - produced, 1u << 30));
        zs.next_out = full ? &probe : buf->data() + produced;
        zs.avail_out = outChunk;
        rc = inflate(&zs, Z_NO_FLUSH);
        consumed += inChunk - zs.avail_in;
        const std::uint64_t made = outChunk - zs.avail_out;
        if (full && made > 0) {
            inflateEnd(&zs);
            throw FormatError("zip: deflated record '" + e.name + "' inflates past its declared size of " +
                              std::to_string(e.size) + " bytes");
        }
        produced += made;
        if (rc == Z_BUF_ERROR && made == 0 && inChunk == zs.avail_in)
            break;  // no progress possible: input exhausted
        if (rc == Z_BUF_ERROR)
            rc = Z_OK;
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END)
        throw FormatError("zip: deflated record '" + e.name + "' is corrupt or truncated (zlib status " +
                          std::to_string(rc) + ")");
    if (produced != e.size)
        throw FormatError("zip: deflated record '" + e.name + "' inflates to " + std::to_string(produced) +
                          " bytes but declares " + std::to_string(e.size));
    out.owned = buf;
    out.bytes = {buf->data(), buf->size()};
    return out;
}

} // namespace ckpt
