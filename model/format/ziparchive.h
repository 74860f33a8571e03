#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ckpt {

// Bytes of one record: a view on the mapping when stored, or an owned buffer when it was inflated.
struct RecordBytes {
    std::span<const std::uint8_t> bytes;
    std::shared_ptr<const std::vector<std::uint8_t>> owned;
};

// Reads a zip archive from its central directory (ZIP64 included). The torch writer leaves sizes
// and CRCs out of local headers, so sizes always come from the central directory.
class ZipArchive {
public:
    static constexpr std::size_t kMaxEntries = 1u << 20;
    static constexpr std::uint64_t kMaxInflatedBytes = 1ull << 31;  // one deflated record at most
    // Declared size over compressed size of a deflated record: deflate cannot do better than
    // 1032:1, so a record claiming more lies, and is refused before its buffer is allocated.
    static constexpr std::uint64_t kMaxDeflateRatio = 1032;

    struct Entry {
        std::string name;          // full name as stored
        std::uint16_t method = 0;  // 0 stored, 8 deflated
        std::uint16_t flags = 0;
        std::uint64_t compressedSize = 0;
        std::uint64_t size = 0;
        std::uint64_t localHeaderOffset = 0;
        std::uint64_t dataOffset = 0;  // from the local header
        std::uint32_t crc32 = 0;
    };

    // True when the bytes start like a zip file (local header or empty-archive signature).
    static bool looksLikeZip(std::span<const std::uint8_t> data);

    // Parses the directory; throws FormatError on a malformed archive, on a name that appears twice
    // (ignoring ASCII case, as torch looks names up) with different contents, and on records that
    // do not all share the first record's folder (torch refuses those).
    explicit ZipArchive(std::span<const std::uint8_t> data);
    // The index refers to the entries' names in place: an archive is neither copied nor moved.
    ZipArchive(const ZipArchive &) = delete;
    ZipArchive &operator=(const ZipArchive &) = delete;

    const std::vector<Entry> &entries() const { return m_entries; }
    // Top folder every record lives under ("archive/", the file's stem, ...), with its slash.
    const std::string &prefix() const { return m_prefix; }
    // Entry by name relative to the prefix; nullptr when absent.
    const Entry *find(const std::string &relativeName) const;
    // Record data: in place when stored, inflated (capped at the declared size) when deflated.
    RecordBytes read(const Entry &e) const;
    // Structural oddities a scanner should report: duplicate or path-like names, local and central
    // names that differ, encryption flags, overlapping records, bytes before the first record.
    const std::vector<std::string> &anomalies() const { return m_anomalies; }

private:
    std::span<const std::uint8_t> m_data;
    std::vector<Entry> m_entries;
    std::string m_prefix;
    std::vector<std::string> m_anomalies;
    // Name -> entry with it: finding each of 20,000 storages must not scan the directory. Keys
    // view the entries' own names (no copy of 20,000 names).
    std::unordered_map<std::string_view, std::size_t> m_index;
    void findAnomalies(const std::vector<bool> &repeated);  // repeated[i]: entry i repeats an earlier name
    bool sameContent(const Entry &a, const Entry &b) const;  // same method, sizes and stored bytes
    mutable std::uint64_t m_comparedBytes = 0;              // by sameContent, bounded by the file's size
};

} // namespace ckpt
