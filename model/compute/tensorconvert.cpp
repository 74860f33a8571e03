#include "tensorconvert.h"

#include "mappedfile.h"
#include "tensorref.h"

#include <ATen/ATen.h>
#include <cmath>
#include <limits>
#include <vector>
#include <stdexcept>
#include <string>
#include <torch/version.h>

namespace ckpt {

namespace {

// Whether LibTorch has a quantized type for the stored integers (the packed 4- and 2-bit types
// are not read as one value a byte).
bool torchQuantizable(const TensorRef &ref)
{
    return ref.dtype == DType::QInt8 || ref.dtype == DType::QUInt8 || ref.dtype == DType::QInt32;
}

} // namespace

at::Tensor toDenseValues(const TensorRef &ref)
{
    at::Tensor t = toTensor(ref, false);
    if (t.is_sparse() || t.layout() == at::kSparseCsr)
        return t.to_dense();
    if (!ref.quantization)
        return t;
    const auto &q = *ref.quantization;
    // The values are LibTorch's own dequantize() of the stored integers: torch computes them in
    // float32 by formulas that differ by scheme and, per tensor, by the CPU's vector width (its
    // vectorised loop rounds some int32 values otherwise than its scalar one), so only its kernel
    // gives tensor.dequantize()'s bits. The quantized tensor is made contiguous in its suggested
    // memory format, as torch's dequantize() makes it, so each element goes through the same loop.
    if (q.scales && q.zeroPoints && q.scales->isTensor() && q.zeroPoints->isTensor()) {
        const auto axis = q.axis < 0 ? q.axis + t.dim() : q.axis;
        if (axis < 0 || axis >= t.dim())
            throw std::runtime_error("quantization axis " + std::to_string(q.axis) + " is outside the tensor");
        at::Tensor scales = toTensor(*q.scales->tensorRef(), false);
        at::Tensor zeros = toTensor(*q.zeroPoints->tensorRef(), false);
        if (scales.dim() != 1 || zeros.dim() != 1 || scales.numel() != t.size(axis) || zeros.numel() != t.size(axis))
            throw std::runtime_error("quantization has " + std::to_string(scales.numel()) + " scales and " +
                                     std::to_string(zeros.numel()) + " zero points for " +
                                     std::to_string(t.size(axis)) + " channels");
        // Float zero points make torch's per_channel_affine_float_qparams (float32 parameters),
        // integer ones per_channel_affine (float64 scales, int64 zero points).
        const bool floatParams = at::isFloatingType(zeros.scalar_type());
        if (torchQuantizable(ref)) {
            try {
                return at::_make_per_channel_quantized_tensor(t, floatParams ? scales.to(at::kFloat) : scales.to(at::kDouble),
                                                              floatParams ? zeros.to(at::kFloat) : zeros.to(at::kLong), axis)
                    .dequantize();
            } catch (const c10::Error &) {
                // Parameters LibTorch refuses (a zero point out of range): the formula of its loop.
            }
        }
        std::vector<std::int64_t> shape(static_cast<std::size_t>(t.dim()), 1);
        shape[static_cast<std::size_t>(axis)] = -1;
        if (floatParams)  // all in float32
            return (t.to(at::kFloat) - zeros.to(at::kFloat).reshape(shape)) * scales.to(at::kFloat).reshape(shape);
        // (float(value) - zero point) in float32, times the float64 scale, rounded to float32.
        return ((t.to(at::kFloat) - zeros.to(at::kFloat).reshape(shape)).to(at::kDouble) *
                scales.to(at::kDouble).reshape(shape))
            .to(at::kFloat);
    }
    if (torchQuantizable(ref)) {
        try {
            return at::_make_per_tensor_quantized_tensor(t, q.scale, q.zeroPoint).dequantize();
        } catch (const c10::Error &) {
        }
    }
    // torch's scalar loop: (float(value) - float(zero point)) * float(scale), all in float32.
    return (t.to(at::kFloat) - static_cast<float>(q.zeroPoint)) * static_cast<float>(q.scale);
}

void checkSourceIntact(const TensorRef &ref)
{
    if (ref.layout == TensorRef::Layout::SparseCoo || ref.layout == TensorRef::Layout::SparseCsr) {
        for (const auto &part : ref.sparseParts())
            if (part && part->isTensor())
                checkSourceIntact(*part->tensorRef());
        return;
    }
    if (ref.quantization)
        for (const auto *part : {&ref.quantization->scales, &ref.quantization->zeroPoints})
            if (*part && (*part)->isTensor())
                checkSourceIntact(*(*part)->tensorRef());
    // Inline accessors only: this module links its own copy of the format library.
    if (ref.storage && ref.storage->mapping && ref.storage->mapping->truncated())
        throw std::runtime_error("the file " + ref.storage->mapping->path() + " changed or was truncated while open");
}

c10::ScalarType scalarTypeOf(const TensorRef &ref)
{
    switch (ref.dtype) {
    case DType::Float64: return at::kDouble;
    case DType::Float32: return at::kFloat;
    case DType::Float16: return at::kHalf;
    case DType::BFloat16: return at::kBFloat16;
    case DType::Int64: return at::kLong;
    case DType::Int32: return at::kInt;
    case DType::Int16: return at::kShort;
    case DType::Int8: return at::kChar;
    case DType::UInt8: return at::kByte;
    case DType::Bool: return at::kBool;
    case DType::Complex64: return at::kComplexFloat;
    case DType::Complex128: return at::kComplexDouble;
    case DType::QInt8: return at::kChar;
    case DType::QUInt8:
    case DType::QUInt4x2:
    case DType::QUInt2x4: return at::kByte;
    case DType::QInt32: return at::kInt;
    // Newer element types are read through a type of their width and decoded (see decodeNewer).
    case DType::Float8E4M3FN:
    case DType::Float8E5M2: return at::kByte;
    case DType::UInt16: return at::kShort;
    case DType::UInt32: return at::kInt;
    case DType::UInt64: return at::kLong;
    case DType::Complex32: return at::kHalf;
    case DType::Unknown: break;
    }
    throw std::runtime_error("tensor has an unknown element type");
}

namespace {

bool isNewer(DType t)
{
    return t == DType::Float8E4M3FN || t == DType::Float8E5M2 || t == DType::UInt16 || t == DType::UInt32 ||
           t == DType::UInt64 || t == DType::Complex32;
}

// float8_e4m3fn: sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities, S.1111.111 is NaN.
at::Tensor e4m3fnTable()
{
    std::vector<float> v(256);
    for (int b = 0; b < 256; ++b) {
        const int e = (b >> 3) & 0xF, m = b & 7;
        float x = e == 0 ? std::ldexp(static_cast<float>(m) / 8.0f, -6) : std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
        if (e == 15 && m == 7)
            x = std::numeric_limits<float>::quiet_NaN();
        v[static_cast<std::size_t>(b)] = (b & 0x80) ? -x : x;
    }
    return at::tensor(v, at::kFloat);
}

c10::ScalarType decodedType(DType t)
{
    switch (t) {
    case DType::Float8E4M3FN:
    case DType::Float8E5M2: return at::kFloat;
    case DType::UInt16: return at::kInt;
    case DType::Complex32: return at::kComplexFloat;
    default: return at::kLong;
    }
}

// The numbers of an element type LibTorch 1.13 has no scalar type for, from its raw bits: float8 as
// float32, uint16 as int32, uint32 as int64, uint64 as int64 (float64 when a value passes 2^63 - 1),
// complex32 as complex64. Every value is exact except uint64 above 2^53 in the float64 case.
at::Tensor decodeNewer(DType t, const at::Tensor &raw)
{
    switch (t) {
    case DType::Float8E4M3FN: {
        static const at::Tensor table = e4m3fnTable();
        return table.index_select(0, raw.reshape({-1}).to(at::kLong)).reshape(raw.sizes());
    }
    case DType::Float8E5M2:  // the upper byte of a float16
        return (raw.to(at::kInt) * 256).to(at::kShort).view(at::kHalf).to(at::kFloat);
    case DType::UInt16: return raw.to(at::kInt).bitwise_and(0xFFFF);
    case DType::UInt32: return raw.to(at::kLong).bitwise_and(std::int64_t{0xFFFFFFFF});
    case DType::UInt64:
        if (!raw.lt(0).any().item<bool>())
            return raw.clone();
        return raw.to(at::kDouble) + raw.lt(0).to(at::kDouble) * 18446744073709551616.0;
    default: break;
    }
    throw std::runtime_error("internal: no decoder for " + std::string(dtypeName(t)));
}

// toTensor, with the newer element types decoded or (`decode` false) left as their bits.
namespace {
void checkWorkBudget(const TensorRef &ref)
{
    if (const std::string problem = workBudgetProblem(ref); !problem.empty())
        throw std::runtime_error(problem);
}
} // namespace

at::Tensor tensorOf(const TensorRef &ref, bool copy, bool decode)
{
    if (!ref.problem.empty())
        throw std::runtime_error(ref.problem);
    checkWorkBudget(ref);
    if (ref.layout == TensorRef::Layout::Meta)
        throw std::runtime_error("a meta tensor has a shape but no data");
    if (ref.layout == TensorRef::Layout::SparseCoo) {
        at::Tensor indices = tensorOf(*ref.sparseIndices->tensorRef(), copy, true);
        at::Tensor values = tensorOf(*ref.sparseValues->tensorRef(), copy, decode);
        return at::sparse_coo_tensor(indices, values, ref.shape);
    }
    if (ref.layout == TensorRef::Layout::SparseCsr) {
        // As torch.load's _rebuild_sparse_csr_tensor builds it; indices torch checks as it does there.
        at::Tensor crow = tensorOf(*ref.sparseCrowIndices->tensorRef(), copy, true);
        at::Tensor col = tensorOf(*ref.sparseColIndices->tensorRef(), copy, true);
        at::Tensor values = tensorOf(*ref.sparseValues->tensorRef(), copy, decode);
        return at::sparse_csr_tensor(crow, col, values, ref.shape, values.options().layout(at::kSparseCsr));
    }
    const auto type = scalarTypeOf(ref);
    const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
    if (ref.numel() == 0)
        return at::empty(ref.shape, decode && isNewer(ref.dtype) ? options.dtype(decodedType(ref.dtype)) : options);
    if (!ref.storage || !ref.storage->resolved)
        throw std::runtime_error("tensor storage is not available");
    if (const std::int64_t per = packedElementsPerByte(ref.dtype); per > 1) {
        // quint4x2, quint2x4: `per` elements to a byte, lowest bits first, one after another over
        // the whole tensor (as ATen's sub-byte dequantize reads them): unpacked to one a byte.
        const auto bytes = ref.spannedBytes();  // validated: contiguous, within the record
        const std::int64_t n = ref.numel();
        if (bytes.size() != static_cast<std::size_t>(packedDataBytes(ref.dtype, n)))
            throw std::runtime_error("tensor extent does not fit its storage");
        const at::Tensor packed =
            at::from_blob(const_cast<std::uint8_t *>(bytes.data()), {static_cast<std::int64_t>(bytes.size())}, options);
        const int bits = static_cast<int>(8 / per);
        std::vector<at::Tensor> parts;
        for (int k = 0; k < per; ++k)
            parts.push_back(packed.bitwise_right_shift(k * bits).bitwise_and((1 << bits) - 1));
        return at::stack(parts, 1).reshape({-1}).slice(0, 0, n).reshape(ref.shape).contiguous();
    }
    std::int64_t extent = 0;
    if (!ref.extentElements(extent) || !ref.fitsStorage(extent))
        throw std::runtime_error("tensor extent does not fit its storage");
    // from_blob never writes through the pointer here: the view is read-only by contract. The
    // tensor holds the storage's bytes (an inflated record) until its last user lets it go.
    const HeldBytes held = ref.storage->bulkData();
    auto *base = const_cast<std::uint8_t *>(held.data()) + static_cast<std::size_t>(ref.storageOffset) * dtypeSize(ref.dtype);
    const auto keep = [keep = held.keep](void *) {};
    if (ref.dtype == DType::Complex32) {  // pairs of float16: real, imaginary
        auto shape = ref.shape, strides = ref.strides;
        for (auto &st : strides)
            st *= 2;
        shape.push_back(2);
        strides.push_back(1);
        return at::view_as_complex(at::from_blob(base, shape, strides, options).to(at::kFloat).contiguous());
    }
    at::Tensor view = at::from_blob(base, ref.shape, ref.strides, keep, options);
    if (decode && isNewer(ref.dtype))
        return decodeNewer(ref.dtype, view);  // always a copy
    if (!copy)
        return view;
    return view.clone();  // keeps the strides when they are dense, as torch.load's tensor has them
}

} // namespace

at::Tensor toTensor(const TensorRef &ref, bool copy) { return tensorOf(ref, copy, true); }

at::Tensor toIntegers(const TensorRef &ref)
{
    const bool stored = ref.quantization != nullptr;  // a quantized tensor's integers, as stored
    if (!dtypeIsIntegral(ref.dtype) && ref.dtype != DType::Bool && !stored)
        throw std::runtime_error("a " + std::string(dtypeName(ref.dtype)) + " tensor's elements are not integers");
    // uint64 undecoded: its bits, as an int64 tensor (decoding would go through float64 past 2^63).
    at::Tensor t = tensorOf(ref, false, ref.dtype != DType::UInt64);
    return t.is_sparse() || t.layout() == at::kSparseCsr ? t.to_dense() : t;
}

} // namespace ckpt
