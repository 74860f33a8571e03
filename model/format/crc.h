#pragma once

#include <cstdint>
#include <span>

namespace ckpt {

// zlib's CRC-32 of `bytes` continued from `crc` (0 to start). Large inputs are split across the
// machine's cores and the parts joined with crc32_combine: conversions checksum every byte they
// write and read back, and one core's CRC is slower than the disk cache.
std::uint32_t crc32Of(std::span<const std::uint8_t> bytes, std::uint32_t crc = 0);

} // namespace ckpt
