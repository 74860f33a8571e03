// The compute module: LibTorch behind the ComputeApi interface. Loaded with dlopen when numbers are
// first needed, so listing a checkpoint never pays for LibTorch.
#include "computeapi.h"
#include "loramergecompute.h"
#include "predictor.h"
#include "tensorconvert.h"
#include "tensorref.h"

#include <ATen/ATen.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <torch/version.h>

namespace ckpt {

namespace {

constexpr std::int64_t kChunk = 1 << 20;  // elements converted to double at a time

// Integer and bool tensors, whose elements are worked on as integers; a quantized tensor's are
// the values its integers stand for.
bool integral(const TensorRef &r) { return !r.quantization && (dtypeIsIntegral(r.dtype) || r.dtype == DType::Bool); }

// Values within 2^±kSafeExponent are summed as they are: their squares, added up over any tensor,
// neither overflow nor underflow float64. Values beyond are first divided by a power of two (exactly)
// and the figures multiplied back at the end (std::ldexp): plain float64 sums of squares overflow
// near 1e154 (a float64 tensor near 1e300 would get std inf - inf = NaN and an infinite L2 norm,
// as torch's own do) and underflow below 1e-162 (subnormals would get std and norm 0).
constexpr int kSafeExponent = 400;

// The exponent of the power of two values are divided by, for values whose largest finite
// magnitude is `big`: 0 within the safe range, std::frexp's exponent of `big` beyond (so they
// fall below 1); none when there is no non-zero finite value to go by.
std::optional<int> scaleExponentOf(double big)
{
    if (!(big > 0) || !std::isfinite(big))
        return std::nullopt;
    int e = 0;
    std::frexp(big, &e);
    return e > kSafeExponent || e < -kSafeExponent ? e : 0;
}

// `c` / 2^e, exact for every result above 2^-1074 (a multiplication by a power of two only moves
// the exponent); in two steps, since 2^-e need not be a float64 itself (2^1074).
at::Tensor scaledDown(const at::Tensor &c, int e)
{
    if (e == 0)
        return c;
    const int first = -e / 2;
    return c.mul(std::ldexp(1.0, first)).mul_(std::ldexp(1.0, -e - first));
}

// The cancel check of the computation running on this thread (see CancelCheck), asked by the
// chunked loops below; none outside the cancellable calls.
thread_local const CancelCheck *t_cancelled = nullptr;

void throwIfCancelled()
{
    if (t_cancelled && *t_cancelled && (*t_cancelled)())
        throw std::runtime_error("cancelled");
}

// Makes `cancelled` the thread's cancel check for as long as it lives.
class CancelScope {
public:
    explicit CancelScope(const CancelCheck &cancelled) : m_previous(t_cancelled) { t_cancelled = &cancelled; }
    ~CancelScope() { t_cancelled = m_previous; }
    CancelScope(const CancelScope &) = delete;
    CancelScope &operator=(const CancelScope &) = delete;

private:
    const CancelCheck *m_previous;
};

// LibTorch's errors carry a C++ backtrace in what() (1.13 always): only the message goes on.
template <typename F> auto plainErrors(F &&f) -> decltype(f())
{
    try {
        return f();
    } catch (const c10::Error &e) {
        throw std::runtime_error(e.what_without_backtrace());
    }
}

class TorchCompute final : public ComputeApi {
public:
    std::string torchVersion() const override { return TORCH_VERSION; }
    TensorStats statistics(const TensorRef &ref) const override
    {
        return plainErrors([&] { return statisticsImpl(ref); });
    }
    Histogram histogram(const TensorRef &ref, int bins) const override
    {
        return plainErrors([&] { return histogramImpl(ref, bins); });
    }
    Histogram differenceHistogram(const TensorRef &ra, const TensorRef &rb, int bins) const override
    {
        return plainErrors([&] { return differenceHistogramImpl(ra, rb, bins); });
    }
    TensorStats statistics(const TensorRef &ref, const CancelCheck &cancelled) const override
    {
        const CancelScope scope(cancelled);
        return statistics(ref);
    }
    Histogram histogram(const TensorRef &ref, int bins, const CancelCheck &cancelled) const override
    {
        const CancelScope scope(cancelled);
        return histogram(ref, bins);
    }
    Histogram differenceHistogram(const TensorRef &ra, const TensorRef &rb, int bins,
                                  const CancelCheck &cancelled) const override
    {
        const CancelScope scope(cancelled);
        return differenceHistogram(ra, rb, bins);
    }
    std::string exportBytes(const TensorRef &ref, ExportFormat format) const override
    {
        return plainErrors([&] { return exportBytesImpl(ref, format); });
    }
    TensorDiff difference(const TensorRef &ra, const TensorRef &rb, double atol, double rtol) const override
    {
        return plainErrors([&] { return differenceImpl(ra, rb, atol, rtol); });
    }
    std::vector<double> values(const TensorRef &ref, std::int64_t first, std::int64_t count, bool raw) const override
    {
        return plainErrors([&] { return valuesImpl(ref, first, count, raw); });
    }
    std::vector<std::int64_t> integers(const TensorRef &ref, std::int64_t first, std::int64_t count) const override
    {
        return plainErrors([&] { return integersImpl(ref, first, count); });
    }
    std::vector<double> values(const TensorRef &ref, std::int64_t first, std::int64_t count, bool raw,
                               const CancelCheck &cancelled) const override
    {
        const CancelScope scope(cancelled);
        return values(ref, first, count, raw);
    }
    std::vector<std::int64_t> integers(const TensorRef &ref, std::int64_t first, std::int64_t count,
                                       const CancelCheck &cancelled) const override
    {
        const CancelScope scope(cancelled);
        return integers(ref, first, count);
    }
    TensorDiff difference(const TensorRef &ra, const TensorRef &rb, double atol, double rtol,
                          const CancelCheck &cancelled) const override
    {
        const CancelScope scope(cancelled);
        return difference(ra, rb, atol, rtol);
    }

    std::vector<std::uint8_t> loraMergedWeight(const LoraMergeStep &step) const override
    {
        return plainErrors([&] { return loraMergedBytes(step); });
    }

private:

    TensorStats statisticsImpl(const TensorRef &ref) const
    {
        TensorStats s;
        if (integral(ref)) {
            integerStatistics(ref, s);
        } else {
            at::Tensor t = toDenseValues(ref).reshape({-1});
            if (t.is_complex())
                t = at::view_as_real(t).reshape({-1});
            floatStatistics(t, s);
        }
        checkSourceIntact(ref);  // numbers made of a truncated file's zeros are not its numbers
        return s;
    }

    // Over the non-NaN values in float64, chunk by chunk. The sums are kept in units of a power of
    // two (see scaleExponentOf), so a tensor near 1e300 has the finite std and L2 norm it has, and
    // one of subnormals the non-zero ones it has, where plain float64 sums of squares would overflow
    // to inf (inf - inf: NaN) or underflow to 0.
    static void floatStatistics(const at::Tensor &t, TensorStats &s)
    {
        s.count = t.numel();
        double n = 0, mean = 0, m2 = 0, sumsq = 0;  // mean in units of 2^scale, m2 and sumsq of 4^scale
        std::optional<int> scale;                   // none while no value was finite and non-zero
        double mn = std::numeric_limits<double>::infinity(), mx = -mn;
        for (std::int64_t start = 0; start < t.numel(); start += kChunk) {
            throwIfCancelled();
            const std::int64_t end = std::min(start + kChunk, t.numel());
            at::Tensor c = t.slice(0, start, end).to(at::kDouble);
            at::Tensor nan = at::isnan(c);
            const auto nanCount = nan.sum().item<std::int64_t>();
            s.nanCount += nanCount;
            if (nanCount > 0)
                c = c.masked_select(nan.logical_not());
            const auto infCount = at::isinf(c).sum().item<std::int64_t>();
            s.infCount += infCount;
            s.zeroCount += c.eq(0).sum().item<std::int64_t>();
            const double cn = static_cast<double>(c.numel());
            if (cn == 0)
                continue;
            // One pass each: the extremes together, sums of squares as dot products.
            const auto [cmin, cmax] = at::aminmax(c);
            const double lo = cmin.item<double>(), hi = cmax.item<double>();
            mn = std::min(mn, lo);
            mx = std::max(mx, hi);
            double big = std::max(std::abs(lo), std::abs(hi));
            if (infCount > 0) {  // the largest finite magnitude, past the infinities
                const at::Tensor finite = c.masked_select(at::isfinite(c));
                big = finite.numel() > 0 ? finite.abs().max().item<double>() : 0.0;
            }
            if (const auto e = scaleExponentOf(big); e && (!scale || *e > *scale)) {
                const int by = scale.value_or(0) - *e;  // what was summed so far, in the new units
                mean = std::ldexp(mean, by);
                m2 = std::ldexp(m2, 2 * by);
                sumsq = std::ldexp(sumsq, 2 * by);
                scale = e;
            }
            const at::Tensor cs = scaledDown(c, scale.value_or(0));
            const double cmean = cs.mean().item<double>();
            const at::Tensor deviation = cs - cmean;
            const double cm2 = at::dot(deviation, deviation).item<double>();
            sumsq += at::dot(cs, cs).item<double>();
            // Chan et al.: merge the chunk's mean and squared deviations into the running ones.
            const double delta = cmean - mean;
            const double total = n + cn;
            mean += delta * cn / total;
            m2 += cm2 + delta * delta * n * cn / total;
            n = total;
        }
        // No values (empty, or all NaN): no extremes, mean or std, as torch has none; the L2 norm
        // of nothing is 0, as torch.linalg.norm gives.
        s.l2 = 0;
        if (n > 0) {
            const int e = scale.value_or(0);
            s.min = mn;
            s.max = mx;
            s.mean = std::ldexp(mean, e);
            s.std = n > 1 ? std::ldexp(std::sqrt(m2 / (n - 1)), e) : std::numeric_limits<double>::quiet_NaN();
            s.l2 = std::ldexp(std::sqrt(sumsq), e);
        }
    }

    // Integer and bool tensors on their integers: the extremes exactly (a double cannot hold them
    // past 2^53), the mean from the exact sum (in 128 bits: 2^63 elements of at most 2^64 - 1
    // fit), the std from deviations from the integer nearest below the mean, taken exactly before
    // they are squared in float64 (so [2^53, 2^53 + 1] has the std 0.707 it has, not the 0 of two
    // equal doubles). uint64 elements are their bits, read unsigned.
    static void integerStatistics(const TensorRef &ref, TensorStats &s)
    {
        const at::Tensor ints = toIntegers(ref).reshape({-1});
        const bool bits = ref.dtype == DType::UInt64;
        const auto wide = [bits](std::int64_t v) {
            return bits ? static_cast<__int128>(static_cast<std::uint64_t>(v)) : static_cast<__int128>(v);
        };
        const std::int64_t count = ints.numel();
        s.count = count;
        s.l2 = 0;  // of no values, as torch.linalg.norm; no extremes, mean or std
        if (count == 0)
            return;
        __int128 sum = 0, lo = wide(0), hi = wide(0);
        bool first = true;
        for (std::int64_t start = 0; start < count; start += kChunk) {
            throwIfCancelled();
            const at::Tensor c = ints.slice(0, start, std::min(start + kChunk, count)).to(at::kLong).contiguous();
            const std::int64_t *p = c.data_ptr<std::int64_t>();
            for (std::int64_t i = 0; i < c.numel(); ++i) {
                const __int128 x = wide(p[i]);
                sum += x;
                lo = first || x < lo ? x : lo;
                hi = first || x > hi ? x : hi;
                first = false;
                s.zeroCount += x == 0;
            }
        }
        // sum = pivot * count + rest, |rest| < count: the mean is pivot + rest / count.
        const __int128 pivot = sum / count, rest = sum % count;
        // Each value and its deviation as float64 (the deviation taken exactly first), their squares
        // summed by ATen's dot product, which sums in blocks (as the float figures are summed).
        double squares = 0, deviations = 0;
        for (std::int64_t start = 0; start < count; start += kChunk) {
            throwIfCancelled();
            const at::Tensor c = ints.slice(0, start, std::min(start + kChunk, count)).to(at::kLong).contiguous();
            const std::int64_t *p = c.data_ptr<std::int64_t>();
            at::Tensor values = at::empty({c.numel()}, at::kDouble), offsets = at::empty({c.numel()}, at::kDouble);
            double *v = values.data_ptr<double>(), *d = offsets.data_ptr<double>();
            for (std::int64_t i = 0; i < c.numel(); ++i) {
                const __int128 x = wide(p[i]);
                v[i] = static_cast<double>(x);
                d[i] = static_cast<double>(x - pivot);
            }
            squares += at::dot(values, values).item<double>();
            deviations += at::dot(offsets, offsets).item<double>();
        }
        const auto n = static_cast<double>(count);
        const double offset = static_cast<double>(rest) / n;  // the mean's distance from the pivot
        // In 64 bits of precision, rounded once more to float64: within half a unit (and a tie's
        // hair) of the exact mean.
        s.mean = static_cast<double>(static_cast<long double>(pivot) + static_cast<long double>(rest) / count);
        s.std = count > 1 ? std::sqrt(std::max(0.0, deviations - n * offset * offset) / (n - 1))
                          : std::numeric_limits<double>::quiet_NaN();
        s.l2 = std::sqrt(squares);
        s.min = static_cast<double>(lo);
        s.max = static_cast<double>(hi);
        s.exact = true;
        s.exactUnsigned = bits;
        s.exactMin = static_cast<std::int64_t>(static_cast<std::uint64_t>(lo));
        s.exactMax = static_cast<std::int64_t>(static_cast<std::uint64_t>(hi));
    }

    Histogram histogramImpl(const TensorRef &ref, int bins) const
    {
        at::Tensor t = toDenseValues(ref).reshape({-1});
        if (t.is_complex())
            t = at::view_as_real(t).reshape({-1});
        Histogram h = histogramOf(t.numel(), bins, [&t](std::int64_t start, std::int64_t end) {
            at::Tensor c = t.slice(0, start, end).to(at::kDouble);
            return c.masked_select(at::isfinite(c));
        });

        checkSourceIntact(ref);  // counts of a truncated file's zeros are not its counts
        return h;
    }

    Histogram differenceHistogramImpl(const TensorRef &ra, const TensorRef &rb, int bins) const
    {
        if (ra.shape != rb.shape)
            throw std::runtime_error("shapes differ: " + shapeText(ra.shape) + " and " + shapeText(rb.shape));
        at::Tensor a = toDenseValues(ra).reshape({-1});
        at::Tensor b = toDenseValues(rb).reshape({-1});
        if (a.is_complex() || b.is_complex())
            throw std::runtime_error("no histogram of differences for complex tensors");
        Histogram h = histogramOf(a.numel(), bins, [&a, &b](std::int64_t start, std::int64_t end) {
            at::Tensor d = b.slice(0, start, end).to(at::kDouble) - a.slice(0, start, end).to(at::kDouble);
            return d.masked_select(at::isfinite(d));
        });
        checkSourceIntact(ra);
        checkSourceIntact(rb);
        return h;
    }

    // Counts in `bins` equal bins over [min, max] of the finite values `chunk(start, end)` gives,
    // as torch.histc counts them; two passes over chunks, never the whole tensor in float64.
    template <typename Chunk>
    static Histogram histogramOf(std::int64_t n, int bins, const Chunk &chunk)
    {
        if (bins < 1 || bins > 1'000'000)
            throw std::runtime_error("histogram bins must be between 1 and 1000000");
        Histogram h;
        h.counts.assign(static_cast<std::size_t>(bins), 0);
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        std::int64_t finite = 0;
        for (std::int64_t start = 0; start < n; start += kChunk) {
            throwIfCancelled();
            const at::Tensor c = chunk(start, std::min(start + kChunk, n));
            finite += c.numel();
            if (c.numel() == 0)
                continue;
            lo = std::min(lo, c.min().item<double>());
            hi = std::max(hi, c.max().item<double>());
        }
        h.nonFinite = n - finite;  // NaN and infinities: no bin holds them, the chart says how many
        if (lo > hi)
            return h;  // no finite values
        if (lo == hi) {
            // One value: torch.histc counts over [v - 1, v + 1] then; the bins say so. Where
            // float64 rounds both to v (|v| past 2^54; torch.histc refuses "max must be larger
            // than min"), over v -+ the larger of the spacings of float64 values on either side
            // of v (they differ at a power of two), which puts v in the middle bin too.
            const double v = lo;
            lo = v - 1;
            hi = v + 1;
            if (!(lo < hi)) {
                constexpr double inf = std::numeric_limits<double>::infinity();
                const double below = v - std::nextafter(v, -inf), above = std::nextafter(v, inf) - v;
                // At ±DBL_MAX the side past it is infinite: v at the range's edge instead.
                const double d = std::isinf(below) ? above : std::isinf(above) ? below : std::max(below, above);
                hi = std::isfinite(v + d) ? v + d : v;
                lo = std::isfinite(v - d) ? v - d : v;
            }
        }
        h.low = lo;
        h.high = hi;
        // A range wider than float64 holds (say -1.7e308 to 1.7e308): torch.histc divides by an
        // infinite width and counts every value in the first bin. Counted instead on the values
        // divided by a power of two, exactly, which is what torch.histc counts for values that fit.
        int e = 0;
        if (!std::isfinite(hi - lo))
            std::frexp(std::max(std::abs(lo), std::abs(hi)), &e);
        const double slo = std::ldexp(lo, -e), shi = std::ldexp(hi, -e);
        for (std::int64_t start = 0; start < n; start += kChunk) {
            throwIfCancelled();
            const at::Tensor counts =
                at::histc(scaledDown(chunk(start, std::min(start + kChunk, n)), e), bins, slo, shi).to(at::kLong);
            const auto *p = counts.data_ptr<std::int64_t>();
            for (int b = 0; b < bins; ++b)
                h.counts[static_cast<std::size_t>(b)] += p[b];
        }
        return h;
    }

    std::string exportBytesImpl(const TensorRef &ref, ExportFormat format) const
    {
        std::string out;
        const bool integers = integral(ref);
        const char *unsignedDescr = ref.dtype == DType::UInt16   ? "<u2"
                                    : ref.dtype == DType::UInt32 ? "<u4"
                                    : ref.dtype == DType::UInt64 ? "<u8"
                                                                 : nullptr;
        if (format == ExportFormat::Csv && integers) {
            // Integers written from the integers, never through a double (which rounds past 2^53).
            out = csvIntegers(toIntegers(ref).to(at::kLong).contiguous(), ref.shape, ref.dtype == DType::UInt64);
        } else if (format == ExportFormat::Npy && unsignedDescr) {
            // numpy has the unsigned types LibTorch 1.13 lacks: their bits, narrowed to their width.
            const auto width = ref.dtype == DType::UInt16 ? at::kShort : ref.dtype == DType::UInt32 ? at::kInt : at::kLong;
            out = npy(toIntegers(ref).to(width).contiguous(), unsignedDescr);
        } else {
            at::Tensor t = toDenseValues(ref);
            if (t.scalar_type() == at::kBFloat16)
                t = t.to(at::kFloat);  // numpy has no bfloat16
            t = t.contiguous();
            out = format == ExportFormat::Npy ? npy(t) : csv(t);
        }
        checkSourceIntact(ref);  // after the last read of the data, which may view the mapping
        return out;
    }

    static const char *npyDescr(c10::ScalarType type)
    {
        switch (type) {
        case at::kFloat: return "<f4";
        case at::kDouble: return "<f8";
        case at::kHalf: return "<f2";
        case at::kLong: return "<i8";
        case at::kInt: return "<i4";
        case at::kShort: return "<i2";
        case at::kChar: return "|i1";
        case at::kByte: return "|u1";
        case at::kBool: return "|b1";
        case at::kComplexFloat: return "<c8";
        case at::kComplexDouble: return "<c16";
        default: throw std::runtime_error("no .npy type for this tensor");
        }
    }

    // `descr` names numpy's element type when it is not the tensor's own (the unsigned types).
    static std::string npy(const at::Tensor &t, const char *descr = nullptr)
    {
        if (!descr)
            descr = npyDescr(t.scalar_type());
        // Python's tuple text: "()", "(5,)", "(2, 3)".
        std::string shape = "(";
        for (std::int64_t i = 0; i < t.dim(); ++i)
            shape += (i ? ", " : "") + std::to_string(t.size(i));
        shape += t.dim() == 1 ? ",)" : ")";
        std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
        // Magic, version 1.0, header length; the header ends in a newline and aligns the data to 64.
        const std::size_t unpadded = 10 + header.size() + 1;
        header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
        std::string out = std::string("\x93NUMPY\x01\x00", 8);
        out += static_cast<char>(header.size() & 0xff);
        out += static_cast<char>((header.size() >> 8) & 0xff);
        out += header;
        out.append(static_cast<const char *>(t.data_ptr()), static_cast<std::size_t>(t.nbytes()));
        return out;
    }

    static std::string csv(const at::Tensor &t)
    {
        if (t.is_complex())
            throw std::runtime_error("complex values have no .csv form; export .npy");
        const std::int64_t cols = t.dim() == 0 ? 1 : t.size(-1);
        at::Tensor d = t.to(at::kDouble).reshape({-1});
        const double *p = d.data_ptr<double>();
        const char *fmt = t.scalar_type() == at::kDouble ? "%.17g" : "%.9g";
        std::string out;
        char buf[64];
        for (std::int64_t i = 0; i < d.numel(); ++i) {
            std::snprintf(buf, sizeof buf, fmt, p[i]);
            out += buf;
            out += (cols > 0 && (i + 1) % cols == 0) ? '\n' : ',';
        }
        return out;
    }

    // One row per index of the leading dimensions; uint64 bits written as the unsigned numbers.
    static std::string csvIntegers(const at::Tensor &ints, const std::vector<std::int64_t> &shape, bool asUnsigned)
    {
        const std::int64_t cols = shape.empty() ? 1 : shape.back();
        const std::int64_t *p = ints.data_ptr<std::int64_t>();
        std::string out;
        char buf[32];
        for (std::int64_t i = 0; i < ints.numel(); ++i) {
            if (asUnsigned)
                std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(static_cast<std::uint64_t>(p[i])));
            else
                std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(p[i]));
            out += buf;
            out += (cols > 0 && (i + 1) % cols == 0) ? '\n' : ',';
        }
        return out;
    }

    TensorDiff differenceImpl(const TensorRef &ra, const TensorRef &rb, double atol, double rtol) const
    {
        if (ra.shape != rb.shape)
            throw std::runtime_error("shapes differ: " + shapeText(ra.shape) + " and " + shapeText(rb.shape));
        TensorDiff d;
        at::Tensor a = toDenseValues(ra);
        at::Tensor b = toDenseValues(rb);
        if (ra.dtype == rb.dtype && ra.layout == rb.layout && a.scalar_type() == b.scalar_type()) {
            throwIfCancelled();
            const at::Tensor ca = a.contiguous(), cb = b.contiguous();
            d.identical = ca.nbytes() == cb.nbytes() && sameBytes(ca, cb);
        }
        if (integral(ra) && integral(rb)) {
            integerDifference(ra, rb, atol, rtol, d);
            return d;
        }
        a = a.reshape({-1});
        b = b.reshape({-1});
        if (a.is_complex())
            a = at::view_as_real(a).reshape({-1});
        if (b.is_complex())
            b = at::view_as_real(b).reshape({-1});
        if (a.numel() != b.numel())
            throw std::runtime_error("one tensor is complex and the other is not");
        d.count = a.numel();
        bool scaled = false;  // d.scale set by a non-zero finite value
        for (std::int64_t start = 0; start < d.count; start += kChunk) {
            throwIfCancelled();
            const std::int64_t end = std::min(start + kChunk, d.count);
            const at::Tensor ca = a.slice(0, start, end).to(at::kDouble).contiguous();
            const at::Tensor cb = b.slice(0, start, end).to(at::kDouble).contiguous();
            const at::Tensor finite = at::isfinite(ca).logical_and_(at::isfinite(cb));
            const std::int64_t finiteCount = finite.sum().item<std::int64_t>();
            at::Tensor fa = ca, fb = cb;
            if (finiteCount != end - start) {
                // Non-finite positions: equal when both hold the same Inf or both are NaN.
                const at::Tensor sameNonFinite = ca.eq(cb).logical_or_(at::isnan(ca).logical_and_(at::isnan(cb)));
                const auto disagree = finite.logical_not().logical_and_(sameNonFinite.logical_not()).sum().item<std::int64_t>();
                d.nonFinite += disagree;
                d.outside += disagree;
                fa = ca.masked_select(finite);
                fb = cb.masked_select(finite);
            }
            d.finite += finiteCount;
            if (finiteCount == 0)
                continue;
            // The chunk in the running units (TensorDiff::Scaled), which grow with the largest
            // magnitude met: a sum of squares of values near 1e300 is kept in float64's range.
            const auto magnitude = [](const at::Tensor &v) {
                const auto [lo, hi] = at::aminmax(v);
                return std::max(std::abs(lo.item<double>()), std::abs(hi.item<double>()));
            };
            const double big = d.identical ? magnitude(fa) : std::max(magnitude(fa), magnitude(fb));
            auto &s = d.scaled;
            if (const auto e = scaleExponentOf(big); e && (!scaled || *e > s.scale)) {
                s.rescale(*e);
                scaled = true;
            }
            const at::Tensor sa = scaledDown(fa, s.scale);
            // Sums of products as dot products: one pass each, no squared copy made.
            const double sumSqA = at::dot(sa, sa).item<double>();
            s.sqA += sumSqA;
            if (d.identical) {  // the same bytes: every difference is 0, b's sums are a's
                s.sqB += sumSqA;
                s.dot += sumSqA;
                continue;
            }
            const at::Tensor sb = scaledDown(fb, s.scale);
            // Scaled, a - b cannot overflow; 2^scale times it is the float64 |a - b| (inf past
            // float64's range, as torch's own a - b).
            const at::Tensor diff = sa - sb;
            const at::Tensor absDiff = diff.abs();
            d.maxAbs = std::max(d.maxAbs, std::ldexp(absDiff.max().item<double>(), s.scale));
            s.abs += absDiff.sum().item<double>();
            s.sqDiff += at::dot(diff, diff).item<double>();
            s.sqB += at::dot(sb, sb).item<double>();
            s.dot += at::dot(sa, sb).item<double>();
            d.outside += absDiff.gt(sb.abs().mul_(rtol).add_(std::ldexp(atol, -s.scale))).sum().item<std::int64_t>();
        }
        d.settle();
        checkSourceIntact(ra);  // figures made of a truncated file's zeros are not its figures
        checkSourceIntact(rb);
        return d;
    }

    // Whether two contiguous tensors hold the same bytes, compared a chunk at a time so that two
    // 10-GB tensors read from disk stop comparing when the job is cancelled.
    static bool sameBytes(const at::Tensor &a, const at::Tensor &b)
    {
        const auto *pa = static_cast<const unsigned char *>(a.data_ptr());
        const auto *pb = static_cast<const unsigned char *>(b.data_ptr());
        const auto bytes = static_cast<std::size_t>(a.nbytes());
        constexpr std::size_t kBytes = std::size_t(kChunk) * 8;
        for (std::size_t at = 0; at < bytes; at += kBytes) {
            throwIfCancelled();
            if (std::memcmp(pa + at, pb + at, std::min(kBytes, bytes - at)) != 0)
                return false;
        }
        return true;
    }

    // Two integer tensors compared on their integers: a difference of 1 between int64 values past
    // 2^53 is a difference, which it is not once both are rounded to float64. Each |a - b| is exact
    // (in 128 bits: uint64 minus int64 minimum needs 65); the sums are float64 of those.
    static void integerDifference(const TensorRef &ra, const TensorRef &rb, double atol, double rtol, TensorDiff &d)
    {
        const at::Tensor a = toIntegers(ra).reshape({-1}), b = toIntegers(rb).reshape({-1});
        const bool ua = ra.dtype == DType::UInt64, ub = rb.dtype == DType::UInt64;
        const auto wide = [](std::int64_t v, bool bits) {
            return bits ? static_cast<__int128>(static_cast<std::uint64_t>(v)) : static_cast<__int128>(v);
        };
        d.count = a.numel();
        d.finite = d.count;
        for (std::int64_t start = 0; start < d.count; start += kChunk) {
            throwIfCancelled();
            const std::int64_t end = std::min(start + kChunk, d.count);
            const at::Tensor ca = a.slice(0, start, end).to(at::kLong).contiguous();
            const at::Tensor cb = b.slice(0, start, end).to(at::kLong).contiguous();
            const std::int64_t *pa = ca.data_ptr<std::int64_t>(), *pb = cb.data_ptr<std::int64_t>();
            for (std::int64_t i = 0; i < end - start; ++i) {
                const __int128 x = wide(pa[i], ua), y = wide(pb[i], ub);
                const __int128 e = x > y ? x - y : y - x;
                const double ad = static_cast<double>(e), fa = static_cast<double>(x), fb = static_cast<double>(y);
                d.maxAbs = std::max(d.maxAbs, ad);
                d.scaled.abs += ad;  // in units of 1: integers square within float64's range
                d.scaled.sqDiff += ad * ad;
                d.scaled.sqA += fa * fa;
                d.scaled.sqB += fb * fb;
                d.scaled.dot += fa * fb;
                d.outside += e != 0 && ad > atol + rtol * std::abs(fb);
            }
        }
        d.settle();
        checkSourceIntact(ra);
        checkSourceIntact(rb);
    }

    // Elements [first, end) of `t` in row-major order as one 1-D tensor, copying only those: a
    // reshape(-1) of a non-contiguous tensor (a transposed 10-GB weight) copies all of it, for a
    // page of a few thousand values. Whole rows in the range are taken as one slice; the partial
    // rows at its ends are taken the same way one dimension down.
    static at::Tensor flatRange(const at::Tensor &t, std::int64_t first, std::int64_t end)
    {
        if (first >= end)
            return at::empty({0}, t.options());
        if (t.dim() <= 1 || t.is_contiguous())
            return t.reshape({-1}).slice(0, first, end);
        const std::int64_t inner = t.numel() / t.size(0);  // > 0: the range holds elements
        const std::int64_t r0 = first / inner, rLast = (end - 1) / inner;
        if (r0 == rLast)
            return flatRange(t.select(0, r0), first - r0 * inner, end - r0 * inner);
        std::vector<at::Tensor> parts{flatRange(t.select(0, r0), first - r0 * inner, inner)};
        if (rLast > r0 + 1)
            parts.push_back(t.slice(0, r0 + 1, rLast).reshape({-1}));
        parts.push_back(flatRange(t.select(0, rLast), 0, end - rLast * inner));
        return at::cat(parts);
    }

    // `c` (1-D) converted to `T` a chunk at a time, asking between chunks whether to go on.
    template <typename T> static std::vector<T> chunked(const at::Tensor &c, at::ScalarType type)
    {
        std::vector<T> out;
        out.reserve(static_cast<std::size_t>(c.numel()));
        for (std::int64_t start = 0; start < c.numel(); start += kChunk) {
            throwIfCancelled();
            const at::Tensor part = c.slice(0, start, std::min(start + kChunk, c.numel())).to(type).contiguous();
            const T *p = part.data_ptr<T>();
            out.insert(out.end(), p, p + part.numel());
        }
        return out;
    }

    std::vector<double> valuesImpl(const TensorRef &ref, std::int64_t first, std::int64_t count, bool raw) const
    {
        throwIfCancelled();
        // A sparse or quantized tensor is densified (dequantized) whole: LibTorch's kernels give
        // torch's values only so. Strided ones are views of the file, read where asked.
        const at::Tensor t = raw && ref.layout == TensorRef::Layout::Strided ? toTensor(ref, false) : toDenseValues(ref);
        throwIfCancelled();
        first = std::clamp<std::int64_t>(first, 0, t.numel());
        const std::int64_t end = std::clamp<std::int64_t>(first + std::max<std::int64_t>(count, 0), first, t.numel());
        at::Tensor c = flatRange(t, first, end);
        if (c.is_complex())
            c = at::view_as_real(c.contiguous()).reshape({-1});
        std::vector<double> out = chunked<double>(c, at::kDouble);
        checkSourceIntact(ref);
        return out;
    }

    std::vector<std::int64_t> integersImpl(const TensorRef &ref, std::int64_t first, std::int64_t count) const
    {
        throwIfCancelled();
        const at::Tensor t = toIntegers(ref);
        throwIfCancelled();
        first = std::clamp<std::int64_t>(first, 0, t.numel());
        const std::int64_t end = std::clamp<std::int64_t>(first + std::max<std::int64_t>(count, 0), first, t.numel());
        std::vector<std::int64_t> out = chunked<std::int64_t>(flatRange(t, first, end), at::kLong);
        checkSourceIntact(ref);
        return out;
    }

public:
    std::vector<DeviceInfo> devices() const override { return listDevices(); }

    std::unique_ptr<Predictor> predictor(const Document &doc, const Architecture &arch) const override
    {
        return makePredictor(doc, arch);
    }
};

} // namespace
} // namespace ckpt

extern "C" __attribute__((visibility("default"))) ckpt::ComputeApi *ckpt_compute_api()
{
    static ckpt::TorchCompute instance;
    return &instance;
}
