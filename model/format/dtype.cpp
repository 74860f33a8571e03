#include "dtype.h"

#include <array>
#include <utility>

namespace ckpt {

namespace {
struct DTypeInfo {
    DType type;
    std::string_view name;
    std::size_t size;
    std::string_view storage;      // typed storage class name
    std::string_view safetensors;  // safetensors tag
};

constexpr std::array<DTypeInfo, 23> kInfo{{
    {DType::Float64, "float64", 8, "DoubleStorage", "F64"},
    {DType::Float32, "float32", 4, "FloatStorage", "F32"},
    {DType::Float16, "float16", 2, "HalfStorage", "F16"},
    {DType::BFloat16, "bfloat16", 2, "BFloat16Storage", "BF16"},
    {DType::Int64, "int64", 8, "LongStorage", "I64"},
    {DType::Int32, "int32", 4, "IntStorage", "I32"},
    {DType::Int16, "int16", 2, "ShortStorage", "I16"},
    {DType::Int8, "int8", 1, "CharStorage", "I8"},
    {DType::UInt8, "uint8", 1, "ByteStorage", "U8"},
    {DType::Bool, "bool", 1, "BoolStorage", "BOOL"},
    {DType::Complex64, "complex64", 8, "ComplexFloatStorage", "C64"},
    {DType::Complex128, "complex128", 16, "ComplexDoubleStorage", ""},
    {DType::QUInt8, "quint8", 1, "QUInt8Storage", ""},
    {DType::QInt8, "qint8", 1, "QInt8Storage", ""},
    {DType::QInt32, "qint32", 4, "QInt32Storage", ""},
    {DType::QUInt4x2, "quint4x2", 1, "QUInt4x2Storage", ""},
    {DType::QUInt2x4, "quint2x4", 1, "QUInt2x4Storage", ""},
    {DType::Float8E4M3FN, "float8_e4m3fn", 1, "", "F8_E4M3"},
    {DType::Float8E5M2, "float8_e5m2", 1, "", "F8_E5M2"},
    {DType::UInt16, "uint16", 2, "", "U16"},
    {DType::UInt32, "uint32", 4, "", "U32"},
    {DType::UInt64, "uint64", 8, "", "U64"},
    {DType::Complex32, "complex32", 4, "", ""},
}};

const DTypeInfo *info(DType t)
{
    for (const auto &i : kInfo)
        if (i.type == t)
            return &i;
    return nullptr;
}
} // namespace

std::string_view dtypeName(DType t)
{
    const auto *i = info(t);
    return i ? i->name : std::string_view("unknown");
}

std::size_t dtypeSize(DType t)
{
    const auto *i = info(t);
    return i ? i->size : 0;
}

bool dtypeIsFloating(DType t)
{
    return t == DType::Float64 || t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16 ||
           t == DType::Float8E4M3FN || t == DType::Float8E5M2;
}

bool dtypeIsComplex(DType t) { return t == DType::Complex64 || t == DType::Complex128 || t == DType::Complex32; }

bool dtypeIsIntegral(DType t)
{
    switch (t) {
    case DType::Int64:
    case DType::Int32:
    case DType::Int16:
    case DType::Int8:
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64: return true;
    default: return false;
    }
}

std::optional<DType> dtypeFromStorageClass(std::string_view name)
{
    // "cuda.FloatStorage" (old CUDA storages) names the same element type.
    if (name.starts_with("cuda."))
        name.remove_prefix(5);
    for (const auto &i : kInfo)
        if (!i.storage.empty() && i.storage == name)
            return i.type;
    return std::nullopt;
}

std::optional<DType> dtypeFromTorchName(std::string_view name)
{
    static constexpr std::array<std::pair<std::string_view, DType>, 15> aliases{{
        {"chalf", DType::Complex32},
        {"float", DType::Float32},   {"double", DType::Float64}, {"half", DType::Float16},
        {"long", DType::Int64},      {"int", DType::Int32},      {"short", DType::Int16},
        {"cfloat", DType::Complex64}, {"cdouble", DType::Complex128}, {"float32", DType::Float32},
        {"float64", DType::Float64}, {"float16", DType::Float16}, {"int64", DType::Int64},
        {"int32", DType::Int32},     {"int16", DType::Int16},
    }};
    for (const auto &[alias, type] : aliases)
        if (alias == name)
            return type;
    for (const auto &i : kInfo)
        if (i.name == name)
            return i.type;
    return std::nullopt;
}

std::string_view dtypeStorageClass(DType t)
{
    for (const auto &i : kInfo)
        if (i.type == t)
            return i.storage;
    return {};
}

std::string_view dtypeSafetensorsTag(DType t)
{
    for (const auto &i : kInfo)
        if (i.type == t)
            return i.safetensors;
    return {};
}

std::optional<DType> dtypeFromSafetensors(std::string_view tag)
{
    for (const auto &i : kInfo)
        if (!i.safetensors.empty() && i.safetensors == tag)
            return i.type;
    return std::nullopt;
}

} // namespace ckpt
