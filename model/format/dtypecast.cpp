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
        return static_cast<std::uint16_t>(sign | 0x7E00u); // NaN, as c10's fp16_ieee_from_fp32_value
    if (a >= 0x477FF000u)
        return static_cast<std::uint16_t>(sign | 0x7C00u); // >= 65520 rounds to infinity
    if (a < 0x38800000u) {
        // Subnormal half (or zero): value = m * 2^(e-150), unit 2^-24.
        if (a < 0x33000000u)
            return sign; // below 2^-25 (2^-25 itself ties to even zero)
        const std::uint32_t e = a >> 23;
        const std::uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
        const std::uint32_t shift = 126 - e; // 14..24
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
        return 0x7FC0u; // c10::BFloat16's round_to_nearest_even
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

// What one element is, for the counts: 0 zero, 1 subnormal, 2 normal, 3 infinite, 4 NaN.
template <DType T> int classOf(const std::uint8_t *p)
{
    std::uint64_t bits = 0, expMask = 0, manMask = 0;
    if constexpr (T == DType::Float64) {
        bits = load<std::uint64_t>(p) & 0x7FFFFFFFFFFFFFFFull;
        expMask = 0x7FF0000000000000ull;
        manMask = 0x000FFFFFFFFFFFFFull;
    } else if constexpr (T == DType::Float32) {
        bits = load<std::uint32_t>(p) & 0x7FFFFFFFu;
        expMask = 0x7F800000u;
        manMask = 0x007FFFFFu;
    } else if constexpr (T == DType::Float16) {
        bits = load<std::uint16_t>(p) & 0x7FFFu;
        expMask = 0x7C00u;
        manMask = 0x03FFu;
    } else {
        bits = load<std::uint16_t>(p) & 0x7FFFu;
        expMask = 0x7F80u;
        manMask = 0x007Fu;
    }
    if (bits == 0)
        return 0;
    if ((bits & expMask) == 0)
        return 1;
    if ((bits & expMask) != expMask)
        return 2;
    return (bits & manMask) ? 4 : 3;
}

template <DType T> double readAs(const std::uint8_t *p)
{
    if constexpr (T == DType::Float64)
        return load<double>(p);
    else if constexpr (T == DType::Float32)
        return load<float>(p);
    else if constexpr (T == DType::Float16)
        return halfBitsToFloat(load<std::uint16_t>(p));
    else
        return bfloat16BitsToFloat(load<std::uint16_t>(p));
}

template <DType From, DType To> void castLoop(const std::uint8_t *in, std::uint8_t *out, std::size_t n, CastCounts &c)
{
    constexpr std::size_t inSize = From == DType::Float64 ? 8 : From == DType::Float32 ? 4 : 2;
    constexpr std::size_t outSize = To == DType::Float64 ? 8 : To == DType::Float32 ? 4 : 2;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t *src = in + i * inSize;
        std::uint8_t *dst = out + i * outSize;
        const double d = readAs<From>(src);
        if constexpr (To == DType::Float64) {
            store<double>(dst, d);
        } else if constexpr (To == DType::Float32) {
            store<float>(dst, static_cast<float>(d));
        } else if constexpr (To == DType::Float16) {
            // c10 converts double to Half through float.
            store<std::uint16_t>(dst, floatToHalfBits(static_cast<float>(d)));
        } else {
            // torch 1.13's CPU kernels write NaN from float32/float64 as 0xFFFF (their vectorised
            // conversion), from float16 as 0x7FC0 (c10::BFloat16's scalar rounding).
            store<std::uint16_t>(dst, From != DType::Float16 && d != d ? std::uint16_t(0xFFFF)
                                                                       : floatToBFloat16Bits(static_cast<float>(d)));
        }
        const int before = classOf<From>(src);
        if (before == 1 || before == 2) {
            const int after = classOf<To>(dst);
            if (after == 3)
                ++c.overflow;
            else if (after == 0)
                ++c.zeroed;
            else if (after == 1 && before == 2)
                ++c.subnormal;
        }
    }
}

template <DType From> void castFrom(DType to, const std::uint8_t *in, std::uint8_t *out, std::size_t n, CastCounts &c)
{
    switch (to) {
    case DType::Float64:
        castLoop<From, DType::Float64>(in, out, n, c);
        break;
    case DType::Float32:
        castLoop<From, DType::Float32>(in, out, n, c);
        break;
    case DType::Float16:
        castLoop<From, DType::Float16>(in, out, n, c);
        break;
    case DType::BFloat16:
        castLoop<From, DType::BFloat16>(in, out, n, c);
        break;
    default:
        break;
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
    switch (from) {
    case DType::Float64:
        castFrom<DType::Float64>(to, in.data(), out.data(), n, c);
        break;
    case DType::Float32:
        castFrom<DType::Float32>(to, in.data(), out.data(), n, c);
        break;
    case DType::Float16:
        castFrom<DType::Float16>(to, in.data(), out.data(), n, c);
        break;
    case DType::BFloat16:
        castFrom<DType::BFloat16>(to, in.data(), out.data(), n, c);
        break;
    default:
        break;
    }
    if (counts)
        *counts += c;
    return out;
}

} // namespace ckpt
