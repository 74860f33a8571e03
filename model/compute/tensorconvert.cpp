#include "tensorconvert.h"

#include "mappedfile.h"
#include "tensorref.h"

#include <ATen/ATen.h>
#include <stdexcept>
#include <string>
#include <torch/version.h>

namespace ckpt {

at::Tensor toDenseValues(const TensorRef &ref)
{
    at::Tensor t = toTensor(ref, false);
    if (t.is_sparse())
        return t.to_dense();
    if (!ref.quantization)
        return t;
    const auto &q = *ref.quantization;
    at::Tensor raw = t.to(at::kDouble);
    if (q.scales && q.zeroPoints && q.scales->isTensor() && q.zeroPoints->isTensor()) {
        const auto axis = q.axis < 0 ? q.axis + t.dim() : q.axis;
        if (axis < 0 || axis >= t.dim())
            throw std::runtime_error("quantization axis " + std::to_string(q.axis) + " is outside the tensor");
        std::vector<std::int64_t> shape(static_cast<std::size_t>(t.dim()), 1);
        shape[static_cast<std::size_t>(axis)] = -1;
        at::Tensor scales = toTensor(*q.scales->tensorRef(), false).to(at::kDouble).reshape(shape);
        at::Tensor zeros = toTensor(*q.zeroPoints->tensorRef(), false).to(at::kDouble).reshape(shape);
        return ((raw - zeros) * scales).to(at::kFloat);
    }
    return ((raw - static_cast<double>(q.zeroPoint)) * q.scale).to(at::kFloat);
}

void checkSourceIntact(const TensorRef &ref)
{
    if (ref.layout == TensorRef::Layout::SparseCoo) {
        for (const auto *part : {&ref.sparseIndices, &ref.sparseValues})
            if (*part && (*part)->isTensor())
                checkSourceIntact(*(*part)->tensorRef());
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
    case DType::Float8E4M3FN:
    case DType::Float8E5M2:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
    case DType::Complex32:
        throw std::runtime_error("element type " + std::string(dtypeName(ref.dtype)) + " is not supported by LibTorch " +
                                 TORCH_VERSION);
    case DType::Unknown: break;
    }
    throw std::runtime_error("tensor has an unknown element type");
}

at::Tensor toTensor(const TensorRef &ref, bool copy)
{
    if (!ref.problem.empty())
        throw std::runtime_error(ref.problem);
    if (ref.layout == TensorRef::Layout::Meta)
        throw std::runtime_error("a meta tensor has a shape but no data");
    if (ref.layout == TensorRef::Layout::SparseCoo) {
        at::Tensor indices = toTensor(*ref.sparseIndices->tensorRef(), copy);
        at::Tensor values = toTensor(*ref.sparseValues->tensorRef(), copy);
        return at::sparse_coo_tensor(indices, values, ref.shape);
    }
    const auto type = scalarTypeOf(ref);
    const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
    if (ref.numel() == 0)
        return at::empty(ref.shape, options);
    if (!ref.storage || !ref.storage->resolved)
        throw std::runtime_error("tensor storage is not available");
    std::int64_t extent = 0;
    if (!ref.extentElements(extent) || !ref.fitsStorage(extent))
        throw std::runtime_error("tensor extent does not fit its storage");
    // from_blob never writes through the pointer here: the view is read-only by contract.
    auto *base = const_cast<std::uint8_t *>(ref.storage->data().data()) +
                 static_cast<std::size_t>(ref.storageOffset) * dtypeSize(ref.dtype);
    at::Tensor view = at::from_blob(base, ref.shape, ref.strides, options);
    if (!copy)
        return view;
    return view.clone();  // keeps the strides when they are dense, as torch.load's tensor has them
}

} // namespace ckpt
