#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ckpt {

// Element types a checkpoint's storages can hold, named as PyTorch prints them (without `torch.`).
enum class DType {
    Unknown,
    Float64,
    Float32,
    Float16,
    BFloat16,
    Int64,
    Int32,
    Int16,
    Int8,
    UInt8,
    Bool,
    Complex64,
    Complex128,
    QUInt8,
    QInt8,
    QInt32,
    QUInt4x2,
    QUInt2x4,
    // Newer types (torch >= 2.1 UntypedStorage, safetensors): listed and shown, not all computable.
    Float8E4M3FN,
    Float8E5M2,
    UInt16,
    UInt32,
    UInt64,
    Complex32,
};

// "float32", "bfloat16", "int64", "bool", ... ("unknown" for Unknown).
std::string_view dtypeName(DType t);
// Size of one element in bytes; 0 for Unknown.
std::size_t dtypeSize(DType t);
bool dtypeIsFloating(DType t);
bool dtypeIsComplex(DType t);
// Signed and unsigned integers, int8 to uint64 (not bool, not the quantized types).
bool dtypeIsIntegral(DType t);
// Typed storage class name ("FloatStorage"); empty when torch 1.x has none for the type.
std::string_view dtypeStorageClass(DType t);
// safetensors dtype tag ("F32"); empty when the format has none.
std::string_view dtypeSafetensorsTag(DType t);
// From a storage class name ("FloatStorage", "HalfStorage", "cuda.FloatStorage" ...).
std::optional<DType> dtypeFromStorageClass(std::string_view name);
// From a dtype global's name inside `torch` ("float16", "half", "bfloat16", "long" ...).
std::optional<DType> dtypeFromTorchName(std::string_view name);
// From a safetensors dtype tag ("F32", "BF16", "I64", "BOOL" ...).
std::optional<DType> dtypeFromSafetensors(std::string_view tag);

} // namespace ckpt
