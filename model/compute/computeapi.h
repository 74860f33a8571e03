#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ckpt {

struct TensorRef;
struct Document;
struct Architecture;
struct LoraMergeStep;  // loramerge.h

// min, max, mean, std and L2 norm of a tensor's values (NaN where there is no such figure).
struct StatFigures {
    double min = std::numeric_limits<double>::quiet_NaN();
    double max = std::numeric_limits<double>::quiet_NaN();
    double mean = std::numeric_limits<double>::quiet_NaN();
    double std = std::numeric_limits<double>::quiet_NaN();
    double l2 = std::numeric_limits<double>::quiet_NaN();
};

// Summary statistics of a tensor's values; NaNs are counted, and min, max, mean, std and l2 below
// are over the values that are not NaN. What torch gives the tensor is torch(): the one account
// of torch's figures the CLI, the window and every other view show.
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
    // Integer and bool tensors: min and max exactly, as the doubles above cannot hold them past
    // 2^53. A uint64 tensor's are the bits of the unsigned values (exactUnsigned).
    bool exact = false;
    bool exactUnsigned = false;
    std::int64_t exactMin = 0;
    std::int64_t exactMax = 0;

    // The figures torch gives (t.double().min(), .max(), .mean(), .std(), torch.linalg.norm): a
    // NaN anywhere makes every one of them NaN, as torch propagates it.
    StatFigures torch() const
    {
        return nanCount > 0 ? StatFigures{} : withoutNan();
    }
    // The figures over the values that are not NaN (torch.nanmean's mean): what to show beside
    // torch's, labelled apart, where the tensor holds a NaN.
    StatFigures withoutNan() const { return {min, max, mean, std, l2}; }
    // The exact integer extremes (exactMin, exactMax) stand for torch's: integer tensors hold no NaN.
    bool exactExtremes() const { return exact && nanCount == 0; }
};

// Counts of a tensor's finite values in equal-width bins from its minimum to its maximum, as
// torch.histc counts them in float64 (the maximum falls in the last bin); histc in float32 can put a
// value at an edge into the neighbouring bin.
struct Histogram {
    double low = 0;   // the range counted over: [min, max] of the finite values, or [v - 1, v + 1]
    double high = 0;  // when they are all v (as torch.histc counts a constant tensor)
    std::vector<std::int64_t> counts;
    std::int64_t nonFinite = 0;  // NaN and infinite values left out of the counts
};

// How two tensors of one shape differ, summed over every element in float64 chunks (two integer
// tensors: each |a - b| taken exactly on the integers, then summed in float64). Positions
// where both hold the same non-finite value (NaN and NaN, Inf and Inf) count as equal; other
// positions with a non-finite value are counted apart and left out of the figures.
struct TensorDiff {
    bool identical = false;        // same dtype, shape and bytes
    std::int64_t count = 0;        // elements compared
    std::int64_t outside = 0;      // elements with |a - b| > atol + rtol * |b|, non-finite mismatches included
    std::int64_t nonFinite = 0;    // positions where a and b disagree and one is NaN or Inf
    double maxAbs = 0;             // max |a - b| over positions where both are finite (inf past float64)
    double sumAbs = 0;             // sum of |a - b| there
    double sumSqDiff = 0;          // sum of (a - b)^2, a^2, b^2 and a*b there, as float64 holds them:
    double sumSqA = 0;             // inf past its range, 0 below it (the figures below do not use
    double sumSqB = 0;             // these but the scaled sums, which keep them finite and non-zero)
    double dot = 0;
    std::int64_t finite = 0;       // positions where both are finite

    // The same sums in units of a power of two, so that values near the ends of float64 (1e300,
    // subnormals) neither overflow nor underflow them: |a - b| in units of 2^scale, the squares
    // and products in units of 4^scale. They add up per module (accumulate).
    struct Scaled {
        int scale = 0;
        double abs = 0, sqDiff = 0, sqA = 0, sqB = 0, dot = 0;
        // The sums in units of 2^to (of 4^to).
        void rescale(int to)
        {
            const int by = scale - to;
            abs = std::ldexp(abs, by);
            sqDiff = std::ldexp(sqDiff, 2 * by);
            sqA = std::ldexp(sqA, 2 * by);
            sqB = std::ldexp(sqB, 2 * by);
            dot = std::ldexp(dot, 2 * by);
            scale = to;
        }
        bool zero() const { return abs == 0 && sqA == 0 && sqB == 0; }  // no units to speak of
    } scaled;

    double meanAbs() const
    {
        return finite > 0 ? std::ldexp(scaled.abs / static_cast<double>(finite), scaled.scale) : 0.0;
    }
    // ||a||, ||b|| and ||a - b|| over the positions where both are finite.
    double normA() const { return std::ldexp(std::sqrt(scaled.sqA), scaled.scale); }
    double normB() const { return std::ldexp(std::sqrt(scaled.sqB), scaled.scale); }
    double normDiff() const { return std::ldexp(std::sqrt(scaled.sqDiff), scaled.scale); }
    // ||a - b|| / ||a||; 0 for two zero tensors, infinity when only a is zero.
    double relativeL2() const
    {
        if (scaled.sqA > 0)
            return std::sqrt(scaled.sqDiff / scaled.sqA);
        return scaled.sqDiff == 0 ? 0.0 : std::numeric_limits<double>::infinity();
    }
    // a·b / (||a|| ||b||); 1 for two zero tensors, NaN when only one is zero.
    double cosine() const
    {
        if (scaled.sqA == 0 && scaled.sqB == 0)
            return 1.0;
        if (scaled.sqA == 0 || scaled.sqB == 0)
            return std::numeric_limits<double>::quiet_NaN();
        return scaled.dot / (std::sqrt(scaled.sqA) * std::sqrt(scaled.sqB));
    }
    // Sets the plain sums from the scaled ones.
    void settle()
    {
        sumAbs = std::ldexp(scaled.abs, scaled.scale);
        sumSqDiff = std::ldexp(scaled.sqDiff, 2 * scaled.scale);
        sumSqA = std::ldexp(scaled.sqA, 2 * scaled.scale);
        sumSqB = std::ldexp(scaled.sqB, 2 * scaled.scale);
        dot = std::ldexp(scaled.dot, 2 * scaled.scale);
    }
    // Adds another tensor's sums (for a module's figures), in the larger units of the two.
    void accumulate(const TensorDiff &o)
    {
        identical = (count == 0 || identical) && o.identical;
        count += o.count;
        outside += o.outside;
        nonFinite += o.nonFinite;
        maxAbs = std::max(maxAbs, o.maxAbs);
        Scaled other = o.scaled;
        const int to = scaled.zero()  ? other.scale
                       : other.zero() ? scaled.scale
                                      : std::max(scaled.scale, other.scale);
        scaled.rescale(to);
        other.rescale(to);
        scaled.abs += other.abs;
        scaled.sqDiff += other.sqDiff;
        scaled.sqA += other.sqA;
        scaled.sqB += other.sqB;
        scaled.dot += other.dot;
        finite += o.finite;
        settle();
    }
};


// A device a prediction can run on: "cpu", "cuda:0", ...; unavailable ones say why.
struct DeviceInfo {
    std::string id;
    std::string label;
    bool available = false;
    std::string reason;
    std::string name;                  // "NVIDIA H200", where the driver tells
    std::uint64_t memoryBytes = 0;     // the device's total memory; 0 where unknown
    std::string capability;            // CUDA compute capability ("9.0")
    std::vector<std::string> dtypes;   // what predictions can run in here: "float32", "float16", "bfloat16"
};

// One batch of inputs: the shape (batch first) and the values in row-major order. Models whose
// first layer is an Embedding take them as integer indices.
struct PredictionInput {
    std::vector<std::int64_t> shape;
    std::vector<double> values;
    std::string note;  // what was done to it on the way, for the user (an image resized)
};

// How to run a batch, LibTorch style with chainable setters.
struct PredictOptions {
    std::string device = "cpu";           // "cpu", "cuda", "cuda:N"
    bool normalize = true;                // apply mean/std when there are some
    std::string dtype = "float32";        // weights and inputs: float32, float16 or bfloat16
    int repeat = 1;                       // forward passes over the same batch (latency of each)
    int topK = 5;
    std::vector<double> mean;             // per feature (last dimension) or per channel (dimension 1)
    std::vector<double> std;
    std::vector<std::string> classNames;  // names of the outputs, by index
    // How probabilities are made from the outputs: "auto" (as the architecture's last layer and
    // the output's width say: see PredictionResult::probabilitiesFrom), "softmax" (one class of
    // several), "sigmoid" (each output its own yes/no: multi-label), "none" (the outputs are values,
    // e.g. a regression's: no probabilities, the top ranked by value).
    std::string probabilities = "auto";
    PredictOptions &onDevice(std::string d) { device = std::move(d); return *this; }
    PredictOptions &normalized(bool v) { normalize = v; return *this; }
    PredictOptions &precision(std::string d) { dtype = std::move(d); return *this; }
    PredictOptions &repeated(int n) { repeat = n; return *this; }
    PredictOptions &top(int k) { topK = k; return *this; }
    PredictOptions &normalization(std::vector<double> m, std::vector<double> s) { mean = std::move(m); std = std::move(s); return *this; }
    PredictOptions &classes(std::vector<std::string> names) { classNames = std::move(names); return *this; }
    PredictOptions &probabilitiesBy(std::string how) { probabilities = std::move(how); return *this; }
};

struct TopClass {
    std::int64_t index = 0;
    std::string label;  // the class name, or "" when the file names none
    double probability = 0;  // NaN when no probabilities were asked for ("none")
    double value = 0;        // the model's output
};

// One sample's outputs: the model's values flattened, their probabilities, the best classes.
struct SampleOutput {
    std::vector<double> logits;
    std::vector<double> probabilities;
    std::vector<TopClass> top;
    std::int64_t argmax = -1;
};

struct PredictionResult {
    std::string device;                      // where it ran ("cpu", "cuda:0")
    bool normalized = false;                 // mean/std were applied
    std::string dtype = "float32";           // what the weights and inputs ran in
    std::vector<std::int64_t> outputShape;   // the model's output, batch first
    std::vector<SampleOutput> outputs;
    // How the probabilities were made from the outputs: "softmax" (logits of several classes),
    // "sigmoid" (one logit: a binary classifier's positive class; or each output, when asked),
    // "exp" (log-probabilities), "as is" (the model ends in Softmax or Sigmoid) or "none" (asked
    // for: the outputs are values, `probabilities` is empty and the top is ranked by value).
    std::string probabilitiesFrom = "softmax";
    double latencyMs = 0;                    // the forward pass, inputs on the device to outputs back
                                             // (the median when it ran more than once)
    std::vector<double> runsMs;              // each forward pass's latency, in order
};

// A model ready to run: weights loaded, eval mode. One caller at a time.
class Predictor {
public:
    virtual ~Predictor() = default;
    // What loading noticed that the user should see (keys ignored, weights cast to float32), then
    // what the last run() noticed about its outputs (a sample's output that is not one score per
    // class, class names that do not count the outputs).
    virtual std::vector<std::string> notes() const = 0;
    // Runs one batch without gradients. Throws std::runtime_error saying what is wrong (input
    // shape, device, a layer refusing its input).
    virtual PredictionResult run(const PredictionInput &input, const PredictOptions &options) = 0;
    // The model with its weights as a TorchScript archive (what torch.jit.save writes), its
    // floating-point parameters and buffers in `dtype` (float32, float16, bfloat16 or float64;
    // cast as Python's Module.to(dtype) casts them, integer ones left alone), or as they are ("").
    virtual std::string torchScriptBytes(const std::string &dtype) const = 0;
};

// Asked between chunks of a long computation (a chunk is 1 Mi elements): true stops it there, and
// the computation throws std::runtime_error ("cancelled"). A job cancelled while it works through
// a tensor of a billion elements so ends within a chunk, not at the tensor's end.
using CancelCheck = std::function<bool()>;

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
    // The same elements exactly, for integer and bool tensors and a quantized tensor's stored
    // integers: uint64 elements come as their bits (read them as std::uint64_t). Throws
    // std::runtime_error for other element types.
    virtual std::vector<std::int64_t> integers(const TensorRef &tensor, std::int64_t first, std::int64_t count) const = 0;
    // The tensor as a file's bytes: .npy (C order; bfloat16 widened to float32, quantized
    // dequantized, sparse densified) or .csv (one row per index of the leading dimensions, values
    // of the last dimension across). Throws std::runtime_error for what the format cannot hold.
    enum class ExportFormat { Npy, Csv };
    // Histogram of the finite values in `bins` bins (quantized dequantized, sparse densified).
    virtual Histogram histogram(const TensorRef &tensor, int bins) const = 0;
    virtual std::string exportBytes(const TensorRef &tensor, ExportFormat format) const = 0;
    // How `b` differs from `a` (same shape; dtypes may differ: both are compared as float64).
    // Throws std::runtime_error for different shapes or unreadable data.
    virtual TensorDiff difference(const TensorRef &a, const TensorRef &b, double atol, double rtol) const = 0;
    // Histogram of b - a over the positions where both are finite (same shape; compared as float64).
    virtual Histogram differenceHistogram(const TensorRef &a, const TensorRef &b, int bins) const = 0;
    // CPU and every CUDA device LibTorch sees; CUDA shown unavailable, with the reason, otherwise.
    virtual std::vector<DeviceInfo> devices() const = 0;
    // The document's weights in the architecture (see architecture.h), on the CPU in eval mode.
    // The document may go away afterwards. Throws std::runtime_error when the weights do not fit
    // the architecture (missing, unexpected, mis-shaped keys listed) or a TorchScript file cannot load.
    virtual std::unique_ptr<Predictor> predictor(const Document &doc, const Architecture &arch) const = 0;
    // statistics(), histogram() and differenceHistogram() that stop when `cancelled` says so
    // (see CancelCheck).
    virtual TensorStats statistics(const TensorRef &tensor, const CancelCheck &cancelled) const = 0;
    virtual Histogram histogram(const TensorRef &tensor, int bins, const CancelCheck &cancelled) const = 0;
    virtual Histogram differenceHistogram(const TensorRef &a, const TensorRef &b, int bins,
                                          const CancelCheck &cancelled) const = 0;
    // values(), integers() and difference() that stop when `cancelled` says so (see CancelCheck):
    // a values page of a huge tensor, or a Compare of two 10-GB files, ends within a chunk once its
    // tab is closed or Cancel pressed, throwing std::runtime_error("cancelled") rather than
    // returning part of a result. The defaults ask only before and after (an implementation that
    // has no chunks to stop between); the compute module asks between its chunks.
    virtual std::vector<double> values(const TensorRef &tensor, std::int64_t first, std::int64_t count, bool raw,
                                       const CancelCheck &cancelled) const
    {
        return askedAround(cancelled, [&] { return values(tensor, first, count, raw); });
    }
    virtual std::vector<std::int64_t> integers(const TensorRef &tensor, std::int64_t first, std::int64_t count,
                                               const CancelCheck &cancelled) const
    {
        return askedAround(cancelled, [&] { return integers(tensor, first, count); });
    }
    virtual TensorDiff difference(const TensorRef &a, const TensorRef &b, double atol, double rtol,
                                  const CancelCheck &cancelled) const
    {
        return askedAround(cancelled, [&] { return difference(a, b, atol, rtol); });
    }
    // A weight merged with a LoRA adapter's factors, as PEFT's merge_and_unload makes it: its bytes
    // in the weight's dtype, contiguous (see loramergecompute.h for the arithmetic). Throws
    // std::runtime_error; the default, for implementations without LibTorch, always does.
    virtual std::vector<std::uint8_t> loraMergedWeight(const LoraMergeStep &step) const
    {
        (void)step;
        throw std::runtime_error("merging a LoRA adapter needs the compute module");
    }

private:
    template <typename F> static auto askedAround(const CancelCheck &cancelled, F &&f) -> decltype(f())
    {
        const auto stop = [&cancelled] {
            if (cancelled && cancelled())
                throw std::runtime_error("cancelled");
        };
        stop();
        auto result = f();
        stop();
        return result;
    }
};

} // namespace ckpt

// The one symbol the module exports; returns a process-wide instance.
extern "C" ckpt::ComputeApi *ckpt_compute_api();
