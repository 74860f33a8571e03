// The compute module: LibTorch behind the ComputeApi interface. Loaded with dlopen when numbers are
// first needed, so listing a checkpoint never pays for LibTorch.
#include "computeapi.h"
#include "tensorconvert.h"
#include "tensorref.h"

#include <ATen/ATen.h>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <torch/version.h>

namespace ckpt {

namespace {

constexpr std::int64_t kChunk = 1 << 20;  // elements converted to double at a time

class TorchCompute final : public ComputeApi {
public:
    std::string torchVersion() const override { return TORCH_VERSION; }

    TensorStats statistics(const TensorRef &ref) const override
    {
        TensorStats s;
        at::Tensor t = toDenseValues(ref).reshape({-1});
        if (t.is_complex())
            t = at::view_as_real(t).reshape({-1});
        s.count = t.numel();
        double n = 0, mean = 0, m2 = 0, sumsq = 0;
        double mn = std::numeric_limits<double>::infinity(), mx = -mn;
        for (std::int64_t start = 0; start < t.numel(); start += kChunk) {
            at::Tensor c = t.slice(0, start, std::min(start + kChunk, t.numel())).to(at::kDouble);
            at::Tensor nan = at::isnan(c);
            const auto nanCount = nan.sum().item<std::int64_t>();
            s.nanCount += nanCount;
            if (nanCount > 0)
                c = c.masked_select(nan.logical_not());
            s.infCount += at::isinf(c).sum().item<std::int64_t>();
            s.zeroCount += c.eq(0).sum().item<std::int64_t>();
            const double cn = static_cast<double>(c.numel());
            if (cn == 0)
                continue;
            mn = std::min(mn, c.min().item<double>());
            mx = std::max(mx, c.max().item<double>());
            const double cmean = c.mean().item<double>();
            const double cm2 = (c - cmean).pow(2).sum().item<double>();
            sumsq += c.pow(2).sum().item<double>();
            // Chan et al.: merge the chunk's mean and squared deviations into the running ones.
            const double delta = cmean - mean;
            const double total = n + cn;
            mean += delta * cn / total;
            m2 += cm2 + delta * delta * n * cn / total;
            n = total;
        }
        if (n > 0) {
            s.min = mn;
            s.max = mx;
            s.mean = mean;
            s.std = n > 1 ? std::sqrt(m2 / (n - 1)) : std::numeric_limits<double>::quiet_NaN();
            s.l2 = std::sqrt(sumsq);
        }
        return s;
    }

    std::vector<double> values(const TensorRef &ref, std::int64_t first, std::int64_t count, bool raw) const override
    {
        at::Tensor t = raw && ref.layout == TensorRef::Layout::Strided ? toTensor(ref, false) : toDenseValues(ref);
        t = t.reshape({-1});
        if (t.is_complex())
            t = at::view_as_real(t).reshape({-1});
        const std::int64_t scale = ref.dtype == DType::Complex64 || ref.dtype == DType::Complex128 ? 2 : 1;
        first = std::clamp<std::int64_t>(first * scale, 0, t.numel());
        const std::int64_t end = std::clamp<std::int64_t>(first + count * scale, first, t.numel());
        at::Tensor c = t.slice(0, first, end).to(at::kDouble).contiguous();
        const double *p = c.data_ptr<double>();
        return {p, p + c.numel()};
    }
};

} // namespace
} // namespace ckpt

extern "C" __attribute__((visibility("default"))) ckpt::ComputeApi *ckpt_compute_api()
{
    static ckpt::TorchCompute instance;
    return &instance;
}
