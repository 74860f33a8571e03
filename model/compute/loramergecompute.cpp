#include "loramergecompute.h"

#include "loramerge.h"
#include "tensorref.h"

#include <ATen/ATen.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <cstring>
#include <stdexcept>

namespace ckpt {

std::vector<std::uint8_t> loraMergedBytes(const LoraMergeStep &step)
{
    if (!step.base || !step.a || (step.kind != LoraMergeStep::Kind::Replace && !step.b))
        throw std::runtime_error("a LoRA merge step without its tensors");
#ifdef __GLIBC__
    // The previous weight's buffers (tens of MB each) were freed, but glibc keeps freed heap memory
    // once its mmap threshold has risen past their size: without this, a merge of N weights ends up
    // holding about N weights' worth of freed memory (measured: RssAnon +21 MB per 16 MB weight).
    malloc_trim(0);
#endif
    // Views of the files' mappings: only the merged weight is allocated (plus the delta).
    const at::Tensor w = toTensor(*step.base, false);
    at::Tensor merged;
    if (step.kind == LoraMergeStep::Kind::Replace) {
        merged = toTensor(*step.a, false).to(w.scalar_type());
    } else {
        at::Tensor a = toTensor(*step.a, false);
        at::Tensor b = toTensor(*step.b, false);
        const bool wide = a.scalar_type() == at::kDouble || b.scalar_type() == at::kDouble;
        const auto factorType = wide ? at::kDouble : at::kFloat;
        a = a.to(factorType);
        b = b.to(factorType);
        at::Tensor delta;
        switch (step.kind) {
        case LoraMergeStep::Kind::Linear:
            delta = at::matmul(b, a);
            if (step.fanInFanOut)
                delta = delta.t();
            delta = delta * step.scaling;
            break;
        case LoraMergeStep::Kind::Embedding:
            delta = at::matmul(b, a).t() * step.scaling;
            break;
        case LoraMergeStep::Kind::Conv2d:
            if (w.size(2) == 1 && w.size(3) == 1)
                delta = at::matmul(b.squeeze(3).squeeze(2), a.squeeze(3).squeeze(2)).unsqueeze(2).unsqueeze(3) *
                        step.scaling;
            else
                delta = at::conv2d(a.permute({1, 0, 2, 3}), b).permute({1, 0, 2, 3}) * step.scaling;
            break;
        case LoraMergeStep::Kind::Replace:
            break;
        }
        if (!delta.sizes().equals(w.sizes()))
            throw std::runtime_error("the delta's shape does not match the weight's");
        const auto sumType = c10::promoteTypes(w.scalar_type(), delta.scalar_type());
        merged = (w.to(sumType) + delta.to(sumType)).to(w.scalar_type());
    }
    merged = merged.contiguous();
    checkSourceIntact(*step.base);
    checkSourceIntact(*step.a);
    if (step.b)
        checkSourceIntact(*step.b);
    const auto *p = static_cast<const std::uint8_t *>(merged.data_ptr());
    return {p, p + merged.nbytes()};
}

} // namespace ckpt
