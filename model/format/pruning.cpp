#include "pruning.h"

#include "dtypecast.h"
#include "error.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>

namespace ckpt {

namespace {

constexpr std::string_view kOrig = "_orig";
constexpr std::string_view kMask = "_mask";
constexpr std::size_t kNamesShown = 8;

template <typename Name, typename Shape>
std::vector<PrunedParameter> findPairs(std::size_t count, Name nameAt, Shape shapeAt)
{
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < count; ++i)
        index.emplace(nameAt(i), i);
    std::vector<PrunedParameter> out;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string &orig = nameAt(i);
        // The local name ends in _orig and is more than that ("weight_orig", not a module "x._orig").
        const auto dot = orig.rfind('.');
        const std::size_t local = dot == std::string::npos ? 0 : dot + 1;
        if (!orig.ends_with(kOrig) || orig.size() - local <= kOrig.size())
            continue;
        const std::string name = orig.substr(0, orig.size() - kOrig.size());
        const auto mask = index.find(name + std::string(kMask));
        // Beside X itself the pair is not torch's pruning (prune.remove leaves X alone).
        if (mask == index.end() || index.contains(name) || shapeAt(mask->second) != shapeAt(i))
            continue;
        out.push_back({name, i, mask->second});
    }
    return out;
}

std::string listed(const std::vector<std::string> &names)
{
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < kNamesShown; ++i)
        s += (i ? ", " : "") + names[i];
    if (names.size() > kNamesShown)
        s += " and " + std::to_string(names.size() - kNamesShown) + " more";
    return s;
}

// x * y of two unaligned elements of type T, written to `out`.
template <typename T>
void multiplyAs(const std::uint8_t *a, const std::uint8_t *b, std::uint8_t *out)
{
    T x, y;
    std::memcpy(&x, a, sizeof x);
    std::memcpy(&y, b, sizeof y);
    const T r = x * y;
    std::memcpy(out, &r, sizeof r);
}

// One product as torch's CPU kernel computes it for the dtype.
void multiply(const std::uint8_t *a, const std::uint8_t *b, std::uint8_t *out, DType t)
{
    switch (t) {
    case DType::Float32: return multiplyAs<float>(a, b, out);
    case DType::Float64: return multiplyAs<double>(a, b, out);
    case DType::Float16:
    case DType::BFloat16: {
        std::uint16_t x, y;
        std::memcpy(&x, a, 2);
        std::memcpy(&y, b, 2);
        const bool half = t == DType::Float16;
        const float r = half ? halfBitsToFloat(x) * halfBitsToFloat(y) : bfloat16BitsToFloat(x) * bfloat16BitsToFloat(y);
        const std::uint16_t bits = half ? floatToHalfBits(r) : floatToBFloat16Bits(r);
        std::memcpy(out, &bits, 2);
        return;
    }
    default: break;
    }
}

} // namespace

std::vector<PrunedParameter> prunedParameters(const std::vector<NamedTensor> &tensors)
{
    return findPairs(
        tensors.size(), [&](std::size_t i) -> const std::string & { return tensors[i].name; },
        [&](std::size_t i) { return tensors[i].ref().shape; });
}

std::vector<PrunedParameter> prunedParameters(const std::vector<std::pair<std::string, ValuePtr>> &tensors)
{
    return findPairs(
        tensors.size(), [&](std::size_t i) -> const std::string & { return tensors[i].first; },
        [&](std::size_t i) {
            const auto &v = tensors[i].second;
            return v && v->isTensor() ? v->tensorRef()->shape : std::vector<std::int64_t>{-1};
        });
}

std::vector<std::string> pruningMethods(const Document &doc)
{
    std::vector<std::string> out;
    for (const auto &g : doc.globals)
        if (g.module == "torch.nn.utils.prune" && std::find(out.begin(), out.end(), g.qualname) == out.end())
            out.push_back(g.qualname);
    return out;
}

std::string pruningSummary(const Document &doc)
{
    if (!doc.hasStateDict)
        return {};
    const auto pruned = prunedParameters(doc.stateDict);
    if (pruned.empty())
        return {};
    std::vector<std::string> names;
    for (const auto &p : pruned)
        names.push_back(p.name);
    std::string s = "pruned with torch.nn.utils.prune: " + std::to_string(pruned.size()) +
                    (pruned.size() == 1 ? " parameter (" : " parameters (") + listed(names) + ")";
    // A full model pickles its pruning hooks: torch's own classes, which need no code of the user's
    // but which torch.load(weights_only=True) refuses, as it refuses the modules.
    if (const auto methods = pruningMethods(doc); !methods.empty())
        s += ", methods " + listed(methods) + " (torch's own classes, pickled as the modules' hooks; "
             "torch.load(weights_only=True) of PyTorch >= 2.6 refuses them)";
    return s + "; each is stored as X_orig and X_mask, and the model computes X = X_orig * X_mask (prune.remove, "
               "or ckpt convert --apply-pruning, makes that permanent)";
}

std::vector<NamedTensor> effectiveNames(const std::vector<NamedTensor> &tensors)
{
    const auto pruned = prunedParameters(tensors);
    if (pruned.empty())
        return tensors;
    std::map<std::size_t, std::string> renamed;
    std::set<std::size_t> masks;
    for (const auto &p : pruned) {
        renamed[p.orig] = p.name;
        masks.insert(p.mask);
    }
    std::vector<NamedTensor> out;
    out.reserve(tensors.size() - masks.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (masks.contains(i))
            continue;
        out.push_back(tensors[i]);
        if (auto it = renamed.find(i); it != renamed.end())
            out.back().name = it->second;
    }
    return out;
}

std::vector<std::optional<std::int64_t>> maskedCounts(const std::vector<NamedTensor> &tensors,
                                                      const std::vector<PrunedParameter> &pruned)
{
    std::vector<std::optional<std::int64_t>> out(pruned.size());
    std::uint64_t total = 0;
    for (const auto &p : pruned)
        total += static_cast<std::uint64_t>(std::max<std::int64_t>(0, tensors[p.mask].ref().nbytes()));
    if (total > kCheapMaskBytes)
        return out;
    for (std::size_t k = 0; k < pruned.size(); ++k) {
        const TensorRef &m = tensors[pruned[k].mask].ref();
        const std::size_t es = dtypeSize(m.dtype);
        if (m.layout != TensorRef::Layout::Strided || m.quantization || !m.isContiguous() || !m.problem.empty() ||
            (m.dtype != DType::Float32 && m.dtype != DType::Float64 && m.dtype != DType::Float16 &&
             m.dtype != DType::BFloat16))
            continue;
        HeldBytes bytes;
        try {
            bytes = m.spannedBytes();
        } catch (const std::exception &) {
            continue;  // a record that cannot be inflated: no count, the listing goes on
        }
        if (m.numel() < 0 || bytes.size() != static_cast<std::size_t>(m.numel()) * es)
            continue;
        // A floating zero, +0 or -0: every bit but the sign clear (little-endian, sign in the last byte).
        std::int64_t zeros = 0;
        for (std::size_t i = 0; i < bytes.size(); i += es) {
            bool zero = (bytes[i + es - 1] & 0x7F) == 0;
            for (std::size_t b = 0; zero && b + 1 < es; ++b)
                zero = bytes[i + b] == 0;
            zeros += zero;
        }
        out[k] = zeros;
    }
    return out;
}

std::vector<std::uint8_t> maskedBytes(const TensorRef &orig, const TensorRef &mask, const std::string &name)
{
    const auto refuse = [&name](const std::string &why) {
        return FormatError("pruned parameter " + name + ": " + why + "; it cannot be pruned here (apply prune.remove "
                                                                     "in Python instead)");
    };
    if (orig.layout != TensorRef::Layout::Strided || mask.layout != TensorRef::Layout::Strided || orig.quantization ||
        mask.quantization)
        throw refuse("X_orig or X_mask is not a dense tensor");
    if (orig.dtype != mask.dtype)
        throw refuse(name + "_orig is " + std::string(dtypeName(orig.dtype)) + " but " + name + "_mask is " +
                     std::string(dtypeName(mask.dtype)));
    if (orig.dtype != DType::Float32 && orig.dtype != DType::Float64 && orig.dtype != DType::Float16 &&
        orig.dtype != DType::BFloat16)
        throw refuse("its type " + std::string(dtypeName(orig.dtype)) + " is not float16, bfloat16, float32 or float64");
    if (orig.shape != mask.shape)
        throw refuse("X_orig is " + shapeText(orig.shape) + " but X_mask is " + shapeText(mask.shape));
    if (!orig.problem.empty() || !mask.problem.empty())
        throw refuse(!orig.problem.empty() ? orig.problem : mask.problem);
    if (!orig.isContiguous() || !mask.isContiguous())
        throw refuse("X_orig or X_mask is not stored contiguously");
    const std::size_t es = dtypeSize(orig.dtype);
    const std::int64_t n = orig.numel();
    const auto a = orig.spannedBytes(), b = mask.spannedBytes();
    if (n < 0 || a.size() != static_cast<std::size_t>(n) * es || b.size() != a.size())
        throw refuse("its data does not fit its storage");
    std::vector<std::uint8_t> out(a.size());
    for (std::size_t i = 0; i < out.size(); i += es)
        multiply(a.data() + i, b.data() + i, out.data() + i, orig.dtype);
    return out;
}

std::vector<std::string> applyPruning(std::vector<std::pair<std::string, ValuePtr>> &tensors,
                                      std::vector<std::string> *dropped)
{
    const auto pruned = prunedParameters(tensors);
    std::map<std::size_t, std::pair<std::string, ValuePtr>> made;
    std::set<std::size_t> masks;
    std::vector<std::string> names;
    for (const auto &p : pruned) {
        const TensorRef &orig = *tensors[p.orig].second->tensorRef();
        auto bytes = std::make_shared<std::vector<std::uint8_t>>(
            maskedBytes(orig, *tensors[p.mask].second->tensorRef(), p.name));
        auto storage = std::make_shared<StorageRef>();
        storage->key = (orig.storage ? orig.storage->key : std::string()) + "/pruned";
        storage->dtype = orig.dtype;
        storage->location = orig.storage ? orig.storage->location : std::string("cpu");
        storage->setBytes({bytes->data(), bytes->size()});
        storage->keepAlive = bytes;
        storage->declaredNumel = orig.numel();
        storage->byteSize = bytes->size();
        storage->resolved = true;
        // prune.remove keeps X_orig's Parameter (and its requires_grad) under the name X.
        auto ref = std::make_shared<TensorRef>(orig);
        ref->storage = storage;
        ref->storageOffset = 0;
        ref->strides.assign(ref->shape.size(), 1);
        for (std::size_t d = ref->shape.size(); d-- > 1;)
            ref->strides[d - 1] = ref->strides[d] * std::max<std::int64_t>(1, ref->shape[d]);
        made[p.orig] = {p.name, Value::tensor(ref)};
        masks.insert(p.mask);
        names.push_back(p.name);
        if (dropped)
            dropped->push_back(tensors[p.mask].first);
    }
    if (pruned.empty())
        return names;
    std::vector<std::pair<std::string, ValuePtr>> out;
    out.reserve(tensors.size() - masks.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (masks.contains(i))
            continue;
        auto it = made.find(i);
        out.push_back(it == made.end() ? std::move(tensors[i]) : std::move(it->second));
    }
    tensors = std::move(out);
    return names;
}

} // namespace ckpt
