#include "dtypecast.h"

#include "error.h"

#include <algorithm>
#include <bit>
#include <vector>
#include <cmath>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

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
// float32 -> float16, the conversion a cast to half spends its time in. The counts, branch-free
// per element: a finite non-zero input that became infinite, zero, or (from a normal) subnormal.
void countHalfCast(const std::uint32_t *in, const std::uint16_t *out, std::size_t n, CastCounts &c)
{
    std::int64_t overflow = 0, zeroed = 0, subnormal = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t a = in[i] & 0x7FFFFFFFu;
        const std::uint32_t h = out[i] & 0x7FFFu;
        const std::uint32_t finite = (a != 0) & (a < 0x7F800000u);
        const std::uint32_t normal = (a >= 0x00800000u) & (a < 0x7F800000u);
        overflow += finite & (h >= 0x7C00u);
        zeroed += finite & (h == 0);
        subnormal += normal & (h != 0) & (h < 0x0400u);
    }
    c.overflow += overflow;
    c.zeroed += zeroed;
    c.subnormal += subnormal;
}

#if defined(__x86_64__)
// Eight at a time with the F16C instruction (round to nearest even, as c10 rounds); a block that
// holds a NaN goes through the scalar conversion, which writes NaN as c10 does (0x7E00 | sign).
__attribute__((target("avx2,f16c"))) void floatToHalfF16c(const float *in, std::uint16_t *out, std::size_t n)
{
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(in + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
            for (std::size_t k = i; k < i + 8; ++k)
                out[k] = floatToHalfBits(in[k]);
            continue;
        }
        _mm_storeu_si128(reinterpret_cast<__m128i *>(out + i),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; ++i)
        out[i] = floatToHalfBits(in[i]);
}

__attribute__((target("avx2"))) std::int64_t laneSum(__m256i v)
{
    alignas(32) std::int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i *>(lanes), v);
    std::int64_t sum = 0;
    for (std::int32_t x : lanes)
        sum -= x;  // lanes count down: each hit adds a mask of -1
    return sum;
}

// countHalfCast eight at a time (at most a block of 4096 per call, so 32-bit lanes cannot overflow).
__attribute__((target("avx2"))) void countHalfCastAvx2(const std::uint32_t *in, const std::uint16_t *out,
                                                       std::size_t n, CastCounts &c)
{
    const __m256i absMask = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i infBits = _mm256_set1_epi32(0x7F800000);
    const __m256i maxSub = _mm256_set1_epi32(0x007FFFFF);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i halfAbs = _mm256_set1_epi32(0x7FFF);
    const __m256i halfMaxFinite = _mm256_set1_epi32(0x7BFF);
    const __m256i halfMinNormal = _mm256_set1_epi32(0x0400);
    __m256i overflow = zero, zeroed = zero, subnormal = zero;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i a = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(in + i)), absMask);
        const __m256i h = _mm256_and_si256(
            _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(out + i))), halfAbs);
        const __m256i belowInf = _mm256_cmpgt_epi32(infBits, a);
        const __m256i finite = _mm256_andnot_si256(_mm256_cmpeq_epi32(a, zero), belowInf);
        const __m256i normal = _mm256_and_si256(_mm256_cmpgt_epi32(a, maxSub), belowInf);
        const __m256i hZero = _mm256_cmpeq_epi32(h, zero);
        overflow = _mm256_add_epi32(overflow, _mm256_and_si256(finite, _mm256_cmpgt_epi32(h, halfMaxFinite)));
        zeroed = _mm256_add_epi32(zeroed, _mm256_and_si256(finite, hZero));
        subnormal = _mm256_add_epi32(
            subnormal, _mm256_and_si256(normal, _mm256_andnot_si256(hZero, _mm256_cmpgt_epi32(halfMinNormal, h))));
    }
    c.overflow += laneSum(overflow);
    c.zeroed += laneSum(zeroed);
    c.subnormal += laneSum(subnormal);
    countHalfCast(in + i, out + i, n - i, c);
}
#endif

// Float32 to float16 in blocks that stay in cache for the counting pass.
void castFloatToHalf(const std::uint8_t *in, std::uint8_t *out, std::size_t n, CastCounts &c)
{
    constexpr std::size_t kBlock = 4096;
    std::vector<float> src(kBlock);
    std::vector<std::uint16_t> dst(kBlock);
#if defined(__x86_64__)
    static const bool fast = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);  // clang knows no "f16c" here
        return f16c && __builtin_cpu_supports("avx2");
    }();
#else
    constexpr bool fast = false;
#endif
    for (std::size_t done = 0; done < n; done += kBlock) {
        const std::size_t m = std::min(kBlock, n - done);
        std::memcpy(src.data(), in + done * 4, m * 4);  // the input need not be aligned
#if defined(__x86_64__)
        if (fast) {
            floatToHalfF16c(src.data(), dst.data(), m);
            countHalfCastAvx2(reinterpret_cast<const std::uint32_t *>(src.data()), dst.data(), m, c);
        } else
#endif
        {
            for (std::size_t k = 0; k < m; ++k)
                dst[k] = floatToHalfBits(src[k]);
            countHalfCast(reinterpret_cast<const std::uint32_t *>(src.data()), dst.data(), m, c);
        }
        std::memcpy(out + done * 2, dst.data(), m * 2);
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
    case DType::Float32:
        if (to == DType::Float16) {
            castFloatToHalf(in.data(), out.data(), n, c);
            break;
        }
        castFrom<DType::Float32>(to, in.data(), out.data(), n, c);
        break;
    case DType::Float64:
        castFrom<DType::Float64>(to, in.data(), out.data(), n, c);
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
