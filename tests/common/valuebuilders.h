#pragma once
// Values built by hand for the format layer's tests: a tensor of a shape (no bytes behind it), a
// dict of entries with its children noted as a pickle's would be, a string.
#include "tensorref.h"
#include "value.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace testvalues {

inline ckpt::ValuePtr tensor(ckpt::DType dtype, std::vector<std::int64_t> shape)
{
    auto ref = std::make_shared<ckpt::TensorRef>();
    ref->dtype = dtype;
    ref->shape = std::move(shape);
    return ckpt::Value::tensor(ref);
}

inline ckpt::ValuePtr tensor(std::vector<std::int64_t> shape) { return tensor(ckpt::DType::Float32, std::move(shape)); }

inline ckpt::ValuePtr dictOf(std::vector<std::pair<ckpt::ValuePtr, ckpt::ValuePtr>> entries)
{
    auto d = ckpt::Value::dict();
    for (auto &[k, v] : entries) {
        d->noteChild(k);
        d->noteChild(v);
        d->entries().push_back({k, v});
    }
    return d;
}

inline ckpt::ValuePtr str(const std::string &s) { return ckpt::Value::string(s); }

} // namespace testvalues
