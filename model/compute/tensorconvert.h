#pragma once

// LibTorch side of tensor references. Include only from compute sources and tests: it pulls ATen.
#include <ATen/core/Tensor.h>

// Exported from the compute module for the tests and future in-module callers.
#define CKPT_COMPUTE_EXPORT __attribute__((visibility("default")))

namespace ckpt {

struct TensorRef;

// The tensor's data as a CPU at::Tensor with its shape and strides. With `copy` false the tensor
// views the file's mapping and must not outlive the Document; with `copy` true it owns its data.
// Element types LibTorch 1.13 lacks come decoded into a wider one, always copied: float8 as float32,
// uint16 as int32, uint32 and uint64 as int64 (uint64 as float64 when a value passes 2^63 - 1),
// complex32 as complex64.
// Throws std::runtime_error when the reference's extent does not fit its storage.
CKPT_COMPUTE_EXPORT at::Tensor toTensor(const TensorRef &ref, bool copy = true);

// The elements of an integer or bool tensor, or a quantized tensor's stored integers, exactly, as a
// dense tensor of an integer or bool type that holds them, viewing the file's mapping where it can
// (do not let it outlive the Document): convert what you read with .to(at::kLong). uint64
// elements come as their bits in int64 (read them as std::uint64_t). Throws std::runtime_error for
// other element types.
CKPT_COMPUTE_EXPORT at::Tensor toIntegers(const TensorRef &ref);

// The numbers a person means by the tensor, as a dense CPU tensor: quantized tensors dequantized
// (float), sparse tensors densified, everything else as toTensor. Throws for meta tensors.
CKPT_COMPUTE_EXPORT at::Tensor toDenseValues(const TensorRef &ref);

// Throws std::runtime_error ("the file PATH changed or was truncated while open") when the tensor's
// bytes (or its sparse or quantization parts') view a file that was truncated while mapped: values
// read since may be zeros. Call after the data were consumed, before handing results out.
CKPT_COMPUTE_EXPORT void checkSourceIntact(const TensorRef &ref);

// LibTorch scalar type a checkpoint dtype's bits are read as (quantized storages map to their raw
// integer type, the newer types to one of their width).
CKPT_COMPUTE_EXPORT c10::ScalarType scalarTypeOf(const TensorRef &ref);

} // namespace ckpt
