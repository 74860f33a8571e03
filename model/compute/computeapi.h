#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace ckpt {

struct TensorRef;

// Summary statistics of a tensor's values; NaNs are counted, not folded into the other figures.
struct TensorStats {
    std::int64_t count = 0;      // elements
    std::int64_t nanCount = 0;
    std::int64_t infCount = 0;
    std::int64_t zeroCount = 0;
    double min = std::numeric_limits<double>::quiet_NaN();
    double max = std::numeric_limits<double>::quiet_NaN();
    double mean = std::numeric_limits<double>::quiet_NaN();
    double std = std::numeric_limits<double>::quiet_NaN();  // unbiased, as torch.std
    double l2 = std::numeric_limits<double>::quiet_NaN();
};

// Counts of a tensor's finite values in equal-width bins from its minimum to its maximum, as
// torch.histc counts them (the maximum falls in the last bin).
struct Histogram {
    double low = 0;
    double high = 0;
    std::vector<std::int64_t> counts;
};

// What the compute module (LibTorch) offers the layers above it. The interface has no LibTorch
// types, so callers do not pay for LibTorch's headers or its start-up until they load the module.
class ComputeApi {
public:
    virtual ~ComputeApi() = default;
    // LibTorch version the module was built with ("1.13.1").
    virtual std::string torchVersion() const = 0;
    // Statistics over every element; throws std::runtime_error when the tensor's data are invalid.
    virtual TensorStats statistics(const TensorRef &tensor) const = 0;
    // `count` elements from flat (row-major, logical order) index `first`, as doubles; complex
    // values come as (real, imaginary) pairs. Quantized tensors give their real (dequantized)
    // values, or the stored integers when `raw`; sparse tensors give their dense values.
    virtual std::vector<double> values(const TensorRef &tensor, std::int64_t first, std::int64_t count,
                                       bool raw = false) const = 0;
    // The tensor as a file's bytes: .npy (C order; bfloat16 widened to float32, quantized
    // dequantized, sparse densified) or .csv (one row per index of the leading dimensions, values
    // of the last dimension across). Throws std::runtime_error for what the format cannot hold.
    enum class ExportFormat { Npy, Csv };
    // Histogram of the finite values in `bins` bins (quantized dequantized, sparse densified).
    virtual Histogram histogram(const TensorRef &tensor, int bins) const = 0;
    virtual std::string exportBytes(const TensorRef &tensor, ExportFormat format) const = 0;
};

} // namespace ckpt

// The one symbol the module exports; returns a process-wide instance.
extern "C" ckpt::ComputeApi *ckpt_compute_api();
