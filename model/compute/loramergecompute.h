#pragma once

#include "tensorconvert.h"

#include <cstdint>
#include <vector>

namespace ckpt {

struct LoraMergeStep;

// A weight merged with its LoRA factors as PEFT's merge_and_unload makes it (see loramerge.h):
// delta = scaling * (B @ A) (transposed, or the conv of A by B, as the layer needs) in float32
// (float64 when a factor is float64; float16/bfloat16 factors are widened first, as PEFT's
// autocast_adapter_dtype loads them), then W + delta in the wider of W's dtype and the delta's,
// rounded once to W's dtype (what `W += delta` does to a float16 W). A Replace step is the
// adapter's tensor cast to W's dtype. Returns W's bytes, contiguous. Throws std::runtime_error.
CKPT_COMPUTE_EXPORT std::vector<std::uint8_t> loraMergedBytes(const LoraMergeStep &step);

} // namespace ckpt
