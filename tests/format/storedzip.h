#pragma once

// Archives built byte by byte for tests of hostile input. Test helper only.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ckpt::test {

// `v` as `bytes` little-endian bytes.
inline std::string le(std::uint64_t v, int bytes)
{
    std::string out;
    for (int i = 0; i < bytes; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return out;
}

// A zip of stored records, in order, as torch writes them (no CRC, which torch leaves out; no
// ZIP64: the records are small).
inline std::string storedZip(const std::vector<std::pair<std::string, std::string>> &records)
{
    std::string out, cd;
    for (const auto &[name, data] : records) {
        const std::uint64_t offset = out.size();
        out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) + le(data.size(), 4) +
               le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
        cd += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) +
              le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) +
              le(0, 2) + le(0, 4) + le(offset, 4) + name;
    }
    const std::uint64_t cdOffset = out.size();
    out += cd;
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(records.size(), 2) + le(records.size(), 2) +
           le(cd.size(), 4) + le(cdOffset, 4) + le(0, 2);
    return out;
}

} // namespace ckpt::test
