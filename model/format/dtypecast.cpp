#include "dtypecast.h"

#include "error.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

namespace ckpt {

std::uint16_t floatToHalfBits(float f)
{
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return static_cast<std::uint16_t>(sign | 0x7E00u);  // NaN, as c10's fp16_ieee_from_fp32_value
    if (a >= 0x477FF000u)
        return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to infinity
    if (a < 0x38800000u) {
        // Subnormal half (or zero): value = m * 2^(e-150), unit 2^-24.
        if (a < 0x33000000u)
            return sign;  // below 2^-25 (2^-25 itself ties to even zero)
        const std::uint32_t e = a >> 23;
        const std::uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
        const std::uint32_t shift = 126 - e;  // 14..24
        std::uint32_t q = m >> shift;
        const std::uint32_t r = m & ((1u << shift) - 1);
        const std::uint32_t half = 1u << (shift - 1);
        if (r > half || (r == half && (q & 1u)))
            ++q;
        return static_cast<std::uint16_t>(sign | q);
    }
    const std::uint32_t e = a >> 23;
    const std::uint32_t m = a & 0x7FFFFFu;
    std::uint32_t v = ((e - 112) << 10) | (m >> 13);
    const std::uint32_t r = m & 0x1FFFu;
    if (r > 0x1000u || (r == 0x1000u && (v & 1u)))
        ++v;
    return static_cast<std::uint16_t>(sign | v);
}

float halfBitsToFloat(std::uint16_t h)
{
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t e = (h >> 10) & 0x1Fu;
    std::uint32_t m = h & 0x3FFu;
    std::uint32_t bits;
    if (e == 0x1F) {
        bits = sign | 0x7F800000u | (m << 13);
    } else if (e != 0) {
        bits = sign | ((e + 112) << 23) | (m << 13);
    } else if (m == 0) {
        bits = sign;
    } else {
        // Subnormal: normalise.
        std::uint32_t exp = 113;
        while (!(m & 0x400u)) {
            m <<= 1;
            --exp;
        }
        bits = sign | (exp << 23) | ((m & 0x3FFu) << 13);
    }
    return std::bit_cast<float>(bits);
}

std::uint16_t floatToBFloat16Bits(float f)
{
    if (std::isnan(f))
        return 0x7FC0u;  // c10::BFloat16's round_to_nearest_even
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t bias = ((u >> 16) & 1u) + 0x7FFFu;
    return static_cast<std::uint16_t>((u + bias) >> 16);
}

float bfloat16BitsToFloat(std::uint16_t b)
{
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

bool canCastFloats(DType from, DType to)
{
    auto ok = [](DType t) {
        return t == DType::Float64 || t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16;
    };
    return ok(from) && ok(to);
}

namespace {
template <typename T> T load(const std::uint8_t *p)
{
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
template <typename T> void store(std::uint8_t *p, T v)
{
    std::memcpy(p, &v, sizeof v);
}

// The value of an element as a double (exactly) and as float32 (what c10 converts through).
double readDouble(const std::uint8_t *p, DType t)
{
    switch (t) {
    case DType::Float64: return load<double>(p);
    case DType::Float32: return load<float>(p);
    case DType::Float16: return halfBitsToFloat(load<std::uint16_t>(p));
    case DType::BFloat16: return bfloat16BitsToFloat(load<std::uint16_t>(p));
    default: return 0.0;
    }
}

bool isSubnormalResult(DType to, const std::uint8_t *p)
{
    switch (to) {
    case DType::Float16: {
        const auto h = load<std::uint16_t>(p);
        return (h & 0x7C00u) == 0 && (h & 0x3FFu) != 0;
    }
    case DType::BFloat16: {
        const auto b = load<std::uint16_t>(p);
        return (b & 0x7F80u) == 0 && (b & 0x7Fu) != 0;
    }
    case DType::Float32: return std::fpclassify(load<float>(p)) == FP_SUBNORMAL;
    case DType::Float64: return std::fpclassify(load<double>(p)) == FP_SUBNORMAL;
    default: return false;
    }
}
} // namespace

std::vector<std::uint8_t> castFloats(std::span<const std::uint8_t> in, DType from, DType to, CastCounts *counts)
{
    if (!canCastFloats(from, to))
        throw FormatError("cannot cast " + std::string(dtypeName(from)) + " to " + std::string(dtypeName(to)));
    const std::size_t inSize = dtypeSize(from);
    const std::size_t outSize = dtypeSize(to);
    if (in.size() % inSize != 0)
        throw FormatError("cast: " + std::to_string(in.size()) + " bytes are not whole " +
                          std::string(dtypeName(from)) + " elements");
    const std::size_t n = in.size() / inSize;
    std::vector<std::uint8_t> out(n * outSize);
    CastCounts c;
    c.values = static_cast<std::int64_t>(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t *src = in.data() + i * inSize;
        std::uint8_t *dst = out.data() + i * outSize;
        const double d = readDouble(src, from);
        switch (to) {
        case DType::Float64: store<double>(dst, d); break;
        case DType::Float32: store<float>(dst, static_cast<float>(d)); break;
        // c10 converts double to Half/BFloat16 through float.
        case DType::Float16: store<std::uint16_t>(dst, floatToHalfBits(static_cast<float>(d))); break;
        case DType::BFloat16:
            // torch 1.13's CPU kernels write NaN from float32/float64 as 0xFFFF (their vectorised
            // conversion), from float16 as 0x7FC0 (c10::BFloat16's scalar rounding).
            store<std::uint16_t>(dst, std::isnan(d) && from != DType::Float16
                                          ? std::uint16_t(0xFFFF)
                                          : floatToBFloat16Bits(static_cast<float>(d)));
            break;
        default: break;
        }
        if (std::isfinite(d) && d != 0.0) {
            const double back = readDouble(dst, to);
            if (std::isinf(back))
                ++c.overflow;
            else if (back == 0.0)
                ++c.zeroed;
            else if (isSubnormalResult(to, dst) && !isSubnormalResult(from, src))
                ++c.subnormal;
        }
    }
    if (counts)
        *counts += c;
    return out;
}

} // namespace ckpt
