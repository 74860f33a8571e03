#include "tensorref.h"

#include "error.h"
#include "mappedfile.h"

#include <algorithm>
#include <mutex>

namespace ckpt {

namespace {
std::string elementLimitText(const std::vector<std::int64_t> &shape, std::int64_t n)
{
    return "shape " + shapeText(shape) + " has " + std::to_string(n) + " elements, past the limit of " +
           std::to_string(TensorLimits::kMaxElements) + " (2^48) elements a tensor";
}
} // namespace

// Bytes produced on use. Holders share one buffer; the Lazy only watches it (weak), so it is
// freed when the last holder goes and produced again if asked for later. data() pins it.
struct StorageRef::Lazy {
    std::mutex mutex;
    std::function<std::shared_ptr<const std::vector<std::uint8_t>>()> load;
    std::weak_ptr<const std::vector<std::uint8_t>> held;
    std::shared_ptr<const std::vector<std::uint8_t>> pinned;  // once data() was asked for, or produced twice
    int loads = 0;
    Reuse reuse = Reuse::KeepWhenProducedTwice;
};

void StorageRef::setBytes(std::span<const std::uint8_t> bytes)
{
    m_bytes = bytes;
    m_lazy.reset();
    byteSize = bytes.size();
    resolved = true;
}

void StorageRef::noteMapping(const std::shared_ptr<const MappedFile> &file)
{
    if (!file || m_lazy || m_bytes.empty())
        return;
    const auto all = file->bytes();
    if (m_bytes.data() >= all.data() && m_bytes.data() + m_bytes.size() <= all.data() + all.size())
        mapping = file;
}

void StorageRef::setLoader(std::uint64_t size, std::function<std::shared_ptr<const std::vector<std::uint8_t>>()> load,
                           Reuse reuse)
{
    m_bytes = {};
    m_lazy = std::make_shared<Lazy>();
    m_lazy->load = std::move(load);
    m_lazy->reuse = reuse;
    byteSize = size;
    resolved = true;
}

HeldBytes StorageRef::hold() const
{
    return produce(true);
}

HeldBytes StorageRef::produce(bool counted) const
{
    if (!resolved)
        throw FormatError(problem.empty() ? "storage '" + key + "' is not available" : problem);
    if (!m_lazy)
        return {m_bytes, keepAlive ? keepAlive : std::shared_ptr<const void>(mapping)};
    std::lock_guard lock(m_lazy->mutex);
    auto owned = m_lazy->pinned ? m_lazy->pinned : m_lazy->held.lock();
    if (!owned) {
        owned = m_lazy->load();
        if (!owned || owned->size() != byteSize)
            throw FormatError("storage '" + key + "' did not produce its " + std::to_string(byteSize) + " bytes");
        m_lazy->held = owned;
        // A storage asked for again after it was let go (many tensors viewing one record, read
        // apart) is kept from its second production on: inflating it once per view would make a
        // small file of 100,000 views of one 2 GiB record cost 100,000 inflations. A storage read
        // once (the usual pass, a tensor to a storage) is still let go after its use, and so is one
        // read once more by a look-ahead (a plan's count of a cast, then the write).
        if (counted && ++m_lazy->loads >= 2 && m_lazy->reuse == Reuse::KeepWhenProducedTwice)
            m_lazy->pinned = owned;
    }
    return {{owned->data(), owned->size()}, owned};
}

std::span<const std::uint8_t> StorageRef::data() const
{
    auto held = hold();
    if (m_lazy) {
        std::lock_guard lock(m_lazy->mutex);
        if (!m_lazy->pinned)
            m_lazy->pinned = std::static_pointer_cast<const std::vector<std::uint8_t>>(held.keep);
    }
    return held.bytes;
}

HeldBytes StorageRef::bulkData() const
{
    if (mapping)
        mapping->setAccess(MappedFile::Access::Normal);
    return hold();
}

HeldBytes StorageRef::lookAhead() const
{
    if (mapping)
        mapping->setAccess(MappedFile::Access::Normal);
    return produce(false);
}

std::int64_t StorageRef::availableElements() const
{
    const auto size = dtypeSize(dtype);
    if (!resolved || size == 0)
        return 0;
    return static_cast<std::int64_t>(byteSize / size);
}

std::int64_t TensorRef::numel() const
{
    std::int64_t n = 1;
    for (auto d : shape)
        if (__builtin_mul_overflow(n, d, &n))
            return -1;
    return n;
}

std::vector<ValuePtr> TensorRef::sparseParts() const
{
    if (layout == Layout::SparseCoo)
        return {sparseIndices, sparseValues};
    if (layout == Layout::SparseCsr)
        return {sparseCrowIndices, sparseColIndices, sparseValues};
    return {};
}

std::int64_t TensorRef::nbytes() const
{
    if (layout == Layout::SparseCoo || layout == Layout::SparseCsr) {
        std::int64_t total = 0;
        for (const auto &part : sparseParts())
            if (part && part->isTensor())
                total += std::max<std::int64_t>(0, part->tensorRef()->nbytes());
        return total;
    }
    std::int64_t n = numel();
    std::int64_t b = 0;
    if (n < 0 || __builtin_mul_overflow(n, static_cast<std::int64_t>(dtypeSize(dtype)), &b))
        return -1;
    if (const std::int64_t per = packedElementsPerByte(dtype); per > 1 && !shape.empty()) {
        // torch allocates each row of a packed tensor apart: rows * ceil(columns / per byte).
        const std::int64_t columns = shape.back();
        return columns == 0 ? 0 : n / columns * ((columns + per - 1) / per);
    }
    return b;
}

std::int64_t packedElementsPerByte(DType t)
{
    return t == DType::QUInt4x2 ? 2 : t == DType::QUInt2x4 ? 4 : 1;
}

std::int64_t packedDataBytes(DType t, std::int64_t numel)
{
    const std::int64_t per = packedElementsPerByte(t);
    return numel <= 0 ? 0 : numel / per + (numel % per != 0);
}

std::string TensorRef::device() const
{
    if (layout == Layout::Meta)
        return "meta";
    if ((layout == Layout::SparseCoo || layout == Layout::SparseCsr) && sparseValues && sparseValues->tensorRef())
        return sparseValues->tensorRef()->device();
    return storage && !storage->location.empty() ? storage->location : std::string("cpu");
}

bool TensorRef::isContiguous() const
{
    if (shape.size() != strides.size())
        return false;
    std::int64_t expected = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        if (shape[i] == 1)
            continue;
        if (strides[i] != expected || __builtin_mul_overflow(expected, shape[i], &expected))
            return false;
    }
    return true;
}

bool TensorRef::extentElements(std::int64_t &out) const
{
    out = 0;
    if (storageOffset < 0 || shape.size() != strides.size())
        return false;
    if (std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d < 0; }))
        return false;  // a negative size anywhere, also after a 0
    std::int64_t last = storageOffset;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (strides[i] < 0)
            return false;
        if (shape[i] == 0)
            return true;  // an empty tensor touches no element
        std::int64_t step = 0;
        if (__builtin_mul_overflow(strides[i], shape[i] - 1, &step) || __builtin_add_overflow(last, step, &last))
            return false;
    }
    return !__builtin_add_overflow(last, 1, &out);
}

const std::string &TensorRef::validate()
{
    problem.clear();
    std::int64_t extent = 0;
    if (shape.size() > TensorLimits::kMaxRank) {
        problem = std::to_string(shape.size()) + " dimensions, past the limit of " +
                  std::to_string(TensorLimits::kMaxRank) + " dimensions a tensor";
        return problem;
    }
    if (layout == Layout::Meta) {
        if (numel() < 0)
            problem = "shape " + shapeText(shape) + " overflows 64-bit element counts";
        else if (numel() > TensorLimits::kMaxElements)
            problem = elementLimitText(shape, numel());
        return problem;
    }
    if (layout == Layout::SparseCoo) {
        for (const auto *part : {&sparseIndices, &sparseValues})
            if (!*part || !(*part)->isTensor())
                problem = "sparse tensor without its indices or values";
            else if (!(*part)->tensorRef()->validate().empty())
                problem = "sparse part: " + (*part)->tensorRef()->problem;
        return problem;
    }
    if (layout == Layout::SparseCsr) {
        const char *names[] = {"crow_indices", "col_indices", "values"};
        const auto parts = sparseParts();
        for (std::size_t i = 0; i < parts.size() && problem.empty(); ++i)
            if (!parts[i] || !parts[i]->isTensor())
                problem = "sparse CSR tensor without its " + std::string(names[i]);
            else if (!parts[i]->tensorRef()->validate().empty())
                problem = "sparse CSR " + std::string(names[i]) + ": " + parts[i]->tensorRef()->problem;
        // torch checks these on loading: indices of one rank, batches aside, and 2 sparse dimensions.
        if (problem.empty() && shape.size() < 2)
            problem = "a sparse CSR tensor of shape " + shapeText(shape) + ": it needs at least 2 dimensions";
        if (problem.empty() && numel() < 0)
            problem = "shape " + shapeText(shape) + " overflows 64-bit element counts";
        return problem;
    }
    if (dtypeSize(dtype) == 0) {
        problem = "unknown element type";
    } else if (numel() < 0) {
        problem = "shape " + shapeText(shape) + " overflows 64-bit element counts";
    } else if (numel() > TensorLimits::kMaxElements) {
        problem = elementLimitText(shape, numel());
    } else if (packedElementsPerByte(dtype) > 1 && numel() > 0 && (!isContiguous() || storageOffset < 0)) {
        // Packed elements (two or four to a byte) are read one after another; torch makes no
        // strided views of them.
        problem = "a " + std::string(dtypeName(dtype)) + " tensor packs its elements into bytes, but shape " +
                  shapeText(shape) + " with strides " + shapeText(strides) + " is not contiguous";
    } else if (packedElementsPerByte(dtype) > 1) {
        // In bytes: the offset, then ceil(numel / per byte) of packed elements.
        const std::int64_t need = storageOffset + packedDataBytes(dtype, numel());
        if (!storage)
            problem = "no storage";
        else if (!storage->resolved)
            problem = storage->problem.empty() ? "storage record '" + storage->key + "' is missing" : storage->problem;
        else if (static_cast<std::uint64_t>(need) > storage->byteSize)
            problem = "needs " + std::to_string(need) + " bytes of storage '" + storage->key + "' (" +
                      std::to_string(numel()) + " packed " + std::string(dtypeName(dtype)) + " elements) but the record holds " +
                      std::to_string(storage->byteSize);
    } else if (!extentElements(extent)) {
        problem = "shape " + shapeText(shape) + " with strides " + shapeText(strides) + " and offset " +
                  std::to_string(storageOffset) + " is invalid or overflows";
    } else if (!storage) {
        problem = "no storage";
    } else if (!storage->resolved) {
        problem = storage->problem.empty() ? "storage record '" + storage->key + "' is missing" : storage->problem;
        // A storage the pickle makes itself (the only unresolved one that holds a value): the span
        // past it is what torch.load would grow it to.
        if (storage->keepAlive && extent > storage->declaredNumel)
            problem = "spans " + std::to_string(extent) + " elements of a storage of " +
                      std::to_string(storage->declaredNumel) + (storage->declaredNumel == 1 ? " element; " : " elements; ") +
                      problem;
    } else if (!fitsStorage(extent)) {
        // Counted in the tensor's elements: an untyped storage holds bytes of any type.
        problem = "needs " + std::to_string(extent) + " elements of storage '" + storage->key + "' but the record holds " +
                  std::to_string(storage->byteSize / dtypeSize(dtype));
    }
    return problem;
}

bool TensorRef::fitsStorage(std::int64_t extent) const
{
    std::uint64_t bytes = 0;
    return storage && storage->resolved && extent >= 0 &&
           !__builtin_mul_overflow(static_cast<std::uint64_t>(extent), dtypeSize(dtype), &bytes) &&
           bytes <= storage->byteSize;
}

HeldBytes TensorRef::spannedBytes() const
{
    std::int64_t extent = 0;
    if (layout != Layout::Strided || !problem.empty() || !storage || !storage->resolved || !extentElements(extent) || extent == 0)
        return {};
    if (packedElementsPerByte(dtype) > 1) {  // validated: contiguous, and within the record
        const auto bytes = storage->bulkData();
        const auto begin = static_cast<std::size_t>(storageOffset);
        const auto size = static_cast<std::size_t>(packedDataBytes(dtype, numel()));
        return begin + size <= bytes.size() ? bytes.subspan(begin, size) : HeldBytes();
    }
    const auto size = static_cast<std::int64_t>(dtypeSize(dtype));
    const auto begin = static_cast<std::size_t>(storageOffset * size);
    const auto end = static_cast<std::size_t>(extent * size);
    const auto bytes = storage->bulkData();
    if (end > bytes.size() || begin > end)
        return {};
    return bytes.subspan(begin, end - begin);
}

std::string shapeText(const std::vector<std::int64_t> &shape)
{
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i)
            s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

std::string workBudgetProblem(const TensorRef &ref)
{
    constexpr std::int64_t kViewFactor = 16;
    constexpr std::int64_t kFreeElements = std::int64_t(1) << 24;
    const std::int64_t logical = ref.numel();
    std::int64_t stored = 0;
    const char *what = nullptr;
    if (ref.layout == TensorRef::Layout::SparseCoo || ref.layout == TensorRef::Layout::SparseCsr) {
        stored = ref.sparseValues && ref.sparseValues->tensorRef() ? ref.sparseValues->tensorRef()->numel() : 0;
        what = " stored values: making it dense would fill all of them";
    } else if (ref.layout == TensorRef::Layout::Strided && ref.storage && ref.storage->resolved && dtypeSize(ref.dtype) > 0) {
        stored = static_cast<std::int64_t>(ref.storage->byteSize / dtypeSize(ref.dtype));
        what = " stored elements (strides repeat them, as an expand does): computing over the view would visit each";
    } else {
        return {};
    }
    if (logical <= kFreeElements || logical / kViewFactor <= stored)
        return {};
    return "the tensor has " + std::to_string(logical) + " elements over " + std::to_string(stored) + what +
           "; refused (more than " + std::to_string(kViewFactor) + " times what the file holds)";
}

} // namespace ckpt
