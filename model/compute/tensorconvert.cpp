#include "tensorconvert.h"

#include "tensorref.h"

#include <ATen/ATen.h>
#include <stdexcept>

namespace ckpt {

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
    case DType::Unknown: break;
    }
    throw std::runtime_error("tensor has an unknown element type");
}

at::Tensor toTensor(const TensorRef &ref, bool copy)
{
    if (!ref.problem.empty())
        throw std::runtime_error(ref.problem);
    const auto type = scalarTypeOf(ref);
    const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
    if (ref.numel() == 0)
        return at::empty(ref.shape, options);
    if (!ref.storage || !ref.storage->resolved)
        throw std::runtime_error("tensor storage is not available");
    std::int64_t extent = 0;
    if (!ref.extentElements(extent) || extent > ref.storage->availableElements())
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
