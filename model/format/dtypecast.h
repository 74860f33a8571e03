#pragma once

#include "dtype.h"

#include <cstdint>
#include <span>
#include <vector>

namespace ckpt {

// What a floating-point cast did to the values, for the warnings a conversion gives.
struct CastCounts {
    std::int64_t values = 0;    // elements converted
    std::int64_t overflow = 0;  // finite values that became ±inf
    std::int64_t subnormal = 0; // normal values that became subnormal (precision lost)
    std::int64_t zeroed = 0;    // non-zero values that became ±0
    CastCounts &operator+=(const CastCounts &o)
    {
        values += o.values;
        overflow += o.overflow;
        subnormal += o.subnormal;
        zeroed += o.zeroed;
        return *this;
    }
};

// True for the casts castFloats implements (float64/32/16, bfloat16 among themselves).
bool canCastFloats(DType from, DType to);

// Converts little-endian elements of `from` to `to` with the bits torch's `.to(dtype)` gives:
// round to nearest even, NaN kept (float16: sign|0x7E00; bfloat16: 0xFFFF from float32/64 and
// 0x7FC0 from float16, as torch 1.13's CPU kernels write them),
// float64 to 16-bit types through float32 as c10 does. `in` must hold whole elements.
std::vector<std::uint8_t> castFloats(std::span<const std::uint8_t> in, DType from, DType to,
                                     CastCounts *counts = nullptr);

// Single-value conversions (exposed for tests).
std::uint16_t floatToHalfBits(float f);
float halfBitsToFloat(std::uint16_t h);
std::uint16_t floatToBFloat16Bits(float f);
float bfloat16BitsToFloat(std::uint16_t b);

} // namespace ckpt
