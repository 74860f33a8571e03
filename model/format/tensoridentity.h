#pragma once

#include "tensorref.h"

#include <compare>
#include <cstdint>
#include <optional>
#include <vector>

namespace ckpt {

// What makes two tensors of a file one tensor to PyTorch: the same storage, seen from the same
// offset with the same shape, strides and dtype. A tied weight (`head.weight = embed.weight`) is
// written so by torch.save: its state_dict() detaches each name apart, but every name views the one
// storage alike. Views that differ (a split qkv, a transpose) are different tensors.
struct TensorIdentity {
    const StorageRef *storage = nullptr;
    std::int64_t storageOffset = 0;
    std::vector<std::int64_t> shape;
    std::vector<std::int64_t> strides;
    DType dtype = DType::Unknown;
    auto operator<=>(const TensorIdentity &) const = default;
};

// The identity of a dense tensor on a storage; nothing for sparse, meta and quantized tensors
// (made of several parts, or with their own scale), and for a tensor without a storage.
inline std::optional<TensorIdentity> tensorIdentity(const TensorRef &ref)
{
    if (ref.layout != TensorRef::Layout::Strided || ref.quantization || !ref.storage)
        return std::nullopt;
    return TensorIdentity{ref.storage.get(), ref.storageOffset, ref.shape, ref.strides, ref.dtype};
}

} // namespace ckpt
