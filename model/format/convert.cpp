#include "convert.h"

#include "atomicwrite.h"
#include "crc.h"
#include "fullmodel.h"
#include "error.h"
#include "frameworkfiles.h"
#include "inferencemeta.h"
#include "jsonexport.h"
#include "keyalign.h"
#include "mappedfile.h"
#include "metadata.h"
#include "optimizermap.h"
#include "picklewriter.h"
#include "pruning.h"
#include "pythonrepr.h"
#include "safetensorswriter.h"
#include "security.h"
#include "tensoridentity.h"
#include "torchzipwriter.h"
#include "valuetree.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fnmatch.h>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <sys/time.h>
#include <unordered_map>
#include <unistd.h>
#include <unordered_set>
#include <zlib.h>

namespace ckpt {

namespace fs = std::filesystem;

std::string convertTargetName(ConvertTarget t)
{
    switch (t) {
    case ConvertTarget::StateDict:
        return "state-dict";
    case ConvertTarget::Checkpoint:
        return "checkpoint";
    case ConvertTarget::Inference:
        return "inference";
    case ConvertTarget::FullModel:
        return "full-model";
    case ConvertTarget::Safetensors:
        return "safetensors";
    }
    return "?";
}

std::optional<ConvertTarget> convertTargetFromName(const std::string &name)
{
    for (auto t : {ConvertTarget::StateDict, ConvertTarget::Checkpoint, ConvertTarget::Inference,
                   ConvertTarget::FullModel, ConvertTarget::Safetensors})
        if (convertTargetName(t) == name)
            return t;
    return std::nullopt;
}

bool targetWrites(ConvertTarget target, ConvertField field)
{
    using F = ConvertField;
    switch (target) {
    case ConvertTarget::Checkpoint:
        return field != F::Architecture;
    case ConvertTarget::Inference:
        return field == F::ModelConfig || field == F::ClassNames || field == F::Preprocessing;
    case ConvertTarget::FullModel:
        return field == F::Architecture;
    case ConvertTarget::StateDict:
    case ConvertTarget::Safetensors:
        return false;
    }
    return false;
}

std::string convertFieldOption(ConvertField field)
{
    switch (field) {
    case ConvertField::ModelConfig: return "--config";
    case ConvertField::ClassNames: return "--class-names";
    case ConvertField::Preprocessing: return "--preprocessing";
    case ConvertField::Epoch: return "--epoch";
    case ConvertField::TrainLoss: return "--train-loss";
    case ConvertField::ValLoss: return "--val-loss";
    case ConvertField::Architecture: return "--arch/--arch-spec";
    }
    return "?";
}

std::optional<DType> castDTypeFromName(const std::string &name)
{
    if (name == "float16" || name == "fp16" || name == "half")
        return DType::Float16;
    if (name == "bfloat16" || name == "bf16")
        return DType::BFloat16;
    if (name == "float32" || name == "fp32" || name == "float")
        return DType::Float32;
    if (name == "float64" || name == "fp64" || name == "double")
        return DType::Float64;
    return std::nullopt;
}

namespace {

// The file name without the extensions a checkpoint carries.
std::string stemOf(const std::string &path)
{
    std::string name = fs::path(path).filename().string();
    // model.safetensors.index.json and model_best.pth.tar lose both extensions.
    bool again = true;
    while (again) {
        again = false;
        for (const char *ext : {".index.json", ".safetensors", ".pth", ".pt", ".ptl", ".ckpt", ".bin", ".tar", ".pkl", ".th"})
            if (name.size() > std::strlen(ext) && name.ends_with(ext)) {
                name.resize(name.size() - std::strlen(ext));
                again = std::string_view(ext) == ".index.json" || std::string_view(ext) == ".tar";
                break;
            }
    }
    return name;
}

std::string dtypeSuffix(const std::optional<DType> &t)
{
    if (!t)
        return {};
    switch (*t) {
    case DType::Float16:
        return "_fp16";
    case DType::BFloat16:
        return "_bf16";
    case DType::Float32:
        return "_fp32";
    case DType::Float64:
        return "_fp64";
    default:
        return {};
    }
}

std::string sidecarPathFor(const std::string &output)
{
    const fs::path p(output);
    return (p.parent_path() / (p.stem().string() + "_metadata.json")).string();
}

// Python's datetime.now().isoformat(): local time with microseconds.
std::string isoNow()
{
    timeval tv{};
    ::gettimeofday(&tv, nullptr);
    std::tm tm{};
    ::localtime_r(&tv.tv_sec, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char us[16];
    std::snprintf(us, sizeof us, ".%06ld", static_cast<long>(tv.tv_usec));
    return std::string(buf) + (tv.tv_usec ? us : "");
}

// A weights-only output is written for torch.load(weights_only=True) as torch 1.13 reads it (the
// LibTorch this program builds on, and the oldest reader the files are tested with; README,
// "Weights formats"). 1.13's allow-list (torch/_weights_only_unpickler.py) is a subset of torch
// 2.6's, which the security report judges by: a value only 2.6 accepts (a set, a Counter, a
// torch.device, a bfloat16 dtype) is not written, and the reason says that 2.6 would take it.
// The dtypes 1.13's reader lists as globals: not bfloat16, bool, uint8 or the quantized ones.
constexpr std::string_view kTorch113WeightsOnlyDtypes[]{
    "torch.complex32", "torch.complex64", "torch.complex128", "torch.float16", "torch.float32",
    "torch.float64",   "torch.int8",      "torch.int16",      "torch.int32",   "torch.int64",
};

// Whether torch 2.6's weights-only reader accepts the global `name` ("collections.Counter"), as
// the security report says it.
bool newerWeightsOnlyAccepts(const std::string &name)
{
    const auto dot = name.rfind('.');
    if (dot == std::string::npos)
        return false;
    GlobalUse use;
    use.name = name;
    use.module = name.substr(0, dot);
    use.qualname = name.substr(dot + 1);
    return classifyGlobal(use).weightsOnlyAllowed;
}

// The first value of a tree torch 1.13's weights-only reader refuses, and whether torch 2.6's
// accepts every such value of the tree.
struct WeightsOnlyCheck {
    std::string first;        // "holds a set (builtins.set)"
    bool newerAccepts = true; // torch 2.6's reader takes every refused value
    std::unordered_set<const Value *> seen;

    void refuse(std::string what, bool newer)
    {
        if (first.empty())
            first = std::move(what);
        newerAccepts = newerAccepts && newer;
    }
    bool settled() const { return !first.empty() && !newerAccepts; }
};

void weightsOnlyBlocker(const ValuePtr &v, WeightsOnlyCheck &c, int depth = 0)
{
    if (!v || c.settled())
        return;
    if (depth > 2000)
        return c.refuse("nests too deep", false);
    using K = Value::Kind;
    switch (v->kind()) {
    case K::None:
    case K::Bool:
    case K::Int:
    case K::BigInt:
    case K::Float:
    case K::String:
        return;
    case K::Bytes:
        return c.refuse("holds bytes", newerWeightsOnlyAccepts("_codecs.encode"));
    case K::Complex:
        return c.refuse("holds a complex number", newerWeightsOnlyAccepts("builtins.complex"));
    case K::Set:
        return c.refuse("holds a set (builtins.set)", newerWeightsOnlyAccepts("builtins.set"));
    case K::FrozenSet:
        return c.refuse("holds a frozenset (builtins.frozenset)", newerWeightsOnlyAccepts("builtins.frozenset"));
    case K::Global: {
        const std::string name = v->qualifiedName();
        if (std::find(std::begin(kTorch113WeightsOnlyDtypes), std::end(kTorch113WeightsOnlyDtypes), name) !=
            std::end(kTorch113WeightsOnlyDtypes))
            return;
        return c.refuse("holds the global " + name, newerWeightsOnlyAccepts(name));
    }
    case K::Object: {
        const std::string name = className(*v);
        return c.refuse("holds an object of class " + name, newerWeightsOnlyAccepts(name));
    }
    case K::Storage:
        return c.refuse("holds a bare storage", false);
    case K::Tensor: {
        const auto &t = *v->tensorRef();
        if (t.layout == TensorRef::Layout::Meta && !dtypeStorageClass(t.dtype).empty())
            return;
        if (t.layout == TensorRef::Layout::SparseCoo && t.sparseIndices && t.sparseValues) {
            weightsOnlyBlocker(t.sparseIndices, c, depth + 1);
            return weightsOnlyBlocker(t.sparseValues, c, depth + 1);
        }
        // Sparse CSR is written back with the rebuild function the source used (see the plan's
        // warning): its parts are plain tensors.
        if (t.layout == TensorRef::Layout::SparseCsr && t.sparseCrowIndices && t.sparseColIndices && t.sparseValues) {
            for (const auto &part : t.sparseParts())
                weightsOnlyBlocker(part, c, depth + 1);
            return;
        }
        if (t.layout != TensorRef::Layout::Strided || t.quantization || !t.storage || t.dtype != t.storage->dtype ||
            dtypeStorageClass(t.dtype).empty())
            return c.refuse("holds a tensor this writer cannot store yet (sparse, meta, quantized or " +
                                std::string(dtypeName(t.dtype)) + ")",
                            false);
        if (t.isParameter && v->state() && !v->state()->isNone() &&
            !(v->state()->isDict() && v->state()->entries().empty()))
            return c.refuse("holds a parameter with extra state", false);
        return;
    }
    default:
        break;
    }
    if (!c.seen.insert(v.get()).second)
        return;
    for (const auto &i : v->items())
        weightsOnlyBlocker(i, c, depth + 1);
    for (const auto &e : v->entries()) {
        weightsOnlyBlocker(e.key, c, depth + 1);
        weightsOnlyBlocker(e.value, c, depth + 1);
    }
    if (v->isDict() && v->state() && v->pythonClass() != "collections.OrderedDict")
        return; // a plain dict's BUILD state is not written
    if (v->state())
        weightsOnlyBlocker(v->state(), c, depth + 1);
}

// What makes a 2-d sparse CSR tensor one torch refuses to load (its _validate_sparse_csr_tensor_args):
// crow_indices must start at 0, never step back or by more than the columns, and end at the
// number of values; each column index must lie in [0, columns). "" when it holds, or when it cannot
// be told here (a batched tensor, indices that are not a contiguous int32/int64 vector): the
// read-back and torch are the judges then. Reads the indices in place, one at a time.
std::string csrProblem(const TensorRef &t)
{
    if (t.shape.size() != 2 || !t.sparseCrowIndices || !t.sparseColIndices || !t.sparseValues ||
        !t.sparseCrowIndices->isTensor() || !t.sparseColIndices->isTensor() || !t.sparseValues->isTensor())
        return {};
    const TensorRef &crow = *t.sparseCrowIndices->tensorRef();
    const TensorRef &col = *t.sparseColIndices->tensorRef();
    const std::int64_t rows = t.shape[0], cols = t.shape[1];
    const std::int64_t nnz = t.sparseValues->tensorRef()->shape.empty() ? 1 : t.sparseValues->tensorRef()->shape[0];
    // Element i of a 1-d int32/int64 index tensor, or nothing where it cannot be read in place.
    const auto reader = [](const TensorRef &r) -> std::function<std::optional<std::int64_t>(std::int64_t)> {
        std::int64_t extent = 0;
        if (r.shape.size() != 1 || r.strides.size() != 1 || !r.storage || !r.problem.empty() ||
            (r.dtype != DType::Int64 && r.dtype != DType::Int32) || !r.extentElements(extent) || !r.fitsStorage(extent))
            return nullptr;
        // Held for the reader's life: the storage is read once, not once an element.
        return [&r, held = r.storage->hold()](std::int64_t i) -> std::optional<std::int64_t> {
            const auto &bytes = held.bytes;
            const std::size_t size = r.dtype == DType::Int64 ? 8 : 4;
            const auto at = static_cast<std::size_t>(r.storageOffset + i * r.strides[0]) * size;
            if (at + size > bytes.size())
                return std::nullopt;
            if (size == 8) {
                std::int64_t v;
                std::memcpy(&v, bytes.data() + at, 8);
                return v;
            }
            std::int32_t v;
            std::memcpy(&v, bytes.data() + at, 4);
            return v;
        };
    };
    const auto crowAt = reader(crow), colAt = reader(col);
    if (!crowAt || !colAt)
        return {};
    if (crow.shape[0] != rows + 1)
        return "crow_indices has " + std::to_string(crow.shape[0]) + " entries where the " + std::to_string(rows) +
               " rows need " + std::to_string(rows + 1);
    if (col.shape[0] != nnz)
        return "col_indices has " + std::to_string(col.shape[0]) + " entries for " + std::to_string(nnz) + " values";
    std::int64_t previous = 0;
    for (std::int64_t i = 0; i <= rows; ++i) {
        const auto v = crowAt(i);
        if (!v)
            return {};
        if (i == 0 ? *v != 0 : (*v < previous || *v - previous > cols))
            return "crow_indices[" + std::to_string(i) + "] is " + std::to_string(*v) + " after " +
                   std::to_string(previous) + (i == 0 ? " (it must start at 0)" : " (each row holds 0 to the columns' count)");
        previous = *v;
    }
    if (previous != nnz)
        return "crow_indices ends at " + std::to_string(previous) + ", not at the " + std::to_string(nnz) + " values";
    for (std::int64_t i = 0; i < nnz; ++i) {
        const auto v = colAt(i);
        if (!v)
            return {};
        if (*v < 0 || *v >= cols)
            return "col_indices[" + std::to_string(i) + "] is " + std::to_string(*v) + ", outside the " +
                   std::to_string(cols) + " columns";
    }
    return {};
}

// Why a value cannot go into a weights-only file, said whole ("holds a set (builtins.set), ...");
// "" when it can.
std::string blockerOf(const ValuePtr &v)
{
    WeightsOnlyCheck c;
    weightsOnlyBlocker(v, c);
    if (c.first.empty())
        return {};
    if (c.newerAccepts)
        return c.first + ": torch 2.6's torch.load(weights_only=True) accepts it, but torch 1.13's does not, and a "
                         "weights-only file is written to load with both";
    return c.first + ", which a weights-only file cannot hold";
}

// The entries predict normalises inputs with (inferencemeta.cpp's preprocessingOf): the ones an
// inference package carries as input_mean/input_std or preprocessing.
bool isNormalisationKey(const std::string &k)
{
    return k == "input_mean" || k == "input_std" || k == "preprocessing" || k == "normalization" || k == "normalize";
}

// An optimizer's state_dict() (its 'state' and 'param_groups'), or a list of them as Lightning
// keeps: what a second optimizer (a GAN's optD) is, beside the one found for the model.
bool holdsOptimizerState(const ValuePtr &v)
{
    if (!v)
        return false;
    if (v->isSequence())
        return !v->items().empty() && std::all_of(v->items().begin(), v->items().end(), [](const ValuePtr &i) {
            return i && i->isDict() && holdsOptimizerState(i);
        });
    const auto state = v->isDict() ? v->get("state") : nullptr;
    const auto groups = v->isDict() ? v->get("param_groups") : nullptr;
    return state && state->isDict() && groups && groups->isSequence();
}

std::string normalisedPrefix(std::string p)
{
    if (!p.empty() && p.back() != '.')
        p += '.';
    return p;
}

bool isFloating(DType t)
{
    return t == DType::Float64 || t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16;
}

// Bytes of a tensor in row-major order, gathered through its strides when it is not contiguous.
std::vector<std::uint8_t> contiguousBytes(const TensorRef &t)
{
    const std::size_t es = dtypeSize(t.dtype);
    const std::int64_t n = t.numel();
    if (n <= 0)
        return {};
    if (t.isContiguous()) {
        auto span = t.spannedBytes();
        if (span.size() != static_cast<std::size_t>(n) * es)
            throw FormatError("tensor data does not fit its storage");
        return {span.bytes.begin(), span.bytes.end()};
    }
    std::int64_t extent = 0;
    if (!t.extentElements(extent) || !t.fitsStorage(extent))
        throw FormatError("tensor does not fit its storage");
    const auto data = t.storage->bulkData();
    std::vector<std::uint8_t> out(static_cast<std::size_t>(n) * es);
    std::vector<std::int64_t> idx(t.shape.size(), 0);
    for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t off = t.storageOffset;
        for (std::size_t d = 0; d < idx.size(); ++d)
            off += idx[d] * t.strides[d];
        std::memcpy(out.data() + static_cast<std::size_t>(i) * es, data.data() + static_cast<std::size_t>(off) * es,
                    es);
        for (std::size_t d = idx.size(); d-- > 0;) {
            if (++idx[d] < t.shape[d])
                break;
            idx[d] = 0;
        }
    }
    return out;
}

// The bytes of `t` in row-major order as `to`, given to `sink` without a copy of the whole
// tensor: a contiguous tensor of the same type as a span of its storage (the mapping), else in
// chunks of kChunk bytes at most, each gathered through the strides and cast.
void streamBytes(const TensorRef &t, DType to, const ByteSink &sink)
{
    constexpr std::size_t kChunk = std::size_t{4} << 20;
    const std::size_t es = dtypeSize(t.dtype);
    const std::int64_t n = t.numel();
    if (n <= 0 || es == 0)
        return;
    const auto emit = [&](std::span<const std::uint8_t> b) {
        if (to == t.dtype)
            sink(b);
        else
            sink(castFloats(b, t.dtype, to));
    };
    if (t.isContiguous()) {
        const auto span = t.spannedBytes();
        if (span.size() != static_cast<std::size_t>(n) * es)
            throw FormatError("tensor data does not fit its storage");
        if (to == t.dtype)
            return sink(span.bytes);
        const std::size_t step = std::max<std::size_t>(1, kChunk / es) * es;
        for (std::size_t at = 0; at < span.size(); at += step)
            emit(span.bytes.subspan(at, std::min(step, span.size() - at)));
        return;
    }
    std::int64_t extent = 0;
    if (!t.extentElements(extent) || !t.fitsStorage(extent))
        throw FormatError("tensor does not fit its storage");
    const auto data = t.storage->bulkData();
    const std::size_t perChunk = std::max<std::size_t>(1, kChunk / es);
    std::vector<std::uint8_t> buffer(std::min<std::size_t>(perChunk, static_cast<std::size_t>(n)) * es);
    std::vector<std::int64_t> idx(t.shape.size(), 0);
    std::size_t filled = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t off = t.storageOffset;
        for (std::size_t d = 0; d < idx.size(); ++d)
            off += idx[d] * t.strides[d];
        std::memcpy(buffer.data() + filled * es, data.data() + static_cast<std::size_t>(off) * es, es);
        if (++filled * es == buffer.size()) {
            emit(buffer);
            filled = 0;
        }
        for (std::size_t d = idx.size(); d-- > 0;) {
            if (++idx[d] < t.shape[d])
                break;
            idx[d] = 0;
        }
    }
    if (filled)
        emit(std::span<const std::uint8_t>(buffer.data(), filled * es));
}

// (stride, size) of the tensor's dimensions past size 1, smallest stride first: what the two tests
// below walk.
std::vector<std::pair<std::int64_t, std::int64_t>> stepsBySmallestStride(const TensorRef &t)
{
    std::vector<std::pair<std::int64_t, std::int64_t>> dims;
    for (std::size_t d = 0; d < t.shape.size() && d < t.strides.size(); ++d)
        if (t.shape[d] != 1)
            dims.emplace_back(t.strides[d], t.shape[d]);
    std::sort(dims.begin(), dims.end());
    return dims;
}

// True when the tensor's elements fill one block of its storage, each once (in some order of its
// dimensions), as torch's is_non_overlapping_and_dense says.
bool denseNonOverlapping(const TensorRef &t)
{
    std::int64_t expected = 1;
    for (const auto &[stride, size] : stepsBySmallestStride(t)) {
        if (stride != expected)
            return false;
        expected *= size;
    }
    return true;
}

// True when no two of the tensor's elements are one element of its storage, as far as the strides
// show it: sorted, each stride steps past all the elements the smaller ones reach (false for a
// stride 0 of a size past 1, an expand, and for views that overlap or might).
bool elementsApart(const TensorRef &t)
{
    std::int64_t reach = 0;  // the furthest element the smaller strides reach from the first
    for (const auto &[stride, size] : stepsBySmallestStride(t)) {
        if (stride <= reach || size < 1)
            return false;
        std::int64_t step = 0;
        if (__builtin_mul_overflow(stride, size - 1, &step) || __builtin_add_overflow(reach, step, &reach))
            return false;
    }
    return true;
}

ValuePtr plainTensor(const ValuePtr &v)
{
    auto ref = std::make_shared<TensorRef>(*v->tensorRef());
    ref->isParameter = false;
    ref->requiresGrad = false;
    return Value::tensor(ref);
}

bool isTrainingStateKey(const std::string &k)
{
    return k.find("rng") != std::string::npos || k.find("scheduler") != std::string::npos ||
           k.find("scaler") != std::string::npos || k == "lr_schedulers" || k.find("optimizer") != std::string::npos ||
           k == "optim" || k == "opt";
}

class Planner {
public:
    Planner(const Document &doc, const ConvertOptions &o, ConversionPlan &plan) : m_doc(doc), m_o(o), m_plan(plan) {}

    void run()
    {
        refuseValuesWithNoPlace();
        m_plan.castTo = m_o.castTo;
        // A PEFT adapter holds a model's low-rank updates, not the model: a package made of it alone
        // would not predict, and the plan says so first.
        auto adapter = loraAdapter(m_doc);
        if (adapter && adapter->withBaseWeights)
            adapter.reset();  // the base model's weights are there too: the model, its adapter not merged
        const std::string notTheModel =
            adapter ? "the file is a LoRA adapter (rank " + std::to_string(adapter->maxRank) + " on " +
                          std::to_string(adapter->modules) +
                          " modules), not the model: the output holds only the adapter's low-rank updates and cannot "
                          "stand for the model; merge the adapter into its base model (convert the base with --merge-lora "
                          "and this adapter's folder, or PEFT's merge_and_unload)"
                    : std::string();
        if (adapter && (m_o.to == ConvertTarget::FullModel || m_o.to == ConvertTarget::Inference))
            m_plan.warnings.push_back(notTheModel);
        if (m_o.to == ConvertTarget::FullModel && m_doc.stateDictSource == "module_tree") {
            planFullModel();
        } else if (m_o.to == ConvertTarget::FullModel && adapter) {
            try {
                planFullModelFromWeights();
            } catch (const FormatError &e) {
                throw FormatError(notTheModel + "; " + e.what());
            }
        } else if (m_o.to == ConvertTarget::FullModel) {
            planFullModelFromWeights();
        } else {
            collectStateDict();
            buildTarget();
            if (m_o.classes)
                checkClassCount();
            if (m_o.preprocess)
                checkPreprocessing();
            if (m_plan.weightsOnly && m_plan.root)
                noteTypeChanges();
        }
        if (m_o.castTo && m_o.to == ConvertTarget::FullModel && m_plan.root)
            castApart(m_doc.stateDictSource == "module_tree" && !m_doc.stateDictPath.empty()
                          ? findPath(m_plan.root, m_doc.stateDictPath)
                          : m_plan.root);
        if (m_o.castTo)
            planCasts();
        // Sizes of the kept tensors, before and after the cast, as the file holds them: a torch
        // file writes each storage once, whole (tied weights, two names of one tensor or two views
        // of one storage, count once); safetensors writes each tensor written (an alias is not).
        if (m_o.to == ConvertTarget::Safetensors) {
            for (const auto &[name, v] : m_plan.tensors) {
                const auto &r = *v->tensorRef();
                const auto n = static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.numel()));
                m_plan.bytesBefore += n * dtypeSize(r.dtype);
                auto it = r.storage ? m_plan.casts.find(r.storage.get()) : m_plan.casts.end();
                m_plan.bytesAfter += n * dtypeSize(it == m_plan.casts.end() ? r.dtype : it->second);
            }
        } else {
            std::unordered_set<const StorageRef *> counted;
            const auto countStorage = [&](const TensorRef &r) {
                if (r.layout != TensorRef::Layout::Strided || !r.storage || !counted.insert(r.storage.get()).second)
                    return;
                const std::uint64_t b = r.storage->byteSize;
                m_plan.bytesBefore += b;
                const auto it = m_plan.casts.find(r.storage.get());
                const std::size_t from = dtypeSize(r.storage->dtype);
                m_plan.bytesAfter += it == m_plan.casts.end() || !from ? b : b / from * dtypeSize(it->second);
            };
            for (const auto &[name, v] : m_tensors) {
                const auto &r = written(v);
                if (r.layout == TensorRef::Layout::SparseCoo || r.layout == TensorRef::Layout::SparseCsr) {
                    for (const auto &part : r.sparseParts())  // its indices' and values' storages
                        if (part && part->isTensor() && part->tensorRef())
                            countStorage(*part->tensorRef());
                    continue;
                }
                countStorage(r);  // a meta tensor has none
                if (r.quantization)  // per-channel scales and zero points: storages of their own
                    for (const auto *part : {&r.quantization->scales, &r.quantization->zeroPoints})
                        if (*part && (*part)->isTensor() && (*part)->tensorRef())
                            countStorage(*(*part)->tensorRef());
            }
        }
        if (!m_o.keepDevices) {
            std::set<std::string> devices;
            for (const auto &t : m_doc.tensors)
                if (t.ref().storage && !t.ref().storage->location.empty() && t.ref().storage->location != "cpu")
                    devices.insert(t.ref().storage->location);
            for (const auto &d : devices)
                m_plan.warnings.push_back("saved device tag '" + d + "' is written as 'cpu'");
        }
    }

    // Values read as a str, int or float of a class of their own (a torch.device, a numpy scalar,
    // a datetime) are written as the plain value to a weights-only file: said once per class, with
    // where, so that a torch.device coming back as 'cuda:0' is not a surprise. (TorchVersion is a
    // str that torch itself compares as one; a layout is written as torch writes it.) A numpy array
    // (an input_std kept as np.array) is written as a torch tensor of its dtype: said the same way.
    void noteTypeChanges()
    {
        struct Seen {
            std::string first;
            std::string text;
            std::size_t count = 0;
        };
        std::map<std::string, Seen> byClass;
        std::unordered_set<const Value *> seen;
        std::vector<std::pair<ValuePtr, std::string>> stack{{m_plan.root, ""}};
        while (!stack.empty()) {
            auto [v, path] = std::move(stack.back());
            stack.pop_back();
            if (!v || !seen.insert(v.get()).second)
                continue;
            if (v->isTensor()) {
                if (const auto &r = v->tensorRef(); r && r->rebuild == "numpy.ndarray") {
                    auto &s = byClass["numpy.ndarray"];
                    if (s.count++ == 0) {
                        s.first = path;
                        s.text = "a torch." + std::string(dtypeName(r->dtype)) + " tensor";
                    }
                }
                continue;
            }
            using K = Value::Kind;
            const K kind = v->kind();
            if (kind == K::String || kind == K::Int || kind == K::BigInt || kind == K::Float || kind == K::Bool) {
                const std::string &cls = v->pythonClass();
                if (cls.empty() || cls == "torch.layout" || cls == "torch.torch_version.TorchVersion")
                    continue;
                auto &s = byClass[cls];
                if (s.count++ == 0) {
                    s.first = path;
                    s.text = kind == K::String  ? "the str '" + v->text() + "'"
                             : kind == K::Float ? std::string("a float")
                             : kind == K::Bool  ? std::string("a bool")
                                                : std::string("an int");
                }
                continue;
            }
            const std::string prefix = path.empty() ? path : path + "/";
            for (std::size_t i = v->items().size(); i-- > 0;)
                stack.emplace_back(v->items()[i], prefix + std::to_string(i));
            for (std::size_t i = v->entries().size(); i-- > 0;)
                if (const auto &e = v->entries()[i]; e.key && e.value)
                    stack.emplace_back(e.value, prefix + keyText(*e.key));
        }
        for (const auto &[cls, s] : byClass) {
            const bool arrays = cls == "numpy.ndarray";
            std::string w = "'" + s.first + "'" +
                            (s.count > 1 ? " and " + std::to_string(s.count - 1) + " other values are " : " is ") +
                            (s.count > 1 ? cls : "a " + cls) + ", written as " +
                            (s.count > 1 ? (arrays ? "tensors of their dtypes and values (the first as "
                                                   : "plain values (the first as ") +
                                               s.text + ")"
                                         : s.text + (arrays ? " of the same values" : "")) +
                            ": ";
            w += newerWeightsOnlyAccepts(cls) ? "torch 2.6's torch.load(weights_only=True) accepts a " + cls +
                                                    ", but torch 1.13's does not, and a weights-only file is written "
                                                    "to load with both"
                                              : "a weights-only file cannot hold a " + cls;
            m_plan.warnings.push_back(w);
        }
    }

private:
    const Document &m_doc;
    const ConvertOptions &m_o;
    ConversionPlan &m_plan;
    std::vector<std::pair<std::string, ValuePtr>> m_tensors; // the state dict after edits
    ValuePtr m_metadata;                                     // the state dict's _metadata, edited
    std::vector<ValuePtr> m_carriedWeights;                  // tensors of weight sets carried with the
                                                             // model's edits (cast as the model's are)
    std::set<std::string> m_usedRootKeys;
    std::size_t m_prunedMasks = 0;  // pruning masks --apply-pruning left out (the first of m_plan.dropped)
    std::set<std::string> m_takenFromInfo; // additional_info entries promoted back to their own key
    std::set<std::string> m_takenFromFormat; // safetensors __metadata__ entries promoted to their own key
    // A quantized Linear's state_dict() entries that are not tensors, carried so that
    // load_state_dict takes the output: `_packed_params` = (weight, bias) as a tuple (its tensors are
    // among m_tensors as name.0, name.1) and the packed params' dtype (torch.qint8).
    struct PackedTuple {
        ValuePtr source;   // the source's tuple
        std::string name;  // its key after the edits; empty when a member was left out or renamed apart
        std::string key;   // its key in the source (what --drop matches)
    };
    std::vector<PackedTuple> m_packedTuples;
    std::unordered_map<const Value *, std::pair<std::size_t, std::size_t>> m_packedOf;  // member: (tuple, item)
    std::vector<std::pair<std::string, ValuePtr>> m_packedDtypes;  // source key, then its key after the edits
    std::unordered_set<const Value *> m_directEntries;  // tensors that are entries of the source dict

    // Records a non-tensor entry of a source state dict that a quantized model's load_state_dict
    // needs; false for any other (it is not written).
    bool notePackedEntry(const Value &sd, const std::string &key, const ValuePtr &v)
    {
        if (v->kind() == Value::Kind::Tuple && key.ends_with("_packed_params") && !v->items().empty() &&
            std::all_of(v->items().begin(), v->items().end(),
                        [](const ValuePtr &i) { return i && (i->isTensor() || i->isNone()); })) {
            for (std::size_t i = 0; i < v->items().size(); ++i)
                if (v->items()[i]->isTensor())
                    m_packedOf.emplace(v->items()[i].get(), std::pair{m_packedTuples.size(), i});
            m_packedTuples.push_back({v, key, key});
            return true;
        }
        // The dtype beside a packed tuple only (LinearPackedParams' `dtype`, `_packed_params`).
        const auto tupleBeside = [&] {
            const auto packed = sd.get(key.substr(0, key.size() - std::string_view("dtype").size()) + "_packed_params");
            return packed && packed->kind() == Value::Kind::Tuple;
        };
        if (v->kind() == Value::Kind::Global && v->text() == "torch" && (key == "dtype" || key.ends_with(".dtype")) &&
            dtypeFromTorchName(v->name()) && tupleBeside()) {
            m_packedDtypes.emplace_back(key, v);
            return true;
        }
        return false;
    }

    // "fc._packed_params." of "fc._packed_params._packed_params": the packed params' own prefix,
    // which its tuple and its dtype share.
    static std::string packedOwner(const std::string &tupleKey)
    {
        constexpr std::string_view kPacked = "_packed_params";
        return tupleKey.ends_with(kPacked) ? tupleKey.substr(0, tupleKey.size() - kPacked.size()) : tupleKey + ".";
    }

    // The packed entries' names after --drop, --strip-prefix and --add-prefix, as the tensors'. A
    // tuple is written under its own key when every tensor of it is kept, named key.0, key.1, ...
    // still; else its tensors are written apart (load_state_dict will not take them), said so.
    void resolvePackedEntries(const std::string &strip, const std::string &add)
    {
        if (m_doc.stateDictSource == "dict")
            if (auto sd = findPath(m_doc.root, m_doc.stateDictPath); sd && sd->isDict())
                for (const auto &e : sd->entries())
                    if (e.value && e.value->isTensor())
                        m_directEntries.insert(e.value.get());
        if (m_packedTuples.empty())
            return;
        std::vector<std::size_t> found(m_packedTuples.size(), 0);
        std::vector<std::string> base(m_packedTuples.size());
        std::vector<bool> apart(m_packedTuples.size(), false);
        for (const auto &[name, v] : m_tensors) {
            const auto it = m_packedOf.find(v.get());
            if (it == m_packedOf.end())
                continue;
            const auto [tuple, item] = it->second;
            const std::string suffix = "." + std::to_string(item);
            const std::string b = name.ends_with(suffix) ? name.substr(0, name.size() - suffix.size()) : std::string();
            if (!b.empty() && (found[tuple] == 0 || base[tuple] == b)) {
                base[tuple] = b;
                ++found[tuple];
            } else {
                apart[tuple] = true;  // renamed apart from its tuple's other tensors
            }
        }
        // A tuple none of whose tensors is written (--drop matched its key or all its tensors).
        std::set<std::string> gone;
        for (std::size_t i = 0; i < m_packedTuples.size(); ++i)
            if (!found[i] && !apart[i])
                gone.insert(packedOwner(m_packedTuples[i].key));
        for (std::size_t i = 0; i < m_packedTuples.size(); ++i) {
            auto &t = m_packedTuples[i];
            const auto members = static_cast<std::size_t>(std::count_if(
                t.source->items().begin(), t.source->items().end(), [](const ValuePtr &x) { return x->isTensor(); }));
            if (!apart[i] && found[i] == members) {
                t.name = base[i];
            } else {
                if (found[i] || apart[i])
                    m_plan.warnings.push_back("'" + t.name + "' (a quantized layer's packed weight and bias) is not "
                                              "kept whole: its tensors are written apart, which the quantized "
                                              "model's load_state_dict does not take");
                t.name.clear();
            }
        }
        std::vector<std::pair<std::string, ValuePtr>> dtypes;
        for (auto &[key, v] : m_packedDtypes) {
            // (A structured binding is captured through a reference of its own: clang 14 captures none.)
            const std::string &entry = key;
            const auto it = std::find_if(m_o.drops.begin(), m_o.drops.end(), [&entry](const std::string &p) {
                return ::fnmatch(p.c_str(), entry.c_str(), 0) == 0;
            });
            if (it != m_o.drops.end()) {
                m_plan.dropped.push_back({key, "matches --drop " + *it});
                continue;
            }
            // Only the packed params' load_state_dict reads the dtype, beside its tuple: alone it is
            // a non-tensor entry no model takes (a quantized one fails on the missing tuple anyway).
            if (const std::string owner = key.substr(0, key.size() - std::string_view("dtype").size());
                gone.contains(owner)) {
                m_plan.dropped.push_back({key, "the dtype of '" + owner + "_packed_params', which is left out: it is "
                                                   "read only with those packed weights"});
                continue;
            }
            std::string name = key;
            if (!strip.empty() && name.starts_with(strip))
                name = name.substr(strip.size());
            name = add + name;
            if (std::any_of(m_tensors.begin(), m_tensors.end(), [&](const auto &t) { return t.first == name; }))
                throw FormatError("two keys would both be named '" + name + "' after the prefix edits");
            dtypes.emplace_back(name, v);
        }
        m_packedDtypes = std::move(dtypes);
    }

    ValuePtr rootEntry(const std::string &k) const
    {
        return m_doc.root && m_doc.root->isDict() ? m_doc.root->get(k) : nullptr;
    }

    // A value a checkpoint written by this tool keeps under additional_info (class names, ...).
    ValuePtr infoEntry(const std::string &k) const
    {
        auto info = rootEntry("additional_info");
        return info && info->isDict() ? info->get(k) : nullptr;
    }

    void planFullModel()
    {
        if (!m_o.architecture.scriptPath.empty() || !m_o.architecture.spec.empty())
            throw FormatError("the file holds its own module tree, which is re-saved as it is: --arch and --arch-spec "
                              "do not apply");
        if (!m_o.strip.empty() || !m_o.add.empty() || m_o.promoteEma || !m_o.drops.empty() || m_o.dropTraining ||
            m_o.config || m_o.preprocess || m_o.classes || m_o.epochValue || m_o.trainLoss || m_o.valLoss)
            throw FormatError("--strip-prefix, --add-prefix, --ema, --drop, --drop-optimizer and metadata options do "
                              "not apply to a full model's module tree (only --dtype does)");
        if (m_o.lora)
            throw FormatError("--merge-lora does not apply to a full model's module tree, which is re-saved as it is: "
                              "convert it --to state-dict --merge-lora for the merged weights");
        if (m_o.pruneRemove)
            throw FormatError("--apply-pruning does not apply to a full model's module tree, which is re-saved as it "
                              "is (its pruning hooks with it): convert it --to state-dict --apply-pruning for the "
                              "unpruned model's weights");
        // A quantized model is re-saved as it is, its quantized tensors as torch.save writes them;
        // what Module.to(dtype) does to its float parts (scales, biases inside packed objects) is
        // not modelled, so it is not cast.
        if (const std::string q = quantizedTensors(); !q.empty() && m_o.castTo)
            throw FormatError("the model holds " + q +
                              ": a quantized model is re-saved as it is, not cast (leave out --dtype)");
        // Re-saving keeps every global the file names: never launder one that would run code.
        const auto security = securityReport(m_doc);
        if (security.dangerous) {
            std::string names;
            for (const auto &g : security.globals)
                if (g.cls == GlobalClass::Dangerous)
                    names += (names.empty() ? "" : ", ") + g.use.name;
            throw FormatError("the file names globals that would run code when loaded (" + names +
                              "); a full model is not re-saved from it (convert to a weights format instead)");
        }
        m_plan.weightsOnly = false;
        m_plan.root = m_doc.root;
        for (const auto &t : m_doc.stateDict) {
            m_plan.kept.push_back(t.name);
            m_tensors.emplace_back(t.name, t.value);
        }
        // Module.to(dtype) casts the buffers state_dict() leaves out (persistent=False) too.
        if (m_o.castTo) {
            const ValuePtr module = m_doc.stateDictPath.empty() ? m_doc.root : findPath(m_doc.root, m_doc.stateDictPath);
            std::unordered_set<const Value *> listed;
            for (const auto &t : m_doc.stateDict)
                listed.insert(t.value.get());
            if (module)
                for (auto &t : moduleToTensors(*module))
                    if (listed.insert(t.value.get()).second)
                        m_tensors.emplace_back(std::move(t.name), std::move(t.value));
        }
        std::set<std::string> classes;
        std::unordered_set<const Value *> seen;
        std::vector<ValuePtr> stack{m_doc.root};
        while (!stack.empty()) {
            auto v = stack.back();
            stack.pop_back();
            if (!v || !seen.insert(v.get()).second)
                continue;
            if (v->kind() == Value::Kind::Object) {
                const auto name = className(*v);
                if (!name.starts_with("torch.") && !name.starts_with("collections.") && !name.starts_with("builtins."))
                    classes.insert(name);
            }
            for (auto &c : childrenOf(*v))
                stack.push_back(c.value);
        }
        for (const auto &c : classes)
            m_plan.warnings.push_back("loading the full model needs the class " + c +
                                      " importable (as the source did)");
        m_plan.carried.push_back("(the whole pickled module tree)");
    }

    // --apply-pruning: what prune.remove does to each parameter pruned with torch.nn.utils.prune.
    void applyPruningToWeights()
    {
        std::vector<std::string> masks;
        const auto made = ckpt::applyPruning(m_tensors, &masks);
        if (made.empty()) {
            m_plan.warnings.push_back("--apply-pruning: no parameter is pruned with torch.nn.utils.prune (no X_orig "
                                      "with its X_mask); the weights are written as they are");
            return;
        }
        for (std::size_t i = 0; i < masks.size(); ++i)
            m_plan.dropped.push_back({masks[i], "its pruning mask, applied (--apply-pruning): " + made[i] + " = " +
                                                    made[i] + "_orig * " + made[i] + "_mask, written as " + made[i]});
        m_prunedMasks = masks.size();
    }

    // --merge-lora: each weight the adapter targets becomes W + scaling * delta, as PEFT's
    // merge_and_unload makes it; the compute module makes the bytes as each is written.
    void mergeLora()
    {
        if (!m_o.loraCompute)
            throw FormatError("--merge-lora needs the compute module, which is not loaded");
        if (m_o.promoteEma)
            throw FormatError("--merge-lora and --ema both change the model's weights: give one (merge the adapter "
                              "into the weights it was trained on)");
        m_plan.loraAdapter = m_o.lora->weightsPath;
        // The adapter names the bare model's modules: a base saved under DDP's "module." matches
        // them as --strip-prefix will name it.
        m_plan.lora = mergeLoraAdapter(m_tensors, *m_o.lora, m_o.loraCompute, normalisedPrefix(m_o.strip));
        for (const auto &w : m_plan.lora.warnings)
            m_plan.warnings.push_back("--merge-lora: " + w);
    }

    // A torch.nn.Sequential of standard layers around the (edited) state dict: the architecture
    // the user gave, else the package's own spec, else an MLP read from a chain of Linear weights.
    void planFullModelFromWeights()
    {
        collectStateDict();
        Document edited = m_doc;
        edited.stateDict.clear();
        for (const auto &[name, v] : m_tensors)
            edited.stateDict.push_back({name, v});
        Architecture arch;
        try {
            arch = resolveArchitecture(edited, m_o.architecture);
        } catch (const FormatError &e) {
            // The reason names the file already; said once, after it.
            std::string why = e.what();
            if (!edited.path.empty() && why.starts_with(edited.path + ": "))
                why.erase(0, edited.path.size() + 2);
            // A TorchScript file (--arch) is refused here (it cannot become a pickled module tree):
            // the way out offered is the one that works for this target.
            for (const auto &[from, to] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
                     {"give a TorchScript file of the model (--arch) or a spec (--arch-spec)",
                      "give the layers in --arch-spec (a JSON list of layers)"},
                     {"give a TorchScript architecture (--arch) or a spec (--arch-spec)",
                      "give the layers in --arch-spec (a JSON list of layers)"},
                     {"give --arch or --arch-spec", "give the layers in --arch-spec"}})
                if (const auto at = why.find(from); at != std::string::npos)
                    why.replace(at, from.size(), to);
            throw FormatError(std::string("a full model needs an architecture: ") + why);
        }
        if (!arch.masks.empty())
            throw FormatError("the weights are pruned with torch.nn.utils.prune (" + arch.masks.front().name +
                              (arch.masks.size() > 1 ? " and " + std::to_string(arch.masks.size() - 1) + " more" : "") +
                              "): a full model of the unpruned layers needs the pruning applied, add --apply-pruning");
        m_plan.root = moduleTreeValue(arch);
        m_plan.weightsOnly = false;
        markWeightsUsed();
        accountRest(nullptr, "", "a full model holds only the module (keep it with --to checkpoint or inference)");
        const auto leaves = leavesInOrder(arch.root);
        m_plan.carried.push_back("(torch.nn.Sequential, " + std::to_string(leaves.size()) + " layers, eval mode)");
        for (const auto &a : arch.assumptions)
            m_plan.warnings.push_back("architecture: " + a);
    }

    // Quantized tensors anywhere in the file, named (the first few) with their dtype, for the
    // reason a conversion is refused: "3 quantized tensors ('fc._packed_params._packed_params.0'
    // (qint8), ...)"; empty when there are none.
    std::string quantizedTensors() const
    {
        std::string names;
        std::size_t count = 0;
        for (const auto &t : m_doc.tensors)
            if (t.ref().quantization && ++count <= 2)
                names += (names.empty() ? "'" : ", '") + t.name + "' (" + std::string(dtypeName(t.ref().dtype)) + ")";
        if (!count)
            return {};
        return (count == 1 ? std::string("a quantized tensor (") : std::to_string(count) + " quantized tensors (") +
               names + (count > 2 ? ", ..." : "") + ")";
    }

    void collectStateDict()
    {
        if (!m_doc.hasStateDict || m_doc.stateDict.empty()) {
            // A quantized model's weights are packed (torch.ScriptObject, tuples of quantized
            // tensors), not a dict of tensors: say that, not merely that there is nothing.
            if (const std::string q = quantizedTensors(); !q.empty())
                throw FormatError("no state dict of plain tensors: the file holds a quantized model's packed "
                                  "weights, " + q + ", and quantized tensors cannot be converted yet (convert the "
                                  "float model from before quantization, or dequantize the weights in Python first)");
            if (!m_doc.noWeightsReason.empty())
                throw FormatError("no model weights to convert: " + m_doc.noWeightsReason);
            throw FormatError("no state dict found: nothing to convert");
        }
        for (const auto &t : m_doc.stateDict)
            m_tensors.emplace_back(t.name, t.value);
        if (m_o.pruneRemove)
            applyPruningToWeights();
        if (m_o.lora)
            mergeLora();
        // (Aliases a safetensors file written by this tool recorded in its metadata are in the state
        // dict already: the reader makes each the tensor it names.)
        if (m_doc.stateDictSource == "dict")
            if (auto sd = findPath(m_doc.root, m_doc.stateDictPath);
                sd && sd->isDict() && sd->state() && sd->state()->isDict())
                m_metadata = sd->state()->get("_metadata");
        if (m_doc.stateDictSource == "module_tree")
            if (auto module = findPath(m_doc.root, m_doc.stateDictPath))
                m_metadata = moduleVersions(*module);
        if (!m_metadata)
            m_metadata = recordedStateDictMetadata();
        // Entries of the state dict that are not tensors (a step counter kept beside the weights).
        if (m_doc.stateDictSource == "dict")
            if (auto sd = findPath(m_doc.root, m_doc.stateDictPath); sd && sd->isDict())
                for (const auto &e : sd->entries())
                    if (e.key && e.value && !e.value->isTensor() && !notePackedEntry(*sd, keyText(*e.key), e.value))
                        m_plan.lost.push_back({(m_doc.stateDictPath.empty() ? "" : pathText(m_doc.stateDictPath) + "/") +
                                                   keyText(*e.key),
                                               "a non-tensor value (" + e.value->typeName() + ") among the weights; only tensors are written"});
        if (m_o.promoteEma)
            promoteEma();
        // Drop by pattern.
        if (!m_o.drops.empty()) {
            const auto matching = [&](const std::string &name) {
                return std::find_if(m_o.drops.begin(), m_o.drops.end(), [&](const std::string &p) {
                    return ::fnmatch(p.c_str(), name.c_str(), 0) == 0;
                });
            };
            // A quantized layer's packed (weight, bias) is one entry to torch, under the tuple's key:
            // matched there, it goes whole (its tensors are named key.0, key.1 only here).
            std::vector<bool> tupleDropped(m_packedTuples.size(), false);
            for (std::size_t i = 0; i < m_packedTuples.size(); ++i)
                if (const auto it = matching(m_packedTuples[i].key); it != m_o.drops.end()) {
                    tupleDropped[i] = true;
                    m_plan.dropped.push_back({m_packedTuples[i].key, "matches --drop " + *it +
                                                                        " (a quantized layer's packed weight and bias)"});
                }
            std::vector<std::pair<std::string, ValuePtr>> kept;
            for (auto &t : m_tensors) {
                if (const auto packed = m_packedOf.find(t.second.get());
                    packed != m_packedOf.end() && tupleDropped[packed->second.first])
                    continue;
                const auto it = matching(t.first);
                if (it != m_o.drops.end())
                    m_plan.dropped.push_back({t.first, "matches --drop " + *it});
                else
                    kept.push_back(std::move(t));
            }
            m_tensors = std::move(kept);
        }
        // AveragedModel's own counter (n_averaged) beside its "module." entries is no key of the
        // averaged model: the prefix is still the wrapper's, and stripping it leaves the counter out
        // (the model's load_state_dict would refuse it as an unexpected key).
        std::vector<std::string> keys;
        keys.reserve(m_tensors.size());
        for (const auto &t : m_tensors)
            keys.push_back(t.first);
        const std::size_t counter = averagedModelCounter(keys);
        // A transformers model (config.json with a model_type beside it) keeps its base model under
        // the attribute `model` (LlamaForCausalLM.model): "model." is part of its names, and
        // stripping it would break load_state_dict, so it is not offered there.
        bool transformers = false;
        if (m_doc.sidecar && m_doc.sidecar->isDict())
            for (const auto &e : m_doc.sidecar->entries())
                transformers = transformers || (e.key && keyText(*e.key) == "model_type");
        for (const char *p : {"module.", "_orig_mod.", "model."})
            if (!(transformers && std::string_view(p) == "model.") && !m_tensors.empty() && std::all_of(m_tensors.begin(), m_tensors.end(), [&](const auto &t) {
                    return t.first.starts_with(p) || (counter != std::string::npos && t.first == keys[counter]);
                }))
                m_plan.detectedPrefixes.push_back(p);
        const std::string strip = normalisedPrefix(m_o.strip);
        if (counter != std::string::npos && strip == "module.") {
            m_plan.dropped.push_back({keys[counter], "torch.optim.swa_utils.AveragedModel's count of the models "
                                                      "averaged, not a weight of the model under 'module.'"});
            m_tensors.erase(m_tensors.begin() + static_cast<std::ptrdiff_t>(counter));
        }
        const std::string add = normalisedPrefix(m_o.add);
        if (!strip.empty()) {
            std::size_t without = 0;
            for (auto &t : m_tensors) {
                if (t.first.starts_with(strip))
                    t.first = t.first.substr(strip.size());
                else
                    ++without;
            }
            if (without)
                m_plan.warnings.push_back(std::to_string(without) + " keys do not start with '" + strip +
                                          "' and keep their names");
            if (without == m_tensors.size())
                throw FormatError("no key starts with '" + strip + "'" +
                                  (m_plan.detectedPrefixes.empty()
                                       ? std::string()
                                       : " (keys start with '" + m_plan.detectedPrefixes[0] + "')"));
            std::erase(m_plan.detectedPrefixes, strip);
        }
        if (!add.empty())
            for (auto &t : m_tensors)
                t.first = add + t.first;
        std::set<std::string> names;
        for (const auto &t : m_tensors)
            if (!names.insert(t.first).second)
                throw FormatError("two keys would both be named '" + t.first + "' after the prefix edits");
        if (m_tensors.empty())
            throw FormatError("every key was dropped: nothing to write");
        if (m_metadata && m_metadata->isDict() && (!strip.empty() || !add.empty())) {
            auto md = Value::dict();
            md->setPythonClass(m_metadata->pythonClass());
            const std::string stripBare = strip.empty() ? "" : strip.substr(0, strip.size() - 1);
            for (const auto &e : m_metadata->entries()) {
                if (!e.key || !e.key->isString())
                    continue;
                std::string k = e.key->text();
                if (!strip.empty()) {
                    if (k == stripBare)
                        k.clear();
                    else if (k.starts_with(strip))
                        k = k.substr(strip.size());
                    else if (k.empty())
                        continue; // the wrapper's own entry has no place any more
                }
                if (!add.empty())
                    k = k.empty() ? add.substr(0, add.size() - 1) : add + k;
                md->entries().push_back({Value::string(k), e.value});
            }
            if (!add.empty()) {
                // The wrapper (DataParallel, DDP, a plain Module) records nn.Module's version 1.
                auto wrapper = Value::dict();
                wrapper->entries().push_back({Value::string("version"), Value::integer(1)});
                md->entries().insert(md->entries().begin(), {Value::string(""), wrapper});
            }
            m_metadata = md;
        }
        resolvePackedEntries(strip, add);
        // Quantized tensors are written as torch.save writes them (_rebuild_qtensor), which
        // safetensors has no form for: there every one is named at once, with the options that
        // leave them out.
        std::string quantized, drops;
        std::set<std::size_t> tuplesNamed;
        int quantizedCount = 0;
        for (const auto &t : m_tensors)
            if (t.second->tensorRef()->quantization) {
                if (++quantizedCount <= 8) {
                    quantized += (quantized.empty() ? "'" : ", '") + t.first + "' (" +
                                 std::string(dtypeName(t.second->tensorRef()->dtype)) + ")";
                    // A packed tuple's tensors go by the key torch shows, its dtype beside it with it.
                    const auto packed = m_packedOf.find(t.second.get());
                    if (packed == m_packedOf.end())
                        drops += " --drop '" + t.first + "'";
                    else if (tuplesNamed.insert(packed->second.first).second)
                        drops += " --drop '" + packedOwner(m_packedTuples[packed->second.first].key) + "*'";
                }
            }
        // A quantized tensor held inside a quantized module's packed state (a torch.classes object
        // of a pickled model or a dynamic LSTM, a quantized Conv's pickled state) has no state-dict
        // entry of its own to be written to.
        for (const auto &t : m_tensors)
            if (t.second->tensorRef()->quantization && !m_directEntries.contains(t.second.get()) &&
                !m_packedOf.contains(t.second.get()))
                throw FormatError("tensor '" + t.first + "' (" + std::string(dtypeName(t.second->tensorRef()->dtype)) +
                                  ") is quantized and packed inside a quantized module, not a state-dict entry of its "
                                  "own, which cannot be written to a weights file yet (convert the quantized model's "
                                  "state_dict() as torch.save writes it, or the float model from before "
                                  "quantization)");
        if (quantizedCount && m_o.to == ConvertTarget::Safetensors)
            throw FormatError(std::string(quantizedCount == 1 ? "tensor " : "tensors ") + quantized +
                              (quantizedCount > 8 ? " and " + std::to_string(quantizedCount - 8) + " more" : "") +
                              (quantizedCount == 1 ? " is" : " are") +
                              " quantized, which safetensors has no dtype for (convert --to state-dict or checkpoint, "
                              "or leave " + (quantizedCount == 1 ? "it" : "them") + " out with" + drops +
                              (quantizedCount > 8 ? " ..., or a pattern" : "") + ")");
        if (quantizedCount) {
            const std::string them = quantizedCount == 1 ? "it" : "them";
            m_plan.warnings.push_back(std::to_string(quantizedCount) +
                                      (quantizedCount == 1 ? " quantized tensor is" : " quantized tensors are") +
                                      " written as torch.save writes " + them +
                                      " (torch._utils._rebuild_qtensor), which torch 1.13's "
                                      "torch.load(weights_only=True) refuses (weights_only=False loads " + them + ")" +
                                      (m_o.castTo ? "; --dtype leaves " + them + " as " +
                                                        (quantizedCount == 1 ? "it is" : "they are")
                                                  : std::string()));
        }
        for (const auto &t : m_tensors) {
            const auto &ref = t.second->tensorRef();
            if (!t.second->pythonClass().empty())
                m_plan.warnings.push_back("tensor '" + t.first + "' is a " + t.second->pythonClass() +
                                          "; it is written as a plain tensor");
            const bool special = ref->layout != TensorRef::Layout::Strided;
            if (special && m_o.to == ConvertTarget::Safetensors)
                throw FormatError("tensor '" + t.first + "' is " +
                                  (ref->layout == TensorRef::Layout::Meta        ? "a meta tensor"
                                   : ref->layout == TensorRef::Layout::SparseCsr ? "sparse (CSR)"
                                                                                 : "sparse") +
                                  ", which safetensors cannot hold (leave it out with --drop '" + t.first + "')");
            if (special) {
                if (auto b = blockerOf(t.second); !b.empty())
                    throw FormatError("tensor '" + t.first + "': " + b);
                // No one form of a CSR tensor loads in every torch: 1.x rebuilds it with
                // _rebuild_sparse_csr_tensor, which torch 2 no longer has (its _rebuild_sparse_tensor
                // takes the layout), and 1.x's _rebuild_sparse_tensor takes COO only.
                if (ref->layout == TensorRef::Layout::SparseCsr)
                    if (const auto problem = csrProblem(*ref); !problem.empty())
                        throw FormatError("tensor '" + t.first + "' is a sparse CSR tensor torch refuses to load: " +
                                          problem + " (leave it out with --drop '" + t.first + "')");
                if (ref->layout == TensorRef::Layout::SparseCsr)
                    m_plan.warnings.push_back(
                        "tensor '" + t.first + "' is sparse CSR: written as the source holds it, with torch._utils." +
                        (ref->rebuild == "_rebuild_sparse_tensor"
                             ? std::string("_rebuild_sparse_tensor, which torch 2 loads and torch 1.x does not")
                             : std::string("_rebuild_sparse_csr_tensor, which torch 1.x loads and torch 2 does not")));
            } else {
                if (!ref->storage)
                    throw FormatError("tensor '" + t.first + "' has no storage");
                if (m_o.to != ConvertTarget::Safetensors && ref->dtype != ref->storage->dtype && !ref->storage->untyped)
                    throw FormatError("tensor '" + t.first + "' is " + std::string(dtypeName(ref->dtype)) + " on a " +
                                      std::string(dtypeName(ref->storage->dtype)) + " storage, which cannot be written");
                if (m_o.to != ConvertTarget::Safetensors && dtypeStorageClass(ref->dtype).empty())
                    noteNewDType(ref->dtype);
                if (!ref->problem.empty())
                    throw FormatError("tensor '" + t.first + "': " + ref->problem);
            }
            m_plan.kept.push_back(t.first);
        }
    }

    // Class names that do not count the model's outputs are said now, not first by predict: the
    // outputs a sample gets are those of the architecture predict would run (the package's spec, a
    // module tree, an MLP read from the weights), propagated from the input it reads. Nothing is
    // said where that architecture cannot be found or does not give one score per class.
    void checkClassCount()
    {
        Document edited = m_doc;
        edited.stateDict.clear();
        for (const auto &[name, v] : m_tensors)
            edited.stateDict.push_back({name, v});
        std::int64_t width = 0;
        std::string layer;
        try {
            const Architecture arch = resolveArchitecture(edited, {});
            if (arch.root.type.empty() || arch.inputShape.empty() ||
                std::find(arch.inputShape.begin(), arch.inputShape.end(), -1) != arch.inputShape.end())
                return;
            std::vector<std::int64_t> input{1};
            input.insert(input.end(), arch.inputShape.begin(), arch.inputShape.end());
            const auto out = propagateShape(arch.root, input);
            if (out.size() != 2)
                return;  // not one score per class (a feature map): no count to compare
            width = out[1];
            const auto leaves = leavesInOrder(arch.root);
            for (auto it = leaves.rbegin(); it != leaves.rend(); ++it)
                if (!(*it)->tensors.empty()) {
                    layer = (*it)->path.empty() ? (*it)->type : "'" + (*it)->path + "' (" + (*it)->type + ")";
                    break;
                }
        } catch (const std::exception &) {
            return;
        }
        const auto names = static_cast<std::int64_t>(m_o.classes->size());
        if (width <= 0 || names == width)
            return;
        m_plan.warnings.push_back("--class-names gives " + std::to_string(names) + (names == 1 ? " name" : " names") +
                                  " but the model gives " + std::to_string(width) +
                                  (width == 1 ? " output" : " outputs") + " a sample" +
                                  (layer.empty() ? std::string() : " (its last layer with weights is " + layer + ")") +
                                  (width == 1 && names == 2
                                       ? ": a binary classifier's one logit, which predict shows under the first name "
                                         "although its sigmoid is usually the second class's probability"
                                       : ": the names will not match the outputs"));
    }

    // A given --preprocessing that predict could not use is said now, as class names that do not
    // count the outputs are: what inferencemeta's preprocessingOf finds wrong in it (a zero std,
    // lengths that differ, not numbers), and a mean/std of another length than the model's input
    // features (an MLP's inputs, an image model's channels; one value broadcasts to all).
    void checkPreprocessing()
    {
        Document given;
        given.path = m_doc.path;
        given.root = Value::dict();
        given.root->entries().push_back({Value::string("preprocessing"), jsonToValue(*m_o.preprocess)});
        const Preprocessing p = preprocessingOf(given);
        if (!p.problem.empty()) {
            std::string why = p.problem;
            if (why.starts_with("preprocessing: "))
                why.erase(0, std::string_view("preprocessing: ").size());
            m_plan.warnings.push_back("--preprocessing: " + why + " (predict reads it so)");
            return;
        }
        if (!p.present())
            return;  // no mean/std in it (other picture steps): nothing to count
        std::set<std::size_t> lengths;
        for (const auto *v : {&p.mean, &p.std})
            if (v->size() != 1)
                lengths.insert(v->size());
        if (lengths.empty())
            return;
        Document edited = m_doc;
        edited.stateDict.clear();
        for (const auto &[name, v] : m_tensors)
            edited.stateDict.push_back({name, v});
        std::int64_t inputs = 0;
        bool image = false;
        try {
            const Architecture arch = resolveArchitecture(edited, {});
            if (arch.inputShape.empty() || arch.inputShape[0] <= 0)
                return;
            inputs = arch.inputShape[0];
            image = arch.inputShape.size() > 1;
        } catch (const std::exception &) {
            return;
        }
        const auto n = static_cast<std::int64_t>(*lengths.rbegin());
        if (lengths.size() == 1 && n == inputs)
            return;
        m_plan.warnings.push_back("--preprocessing gives " + std::to_string(n) + " mean/std values but the model takes " +
                                  std::to_string(inputs) + (image ? " input channels" : " input features") +
                                  ": they do not match its inputs (give one value for all, or one per " +
                                  (image ? "channel" : "feature") + ")");
    }

    // A dtype torch 1.x has no typed storage for is written as newer torch writes it; say which
    // torch reads it back.
    void noteNewDType(DType d)
    {
        const char *since = d == DType::UInt16 || d == DType::UInt32 || d == DType::UInt64 ? "2.3"
                            : d == DType::Complex32                                       ? "2.0"
                                                                                          : "2.1";
        const std::string w = std::string(dtypeName(d)) + " tensors are written as torch " + since +
                              " writes them (_rebuild_tensor_v3): torch.load needs torch " + since + " or newer";
        if (std::find(m_plan.warnings.begin(), m_plan.warnings.end(), w) == m_plan.warnings.end())
            m_plan.warnings.push_back(w);
    }

    // A set of weights whose path says EMA, measured against the model's weights: its tensors by
    // the model's names (a `module.` prefix one side has and the other lacks set aside) and why it
    // does not fit them, if it does not.
    struct EmaCandidate {
        std::string where;
        std::map<std::string, ValuePtr> weights;  // by the model's names
        std::size_t common = 0;                   // model keys it holds, each with the model's shape
        std::string unfit;                        // empty when it fits
        bool namesModel = false;                  // its path is the model's with "ema" added
    };

    // Lower-case letters and digits of a path, without a leading or trailing "ema": 'netG_ema',
    // 'ema_netG' and 'netG' all read "netg".
    static std::string setStem(const std::string &text)
    {
        std::string s;
        for (unsigned char c : text)
            if (std::isalnum(c))
                s += static_cast<char>(std::tolower(c));
        if (s.starts_with("ema"))
            s.erase(0, 3);
        else if (s.ends_with("ema"))
            s.erase(s.size() - 3);
        return s;
    }

    EmaCandidate measureEma(const KeyPath &path) const
    {
        EmaCandidate c;
        c.where = pathText(path);
        if (!m_doc.stateDictPath.empty()) {
            const auto &own = m_doc.stateDictPath;
            c.namesModel = (!setStem(pathText(own)).empty() && setStem(pathText(own)) == setStem(c.where)) ||
                           (!setStem(own.back()).empty() && setStem(own.back()) == setStem(path.back()));
        }
        const ValuePtr ema = findPath(m_doc.root, path);
        if (!ema || !ema->isDict()) {
            c.unfit = "it is a module tree, which --ema cannot take weights from yet";
            return c;
        }
        bool allModule = true, anyModule = false;
        for (const auto &e : ema->entries())
            if (e.key && e.value && e.value->isTensor() && !isAveragedModelCounter(keyText(*e.key))) {
                const std::string k = keyText(*e.key);
                c.weights[k] = e.value;
                allModule = allModule && k.starts_with("module.");
                anyModule = anyModule || k.starts_with("module.");
            }
        if (c.weights.empty()) {
            c.unfit = "it holds no tensors";
            return c;
        }
        const bool modelModule = std::all_of(m_tensors.begin(), m_tensors.end(),
                                             [](const auto &t) { return t.first.starts_with("module."); });
        if (allModule && !modelModule) {
            std::map<std::string, ValuePtr> stripped;
            for (auto &[k, v] : c.weights)
                stripped[k.substr(7)] = v;
            c.weights = std::move(stripped);
        } else if (!anyModule && modelModule && !m_tensors.empty()) {
            std::map<std::string, ValuePtr> prefixed;
            for (auto &[k, v] : c.weights)
                prefixed["module." + k] = v;
            c.weights = std::move(prefixed);
        }
        for (const auto &t : m_tensors) {
            auto it = c.weights.find(t.first);
            if (it == c.weights.end())
                continue;
            const auto &a = *t.second->tensorRef();
            const auto &b = *it->second->tensorRef();
            if (a.shape != b.shape) {
                c.unfit = "'" + t.first + "' has shape " + shapeText(b.shape) + " there but " + shapeText(a.shape) +
                          " in the model's weights";
                return c;
            }
            ++c.common;
        }
        if (!c.common)
            c.unfit = "none of its tensor names is one of the model's (it holds '" + c.weights.begin()->first +
                      "', the model '" + (m_tensors.empty() ? std::string() : m_tensors.front().first) + "')";
        return c;
    }

    // The EMA weights that belong to the model's: of the sets whose path says EMA, those whose
    // tensors have the model's names and shapes (a file may hold the EMA of several networks, a
    // GAN's generator and discriminator, in any order); of several, the one named after the model's
    // set ('netG' -> 'netG_ema', 'ema_netG'). Refused, naming the sets, when none or several fit.
    void promoteEma()
    {
        std::vector<EmaCandidate> found;
        for (const auto &p : m_doc.otherWeightSets) {
            std::string lower = pathText(p);
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            if (!p.empty() && lower.find("ema") != std::string::npos)
                found.push_back(measureEma(p));
        }
        if (found.empty())
            throw FormatError("--ema: the file holds no EMA weights");
        const std::string model = m_doc.stateDictPath.empty() ? std::string("the model's weights")
                                                              : "the model's weights under '" +
                                                                    pathText(m_doc.stateDictPath) + "'";
        std::vector<const EmaCandidate *> fits;
        for (const auto &c : found)
            if (c.unfit.empty())
                fits.push_back(&c);
        if (fits.empty()) {
            std::string why;
            for (const auto &c : found)
                why += (why.empty() ? "" : "; ") + ("'" + c.where + "': " + c.unfit);
            throw FormatError("--ema: no EMA weights in the file fit " + model + " (" + why + ")");
        }
        // A set that holds every weight of the model before one that holds some.
        if (std::any_of(fits.begin(), fits.end(), [&](const EmaCandidate *c) { return c->common == m_tensors.size(); }))
            std::erase_if(fits, [&](const EmaCandidate *c) { return c->common != m_tensors.size(); });
        if (fits.size() > 1) {
            std::vector<const EmaCandidate *> named;
            for (const auto *c : fits)
                if (c->namesModel)
                    named.push_back(c);
            if (named.size() != 1) {
                std::string names;
                for (const auto *c : fits)
                    names += (names.empty() ? "'" : "', '") + c->where;
                throw FormatError("--ema: several EMA weights fit " + model + " (" + names +
                                  "') and none is the one named after it: convert the one you mean with --weights "
                                  "PATH instead");
            }
            fits = named;
        }
        const EmaCandidate &chosen = *fits.front();
        auto weights = chosen.weights;
        const std::string &where = chosen.where;
        std::size_t replaced = 0;
        for (auto &t : m_tensors) {
            auto it = weights.find(t.first);
            if (it == weights.end())
                continue;
            t.second = it->second;
            ++replaced;
            weights.erase(it);
        }
        if (replaced < m_tensors.size())
            m_plan.warnings.push_back(std::to_string(m_tensors.size() - replaced) +
                                      " keys have no EMA value and keep the model's weights");
        if (!weights.empty())
            m_plan.warnings.push_back(std::to_string(weights.size()) + " EMA keys match no model key and are left out");
        m_plan.lost.push_back(
            {pathText(m_doc.stateDictPath).empty() ? "(model weights)" : pathText(m_doc.stateDictPath),
             "replaced by the EMA weights under '" + where + "' (--ema)"});
        m_usedRootKeys.insert(where.substr(0, where.find('/')));
    }

    // The state dict as torch.save(model.state_dict()) writes it: plain tensors (no parameters)
    // in an OrderedDict with its _metadata; tied tensors stay one object.
    ValuePtr stateDictValue()
    {
        auto d = Value::dict();
        d->setPythonClass("collections.OrderedDict");
        std::unordered_map<const Value *, ValuePtr> made;
        const auto plain = [&](const ValuePtr &v) {
            auto &p = made[v.get()];
            if (!p)
                p = plainTensor(v);
            return p;
        };
        // A quantized layer's packed (weight, bias) goes back into its tuple, after its dtype.
        std::vector<bool> dtypeDone(m_packedDtypes.size(), false), tupleDone(m_packedTuples.size(), false);
        for (const auto &[name, v] : m_tensors) {
            const auto packed = m_packedOf.find(v.get());
            if (packed == m_packedOf.end() || m_packedTuples[packed->second.first].name.empty()) {
                d->entries().push_back({Value::string(name), plain(v)});
                continue;
            }
            const std::size_t index = packed->second.first;
            if (tupleDone[index])
                continue;
            tupleDone[index] = true;
            const auto &t = m_packedTuples[index];
            constexpr std::string_view kPacked = "_packed_params";
            const std::string owner =
                t.name.ends_with(kPacked) ? t.name.substr(0, t.name.size() - kPacked.size()) : std::string();
            for (std::size_t i = 0; i < m_packedDtypes.size(); ++i)
                if (!dtypeDone[i] && m_packedDtypes[i].first == owner + "dtype") {
                    dtypeDone[i] = true;
                    d->entries().push_back({Value::string(m_packedDtypes[i].first), m_packedDtypes[i].second});
                }
            std::vector<ValuePtr> items;
            for (const auto &x : t.source->items())
                items.push_back(x->isTensor() ? plain(x) : Value::none());
            d->entries().push_back({Value::string(t.name), Value::tuple(std::move(items))});
        }
        for (std::size_t i = 0; i < m_packedDtypes.size(); ++i)
            if (!dtypeDone[i])
                d->entries().push_back({Value::string(m_packedDtypes[i].first), m_packedDtypes[i].second});
        if (m_metadata) {
            auto state = Value::dict();
            state->entries().push_back({Value::string("_metadata"), m_metadata});
            d->setState(state);
        }
        return d;
    }

    ValuePtr optimizerValue() { return m_doc.optimizer; }

    // "--weights 'netD'" for each other set of weights under the root key `k` ("or" between
    // them); empty when none is.
    std::string otherWeightSetsUnder(const std::string &k) const
    {
        std::string out;
        for (const auto &p : m_doc.otherWeightSets)
            if (!p.empty() && p.front() == k)
                out += (out.empty() ? "" : " or ") + ("--weights '" + pathText(p) + "'");
        return out;
    }

    // A value as a weights-only file can hold it, losing nothing torch 1.13 can read back: a numpy
    // array of uint16 or uint32 (np.random.get_state()'s key), a type torch 1.13 has no tensor of,
    // becomes an int32 or int64 tensor of the same values, and an argparse.Namespace (a training
    // script's args) the dict of its fields; each said once, with where. Anything else is returned
    // as it is (the same object when nothing under it changes, so sharing stays).
    ValuePtr weightsOnlyForm(const ValuePtr &v, const std::string &path)
    {
        std::unordered_map<const Value *, ValuePtr> done;
        return weightsOnlyForm(v, path, done, 0);
    }

    ValuePtr weightsOnlyForm(const ValuePtr &v, const std::string &path,
                             std::unordered_map<const Value *, ValuePtr> &done, int depth)
    {
        if (!v || depth > 64)
            return v;
        if (const auto it = done.find(v.get()); it != done.end())
            return it->second;
        done[v.get()] = v;  // a container met again while it is walked (a cycle) stays itself
        using K = Value::Kind;
        ValuePtr out = v;
        const std::string prefix = path.empty() ? path : path + "/";
        if (v->isTensor()) {
            const auto &r = v->tensorRef();
            if (r && r->rebuild == "numpy.ndarray" && r->storage && r->layout == TensorRef::Layout::Strided &&
                !r->quantization && r->problem.empty() &&
                (r->dtype == DType::UInt16 || r->dtype == DType::UInt32)) {
                const bool narrow = r->dtype == DType::UInt16;
                const DType to = narrow ? DType::Int32 : DType::Int64;
                std::vector<std::uint8_t> bytes;
                try {
                    bytes = contiguousBytes(*r);
                } catch (const FormatError &) {
                    return out;  // its storage is short: refused later, saying so
                }
                const std::size_t n = bytes.size() / dtypeSize(r->dtype);
                auto wide = std::make_shared<std::vector<std::uint8_t>>(n * dtypeSize(to));
                for (std::size_t i = 0; i < n; ++i) {
                    if (narrow) {
                        std::uint16_t x;
                        std::memcpy(&x, bytes.data() + 2 * i, 2);
                        const std::int32_t y = x;
                        std::memcpy(wide->data() + 4 * i, &y, 4);
                    } else {
                        std::uint32_t x;
                        std::memcpy(&x, bytes.data() + 4 * i, 4);
                        const std::int64_t y = x;
                        std::memcpy(wide->data() + 8 * i, &y, 8);
                    }
                }
                auto storage = std::make_shared<StorageRef>();
                storage->key = r->storage->key + "/" + std::string(dtypeName(to));
                storage->dtype = to;
                storage->location = "cpu";
                storage->setBytes({wide->data(), wide->size()});
                storage->keepAlive = wide;
                storage->declaredNumel = static_cast<std::int64_t>(n);
                auto ref = std::make_shared<TensorRef>(*r);
                ref->dtype = to;
                ref->storage = storage;
                ref->storageOffset = 0;
                ref->strides.assign(ref->shape.size(), 1);
                for (std::size_t d = ref->shape.size(); d-- > 1;)
                    ref->strides[d - 1] = ref->strides[d] * std::max<std::int64_t>(1, ref->shape[d]);
                ref->rebuild.clear();  // a torch tensor now: said below, not again as a numpy array
                out = Value::tensor(ref);
                const std::string w = std::string(dtypeName(r->dtype)) +
                                      " numpy arrays (the first at '" + path +
                                      "') are written as " + std::string(dtypeName(to)) +
                                      " tensors of the same values: torch 1.13 has no " +
                                      std::string(dtypeName(r->dtype)) + " tensor (np.random.set_state takes "
                                      "such a key as it is; .numpy().astype(np." + std::string(dtypeName(r->dtype)) +
                                      ") gives the array back)";
                if (std::none_of(m_plan.warnings.begin(), m_plan.warnings.end(), [&](const std::string &x) {
                        return x.starts_with(std::string(dtypeName(r->dtype)) + " numpy arrays (");
                    }))
                    m_plan.warnings.push_back(w);
            }
        } else if (v->kind() == K::Object && className(*v) == "argparse.Namespace" && v->state() &&
                   v->state()->isDict() && (!v->args() || v->args()->items().empty()) && v->items().empty() &&
                   v->entries().empty()) {
            auto fields = Value::dict();
            for (const auto &e : v->state()->entries())
                fields->entries().push_back(
                    {e.key, weightsOnlyForm(e.value, prefix + (e.key ? keyText(*e.key) : std::string()), done,
                                            depth + 1)});
            out = fields;
            m_plan.warnings.push_back("'" + path + "' is an argparse.Namespace, written as the dict of its " +
                                      std::to_string(fields->entries().size()) +
                                      " fields (argparse.Namespace(**d) makes it again): the target cannot hold "
                                      "the object itself");
        } else if (v->kind() == K::Object && isPlainDictSubclass(*v)) {
            // A dict subclass (Lightning's hyper_parameters, an AttributeDict): its items are all
            // it holds, so the plain dict of them loses nothing but the class.
            auto d = Value::dict();
            for (const auto &e : v->entries())
                d->entries().push_back(
                    {e.key, weightsOnlyForm(e.value, prefix + (e.key ? keyText(*e.key) : std::string()), done,
                                            depth + 1)});
            out = d;
            m_plan.warnings.push_back("'" + path + "' is a " + className(*v) + " (a dict subclass), written as the "
                                      "plain dict of its " + std::to_string(d->entries().size()) +
                                      " entries: the target cannot hold the object itself");
        } else if (v->kind() == K::Tuple || v->kind() == K::List) {
            std::vector<ValuePtr> items;
            bool changed = false;
            for (std::size_t i = 0; i < v->items().size(); ++i) {
                items.push_back(weightsOnlyForm(v->items()[i], prefix + std::to_string(i), done, depth + 1));
                changed = changed || items.back() != v->items()[i];
            }
            if (changed && v->pythonClass().empty() && !v->state()) {
                out = v->kind() == K::Tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
            }
        } else if (v->kind() == K::Dict) {
            std::vector<Value::DictEntry> entries;
            bool changed = false;
            for (const auto &e : v->entries()) {
                entries.push_back(
                    {e.key, weightsOnlyForm(e.value, prefix + (e.key ? keyText(*e.key) : std::string()), done,
                                            depth + 1)});
                changed = changed || entries.back().value != e.value;
            }
            if (changed) {
                auto d = Value::dict();
                d->entries() = std::move(entries);
                if (!v->pythonClass().empty())
                    d->setPythonClass(v->pythonClass());
                if (v->state())
                    d->setState(v->state());
                out = d;
            }
        }
        done[v.get()] = out;
        return out;
    }

    // Root entries of the source not used by the target, each carried into `into` (when given
    // and it can go into a weights-only file) or listed as lost. With `topLevel`, an entry whose
    // key the target's own layout does not use (`layoutKeys`) goes there under its own key instead:
    // a checkpoint keeps 'scheduler', 'scaler', 'rng_state' or 'ema_state_dict' where the code that
    // resumes training reads them (ckpt['scheduler']), and only a clash goes into `into`.
    void accountRest(const ValuePtr &into, const std::string &intoName, const std::string &why,
                     const ValuePtr &topLevel = nullptr, std::initializer_list<const char *> layoutKeys = {})
    {
        if (!m_doc.root || !m_doc.root->isDict() || m_doc.stateDictPath.empty())
            return;
        for (const auto &e : m_doc.root->entries()) {
            if (!e.key)
                continue;
            const std::string k = keyText(*e.key);
            if (m_usedRootKeys.contains(k))
                continue;
            if (m_o.dropTraining && isTrainingStateKey(k)) {
                m_plan.lost.push_back({k, "training state left out (--drop-optimizer)"});
                continue;
            }
            if (!into) {
                // Another network's weights (a GAN's discriminator, MTCNN's pnet) are tensors too:
                // say that they are not the set written, rather than that they are not tensors.
                const bool otherWeights = std::any_of(m_doc.otherWeightSets.begin(), m_doc.otherWeightSets.end(),
                                                      [&k](const KeyPath &p) { return !p.empty() && p.front() == k; });
                m_plan.lost.push_back({k, otherWeights
                                              ? "another set of weights: the file's model weights, under '" +
                                                    pathText(m_doc.stateDictPath) +
                                                    "', are the ones written; convert this one on its own with " +
                                                    otherWeightSetsUnder(k)
                                              : why});
                continue;
            }
            std::string editsSaid;  // the model's edits applied to a weight set carried along
            const ValuePtr value = editedWeightSet(k, weightsOnlyForm(e.value, k), editsSaid);
            if (auto b = blockerOf(value); !b.empty()) {
                m_plan.lost.push_back({k, b});
                continue;
            }
            if (isEmptyPackageField(k, value)) {
                m_plan.lost.push_back({k, "None in the source (an empty field): nothing to keep"});
                continue;
            }
            const bool clash =
                std::any_of(layoutKeys.begin(), layoutKeys.end(), [&k](const char *l) { return k == l; });
            if (topLevel && !clash) {
                topLevel->entries().push_back({Value::string(k), value});
                m_plan.carried.push_back(k + editsSaid);
                continue;
            }
            into->entries().push_back({Value::string(k), value});
            m_plan.carried.push_back(intoName + "/" + k + editsSaid);
            if (topLevel)
                m_plan.warnings.push_back("'" + k + "' is a key of the checkpoint's own layout, which holds " +
                                          "the converted value there: the source's '" + k + "' is kept as '" +
                                          intoName + "/" + k + "'");
        }
    }

    // The name the model's edits give the source key `k` (--drop, --strip-prefix, --add-prefix, as
    // collectStateDict applies them); none when --drop leaves it out.
    std::optional<std::string> editedName(const std::string &k) const
    {
        for (const auto &p : m_o.drops)
            if (::fnmatch(p.c_str(), k.c_str(), 0) == 0)
                return std::nullopt;
        std::string name = k;
        const std::string strip = normalisedPrefix(m_o.strip);
        if (!strip.empty() && name.starts_with(strip))
            name.erase(0, strip.size());
        return normalisedPrefix(m_o.add) + name;
    }

    // Another set of weights carried along (a checkpoint's 'ema_state_dict') gets the edits the
    // model's weights got, so that swapping it in (model.load_state_dict(ckpt['ema_state_dict']))
    // still fits the written model: its keys renamed and dropped as the model's, its floating
    // tensors cast as the model's are. That holds only for a set with the model's own keys; one
    // that has other keys is carried as it is, and the plan says so. `said` receives the words the
    // plan adds to the entry carried. Anything that is not a root-level set of weights is returned
    // as it is.
    ValuePtr editedWeightSet(const std::string &k, const ValuePtr &v, std::string &said)
    {
        const std::string strip = normalisedPrefix(m_o.strip), add = normalisedPrefix(m_o.add);
        std::vector<std::string> edits;
        if (!m_o.drops.empty())
            edits.push_back("--drop");
        if (!strip.empty())
            edits.push_back("--strip-prefix " + strip);
        if (!add.empty())
            edits.push_back("--add-prefix " + add);
        if (m_o.castTo)
            edits.push_back("--dtype " + std::string(dtypeName(*m_o.castTo)));
        if (edits.empty() || !v)
            return v;
        std::string editList;
        for (const auto &e : edits)
            editList += (editList.empty() ? "" : ", ") + e;
        const bool rootSet = std::any_of(m_doc.otherWeightSets.begin(), m_doc.otherWeightSets.end(),
                                         [&k](const KeyPath &p) { return p.size() == 1 && p.front() == k; });
        if (!rootSet) {
            for (const auto &p : m_doc.otherWeightSets)
                if (p.size() > 1 && p.front() == k) {
                    m_plan.warnings.push_back("'" + pathText(p) + "' is another set of weights, carried as it is: " +
                                              editList + " changed the model's weights only");
                    break;
                }
            return v;
        }
        std::set<std::string> model, theirs;
        for (const auto &t : m_doc.stateDict)
            model.insert(t.name);
        if (v->isDict())
            for (const auto &e : v->entries())
                if (e.key && e.key->isString() && e.value && e.value->isTensor())
                    theirs.insert(e.key->text());
        if (!v->isDict()) {
            m_plan.warnings.push_back("'" + k + "' is another set of weights, carried as it is: " + editList +
                                      " changed the model's weights only");
            return v;
        }
        if (theirs != model) {
            std::size_t common = 0;
            for (const auto &n : theirs)
                common += model.count(n);
            m_plan.warnings.push_back("'" + k + "' is another set of weights whose keys are not the model's (" +
                                      std::to_string(common) + " of its " + std::to_string(theirs.size()) +
                                      " keys are): it is carried as it is, without the " + editList +
                                      " the model's weights got, so it no longer fits the written model as it did");
            return v;
        }
        auto d = Value::dict();
        d->setPythonClass(v->pythonClass());
        std::size_t dropped = 0;
        for (const auto &e : v->entries()) {
            if (!e.key || !e.key->isString() || !e.value || !e.value->isTensor()) {
                d->entries().push_back(e);
                continue;
            }
            const auto name = editedName(e.key->text());
            if (!name) {
                ++dropped;
                continue;
            }
            d->entries().push_back({Value::string(*name), e.value});
            m_carriedWeights.push_back(e.value);
        }
        if (v->state()) {
            // Its _metadata names its modules as the model's did: the model's, edited, replaces it.
            auto state = v->state();
            if (m_metadata && state->isDict() && state->get("_metadata") && (!strip.empty() || !add.empty())) {
                auto edited = Value::dict();
                for (const auto &e : state->entries())
                    edited->entries().push_back(
                        {e.key, e.key && e.key->isString() && e.key->text() == "_metadata" ? m_metadata : e.value});
                state = edited;
            }
            d->setState(state);
        }
        said = " (with the model's edits, as its keys are the model's: " + editList +
               (dropped ? ", " + std::to_string(dropped) + " keys dropped" : std::string()) + ")";
        return d;
    }

    // Values the user gave that the target has no place for are an error, not a silent loss.
    void refuseValuesWithNoPlace() const
    {
        // An inference package carries its layers as a spec (its 'architecture' entry, which
        // predict and --to full-model read), not a TorchScript file.
        if (m_o.to == ConvertTarget::Inference && !m_o.architecture.scriptPath.empty())
            throw FormatError("--arch does not apply to --to inference: a package carries its layers as a spec "
                              "(--arch-spec), not a TorchScript file (--to torchscript writes the model with --arch)");
        const bool packageSpec = m_o.to == ConvertTarget::Inference;
        const std::pair<ConvertField, bool> given[] = {
            {ConvertField::ModelConfig, m_o.config.has_value()},
            {ConvertField::ClassNames, m_o.classes.has_value()},
            {ConvertField::Preprocessing, m_o.preprocess.has_value()},
            {ConvertField::Epoch, m_o.epochValue.has_value()},
            {ConvertField::TrainLoss, m_o.trainLoss.has_value()},
            {ConvertField::ValLoss, m_o.valLoss.has_value()},
            {ConvertField::Architecture,
             !packageSpec && (!m_o.architecture.scriptPath.empty() || !m_o.architecture.spec.empty())},
        };
        std::string misplaced;
        int count = 0;
        for (const auto &[field, isGiven] : given)
            if (isGiven && !targetWrites(m_o.to, field)) {
                misplaced += (misplaced.empty() ? "" : ", ") + convertFieldOption(field);
                ++count;
            }
        if (misplaced.empty())
            return;
        const char *metadataHint = "write metadata with --to checkpoint or inference";
        std::string why;
        switch (m_o.to) {
        case ConvertTarget::StateDict: why = std::string("a state dict holds only tensors (") + metadataHint + ")"; break;
        case ConvertTarget::Safetensors:
            why = std::string("safetensors holds the tensors and the source's own metadata (") + metadataHint + ")";
            break;
        case ConvertTarget::FullModel: why = std::string("a full model holds only the module (") + metadataHint + ")"; break;
        case ConvertTarget::Inference:
            why = "an inference package holds weights, config, preprocessing, class names and layers (a checkpoint "
                  "keeps the epoch and losses: --to checkpoint)";
            break;
        case ConvertTarget::Checkpoint:
            why = "a checkpoint is not built from an architecture (an architecture is for --to full-model)";
            break;
        }
        throw FormatError(misplaced + (count > 1 ? " do" : " does") + " not apply to --to " + convertTargetName(m_o.to) +
                          ": " + why);
    }

    // `key` from the user, else from the source, else None with a warning. A source entry that is
    // None (a field an earlier conversion wrote empty) is not a value to carry: it is said to be None.
    ValuePtr pick(const std::string &key, const ValuePtr &user, std::initializer_list<const char *> sourceKeys,
                  const std::string &hint)
    {
        std::string noneAt;  // the source entry that is None, when one is
        if (user) {
            m_plan.carried.push_back(key + " (given)");
            // What the given value replaces; Lightning's hyper_parameters is only a stand-in for a
            // model_config and stays an entry of its own.
            for (const char *s : sourceKeys)
                if (rootEntry(s) && std::string_view(s) != "hyper_parameters")
                    m_usedRootKeys.insert(s);
            return user;
        }
        for (const char *s : sourceKeys)
            if (auto v = rootEntry(s)) {
                m_usedRootKeys.insert(s);
                if (v->isNone()) {
                    if (noneAt.empty())
                        noneAt = s;
                    continue;
                }
                // A dict subclass or an argparse.Namespace as the plain dict of what it holds.
                const auto said = m_plan.warnings.size();
                const ValuePtr formed = weightsOnlyForm(v, s);
                if (auto b = blockerOf(formed); !b.empty()) {
                    m_plan.warnings.resize(said);
                    m_plan.lost.push_back({s, blockerOf(v)});
                    break;
                }
                m_plan.carried.push_back(std::string(s) == key ? key : key + " (from '" + s + "')");
                return formed;
            }
        for (const char *s : sourceKeys)
            if (auto v = infoEntry(s); v && !v->isNone() && blockerOf(v).empty()) {
                m_plan.carried.push_back(key + " (from 'additional_info/" + s + "')");
                m_takenFromInfo.insert(s);
                return v;
            }
        for (const char *s : sourceKeys)
            if (auto v = formatMetadataValue(m_doc, s); v && !v->isNone()) {
                m_plan.carried.push_back(key + " (from '__metadata__/" + s + "')");
                m_takenFromFormat.insert(s);
                return v;
            }
        m_plan.warnings.push_back(
            (noneAt.empty() ? key + " is not in the source"
                            : (noneAt == key ? key : key + " ('" + noneAt + "')") + " is None in the source") +
            "; written as None" + hint);
        return Value::none();
    }

    // A package that keeps its normalisation at the root ({'model': m, 'mean': [...], 'std': [...],
    // 'image_size': 224}): the entries gathered into the package's preprocessing dict, under their
    // own names, which predict reads its mean and std from.
    ValuePtr preprocessingFromRoot()
    {
        auto p = Value::dict();
        std::string names;
        for (const char *k : {"mean", "std", "image_size", "img_size", "input_size", "resize", "crop_size",
                              "interpolation"}) {
            const ValuePtr v = rootEntry(k);
            if (!v)
                continue;
            m_usedRootKeys.insert(k);
            const ValuePtr value = weightsOnlyForm(v, k);
            if (auto b = blockerOf(value); !b.empty()) {
                m_plan.lost.push_back({k, b});
                continue;
            }
            p->entries().push_back({Value::string(k), value});
            names += (names.empty() ? "'" : ", '") + std::string(k) + "'";
        }
        if (p->entries().empty()) {
            m_plan.warnings.push_back("preprocessing: the source's mean and std cannot be written; written as None "
                                      "(set it with --preprocessing)");
            return Value::none();
        }
        m_plan.carried.push_back("preprocessing (from " + names + ")");
        return p;
    }

    // The layers an inference package carries (its 'architecture' entry, the spec predict and
    // --to full-model build the model from): the --arch-spec given (checked against the weights),
    // else the source package's own, else the layers of a pickled module tree when the tree says
    // them exactly (standard layers in torch.nn.Sequential order, no forward code of its own);
    // null when none is known.
    ValuePtr packageArchitecture()
    {
        const bool renamed = !m_o.strip.empty() || !m_o.add.empty() || m_plan.dropped.size() > m_prunedMasks;
        Document edited = m_doc;
        edited.stateDict.clear();
        for (const auto &[name, v] : m_tensors)
            edited.stateDict.push_back({name, v});
        if (!m_o.architecture.spec.empty()) {
            ArchitectureRequest request = m_o.architecture;
            try {
                resolveArchitecture(edited, request);
            } catch (const FormatError &e) {
                std::string why = e.what();
                if (!edited.path.empty() && why.starts_with(edited.path + ": "))
                    why.erase(0, edited.path.size() + 2);
                throw FormatError("--arch-spec: " + why);
            }
            nlohmann::ordered_json spec;
            try {
                spec = nlohmann::ordered_json::parse(m_o.architecture.spec);
            } catch (const nlohmann::json::exception &) {
                throw FormatError("--arch-spec is not JSON");
            }
            if (rootEntry("architecture"))
                m_usedRootKeys.insert("architecture");
            m_plan.carried.push_back("architecture (given)");
            return jsonToValue(spec);
        }
        if (const ValuePtr own = rootEntry("architecture"); own && (own->isSequence() || own->isDict())) {
            m_usedRootKeys.insert("architecture");
            const ValuePtr value = weightsOnlyForm(own, "architecture");
            if (auto b = blockerOf(value); !b.empty()) {
                m_plan.lost.push_back({"architecture", b});
                return nullptr;
            }
            if (renamed)
                m_plan.warnings.push_back("the package's architecture names the weights as the source did; the "
                                          "prefix edits and --drop may make it not match them");
            m_plan.carried.push_back("architecture");
            return value;
        }
        if (m_doc.stateDictSource != "module_tree" || renamed)
            return nullptr;
        Architecture arch;
        try {
            arch = resolveArchitecture(edited, {});
        } catch (const FormatError &) {
            return nullptr;  // a tree with forward code of its own: its weights only, as said
        }
        if (arch.source != Architecture::Source::ModuleTree || !arch.exact)
            return nullptr;
        m_plan.carried.push_back("architecture (the module tree's " + std::to_string(leavesInOrder(arch.root).size()) +
                                 " layers, as a spec)");
        for (auto &l : m_plan.lost)
            if (l.reason.starts_with("the architecture (the pickled "))
                l.reason = "the pickled module tree is not written: its weights are, and its layers as the "
                           "package's architecture spec (--to full-model keeps the tree itself)";
        return jsonToValue(specOf(arch));
    }

    ValuePtr versionValue() { return pick("pytorch_version", nullptr, {"pytorch_version"}, ""); }

    // The fields an inference package writes as None when the source has none (inference below):
    // an empty one is no information, so a checkpoint made from the package does not keep it.
    static bool isEmptyPackageField(const std::string &k, const ValuePtr &v)
    {
        return v && v->isNone() &&
               (k == "preprocessing" || k == "input_mean" || k == "input_std" || k == "class_names");
    }

    ValuePtr timestampValue()
    {
        if (auto v = rootEntry("timestamp")) {
            m_usedRootKeys.insert("timestamp");
            m_plan.carried.push_back("timestamp");
            return v;
        }
        if (auto v = formatMetadataValue(m_doc, "timestamp")) {
            m_takenFromFormat.insert("timestamp");
            m_plan.carried.push_back("timestamp (from '__metadata__/timestamp')");
            return v;
        }
        return Value::string(isoNow());
    }

    // The targets that keep the weights under 'model_state_dict' say where they came from when the
    // source kept them elsewhere ('model', 'state_dict', a module tree, the file's root): code that
    // read ckpt['model'] must read ckpt['model_state_dict'] from the output.
    void sayWeightsMoved()
    {
        const std::string from = pathText(m_doc.stateDictPath);
        if (from == "model_state_dict")
            return;
        std::string where = from.empty() ? "the file's root" : "'" + from + "'";
        if (m_doc.stateDictSource == "module_tree")
            where = from.empty() ? "the pickled module's weights" : "the weights of the module under '" + from + "'";
        m_plan.carried.push_back("model_state_dict (the model's weights, moved from " + where + ")");
    }

    void markWeightsUsed()
    {
        if (!m_doc.stateDictPath.empty())
            m_usedRootKeys.insert(m_doc.stateDictPath[0]);
    }

    void buildTarget()
    {
        markWeightsUsed();
        if (m_doc.stateDictSource == "module_tree" && !m_o.moduleExport) {
            const auto tree = findPath(m_doc.root, m_doc.stateDictPath);
            m_plan.lost.push_back(
                {pathText(m_doc.stateDictPath).empty() ? "(module tree)" : pathText(m_doc.stateDictPath),
                 "the architecture (the pickled " + (tree ? className(*tree) : std::string("module")) +
                     " tree) is not written, only its weights (--to full-model keeps it)"});
        }
        const auto userConfig = m_o.config ? jsonToValue(*m_o.config) : nullptr;
        switch (m_o.to) {
        case ConvertTarget::StateDict: {
            m_plan.root = stateDictValue();
            if (m_o.sidecar) {
                auto rest = Value::dict();
                accountRest(rest, "sidecar", "");
                carryFormatMetadata(rest, "sidecar");
                m_plan.sidecar = sidecarOf(rest, {});
            } else {
                const std::string why =
                    m_o.moduleExport ? "a TorchScript file holds the module and its weights only"
                                     : "a state dict holds only the model's weights (keep it with --metadata-json or --to checkpoint)";
                accountRest(nullptr, "", why);
                carryFormatMetadata(nullptr, "", why);
            }
            break;
        }
        case ConvertTarget::Checkpoint: {
            auto root = Value::dict();
            auto put = [&root](const char *k, ValuePtr v) {
                root->entries().push_back({Value::string(k), std::move(v)});
            };
            put("epoch", pick("epoch", m_o.epochValue ? Value::integer(*m_o.epochValue) : nullptr, {"epoch"},
                              " (set it with --epoch)"));
            put("model_state_dict", stateDictValue());
            sayWeightsMoved();
            if (m_doc.optimizer && !m_doc.optimizerPath.empty()) {
                m_usedRootKeys.insert(m_doc.optimizerPath[0]);
                if (m_o.dropTraining) {
                    m_plan.lost.push_back(
                        {pathText(m_doc.optimizerPath), "optimizer state left out (--drop-optimizer)"});
                } else if (auto b = blockerOf(m_doc.optimizer); !b.empty()) {
                    m_plan.lost.push_back({pathText(m_doc.optimizerPath), b});
                } else {
                    put("optimizer_state_dict", optimizerForOutput());
                    // Its state stays as the source holds it (float32 for mixed-precision training):
                    // torch's Optimizer.load_state_dict casts floating state to each parameter's dtype.
                    m_plan.carried.push_back("optimizer_state_dict (from '" + pathText(m_doc.optimizerPath) + "'" +
                                             (m_o.castTo ? std::string("; its state keeps its dtype, as mixed-precision "
                                                                       "training keeps it: optimizer.load_state_dict "
                                                                       "casts it to the parameters' dtype")
                                                         : std::string()) +
                                             ")");
                    auto list = rootEntry(m_doc.optimizerPath[0]);
                    if (m_doc.optimizerPath.size() > 1 && list && list->isSequence() && list->items().size() > 1)
                        m_plan.lost.push_back({m_doc.optimizerPath[0] + "/1…",
                                               "only the first optimizer's state goes into optimizer_state_dict"});
                }
            }
            put("train_loss", pick("train_loss", m_o.trainLoss ? Value::floating(*m_o.trainLoss) : nullptr,
                                   {"train_loss"}, " (set it with --train-loss)"));
            put("val_loss", pick("val_loss", m_o.valLoss ? Value::floating(*m_o.valLoss) : nullptr, {"val_loss"},
                                 " (set it with --val-loss)"));
            // Lightning keeps the model's constructor arguments (save_hyperparameters) as hyper_parameters.
            put("model_config", pick("model_config", userConfig, {"model_config", "config", "hyper_parameters"},
                                     " (set it with --config)"));
            put("timestamp", timestampValue());
            put("pytorch_version", versionValue());
            auto info = Value::dict();
            ValuePtr given = rootEntry("additional_info");
            if (!given)
                if ((given = formatMetadataValue(m_doc, "additional_info")) && given->isDict())
                    m_takenFromFormat.insert("additional_info");
            if (given && given->isDict()) {
                // Its args or numpy RNG state in the forms a weights-only file holds; when something
                // else in it cannot be held, it is accounted for below (and said so) as it is.
                const auto said = m_plan.warnings.size();
                if (auto formed = weightsOnlyForm(given, "additional_info"); blockerOf(formed).empty())
                    given = formed;
                else
                    m_plan.warnings.resize(said);
            }
            if (given && given->isDict() && blockerOf(given).empty()) {
                m_usedRootKeys.insert("additional_info");
                for (const auto &e : given->entries()) {
                    if (e.key && m_takenFromInfo.contains(keyText(*e.key)))
                        continue;
                    if (e.key && isEmptyPackageField(keyText(*e.key), e.value)) {
                        m_plan.lost.push_back({"additional_info/" + keyText(*e.key),
                                               "None in the source (an empty field): nothing to keep"});
                        continue;
                    }
                    info->entries().push_back(e);
                }
                m_plan.carried.push_back("additional_info");
            }
            // Training state and the source's other entries keep their keys (resume code reads
            // ckpt['scheduler']); additional_info holds the source's own and what was given.
            auto ownKeys = Value::dict();
            accountRest(info, "additional_info", "", ownKeys,
                        {"epoch", "model_state_dict", "optimizer_state_dict", "train_loss", "val_loss",
                         "model_config", "timestamp", "pytorch_version", "additional_info"});
            carryFormatMetadata(info, "additional_info");
            // Given class names and preprocessing wait in additional_info for an inference
            // package (replacing the source's own).
            if (auto classes = givenClassNames()) {
                setEntry(info, "class_names", classes);
                m_plan.carried.push_back("additional_info/class_names (given)");
            }
            if (m_o.preprocess) {
                setEntry(info, "preprocessing", jsonToValue(*m_o.preprocess));
                m_plan.carried.push_back("additional_info/preprocessing (given)");
            }
            put("additional_info", info);
            for (auto &e : ownKeys->entries())
                root->entries().push_back(std::move(e));
            m_plan.root = root;
            if (m_o.sidecar)
                m_plan.sidecar = sidecarOf(root, {"model_state_dict", "optimizer_state_dict"});
            break;
        }
        case ConvertTarget::Inference: {
            auto root = Value::dict();
            auto put = [&root](const char *k, ValuePtr v) {
                root->entries().push_back({Value::string(k), std::move(v)});
            };
            put("model_state_dict", stateDictValue());
            sayWeightsMoved();
            // Lightning keeps the model's constructor arguments (save_hyperparameters) as hyper_parameters.
            put("model_config", pick("model_config", userConfig, {"model_config", "config", "hyper_parameters"},
                                     " (set it with --config)"));
            if (m_o.preprocess) {
                for (const char *k : {"input_mean", "input_std", "preprocessing"})
                    if (rootEntry(k))
                        m_usedRootKeys.insert(k);
                put("preprocessing", jsonToValue(*m_o.preprocess));
                m_plan.carried.push_back("preprocessing (given)");
            } else if (rootEntry("input_mean") || rootEntry("input_std") || infoEntry("input_mean") ||
                       formatMetadataValue(m_doc, "input_mean")) {
                put("input_mean", pick("input_mean", nullptr, {"input_mean"}, " (set --preprocessing)"));
                put("input_std", pick("input_std", nullptr, {"input_std"}, " (set --preprocessing)"));
            } else if (!rootEntry("preprocessing") && !rootEntry("normalization") &&
                       (rootEntry("mean") || rootEntry("std"))) {
                put("preprocessing", preprocessingFromRoot());
            } else {
                put("preprocessing", pick("preprocessing", nullptr, {"preprocessing", "normalization"},
                                          " (set it with --preprocessing)"));
            }
            const ValuePtr classes = givenClassNames();
            put("class_names",
                pick("class_names", classes, {"class_names", "classes"}, " (set it with --class-names)"));
            if (const ValuePtr spec = packageArchitecture())
                put("architecture", spec);
            put("timestamp", timestampValue());
            put("pytorch_version", versionValue());
            if (m_doc.optimizer && !m_doc.optimizerPath.empty()) {
                m_usedRootKeys.insert(m_doc.optimizerPath[0]);
                m_plan.lost.push_back(
                    {pathText(m_doc.optimizerPath), "an inference package carries no optimizer state"});
            }
            std::string kept;  // the package's keys, named: "the seed's keys" means nothing to a user
            for (const auto &e : root->entries())
                kept += (kept.empty() ? "" : ", ") + (e.key ? keyText(*e.key) : std::string());
            const std::string why = "an inference package holds only " + kept + " (use --to checkpoint to keep it)";
            accountRest(nullptr, "", why);
            carryFormatMetadata(nullptr, "", why);
            m_plan.root = root;
            m_plan.sidecar = sidecarOf(root, {"model_state_dict"});
            break;
        }
        case ConvertTarget::Safetensors: {
            std::map<std::string, std::string> meta;
            std::set<std::string> jsonKeys;  // values written as JSON text, listed under kSafetensorsJsonKeys
            PlainJsonBudget metaBudget;      // for all of them together: the header stays small
            // The source's own metadata (a safetensors __metadata__, a shard index's "metadata"):
            // text as it is, other values as JSON text. A shard index's total_size is the index's
            // bookkeeping (the bytes of all its shards), not a fact about the one file written here:
            // transformers writes it only into the index, and a file it saves unsharded carries
            // {"format": "pt"} alone. So it is not carried.
            const bool fromIndex = m_doc.format == ContainerFormat::Sharded;
            if (m_doc.formatMetadata && m_doc.formatMetadata->isDict())
                for (const auto &e : m_doc.formatMetadata->entries()) {
                    if (!e.key || !e.key->isString() || !e.value || e.key->text().starts_with("alias:") ||
                        e.key->text() == kSafetensorsJsonKeys || e.key->text() == kSafetensorsKeyOrder ||
                        e.key->text() == kSafetensorsStateDictMetadata ||
                        (fromIndex && e.key->text() == "total_size"))
                        continue;
                    const std::string &k = e.key->text();
                    if (e.value->isString()) {
                        meta[k] = e.value->text();
                        if (auto v = formatMetadataValue(m_doc, k); v && !v->isString())
                            jsonKeys.insert(k);
                        continue;
                    }
                    try {
                        meta[k] = pythonJsonText(valueToPlainJson(e.value, "JSON text", metaBudget));
                        jsonKeys.insert(k);
                    } catch (const FormatError &error) {
                        m_plan.lost.push_back({"metadata/" + k, error.what()});
                    }
                }
            if (m_doc.root && m_doc.root->isDict() && !m_doc.stateDictPath.empty())
                for (const auto &e : m_doc.root->entries()) {
                    if (!e.key)
                        continue;
                    const std::string k = keyText(*e.key);
                    if (m_usedRootKeys.contains(k))
                        continue;
                    if (!m_doc.optimizerPath.empty() && k == m_doc.optimizerPath[0]) {
                        m_plan.lost.push_back({k, "safetensors holds no optimizer state"});
                        continue;
                    }
                    if (m_o.dropTraining && isTrainingStateKey(k)) {
                        m_plan.lost.push_back({k, "training state left out (--drop-optimizer)"});
                        continue;
                    }
                    // A mean and std kept as a tensor or numpy array (alone or in a preprocessing
                    // dict), the fields an inference package carries for predict: their numbers,
                    // as the inference sidecar writes them, which predict reads back to normalise
                    // as the source did. (The reader may take a dict of vectors for weights.)
                    if (isNormalisationKey(k) && holdsNonJson(e.value)) {
                        nlohmann::ordered_json json;
                        try {
                            json = valueToPlainJson(e.value, "JSON text", metaBudget);
                        } catch (const FormatError &) {
                            json = nullptr;
                        }
                        if (!json.is_null() && writeTensorNumbers(e.value, json, 0)) {
                            meta[k] = pythonJsonText(json);
                            jsonKeys.insert(k);
                            m_plan.carried.push_back("__metadata__/" + k +
                                                     " (its tensors or arrays as lists of numbers)");
                            m_plan.warnings.push_back("'" + k +
                                                      "' holds tensors or numpy arrays: written to __metadata__ "
                                                      "as JSON lists of their numbers");
                            continue;
                        }
                    }
                    // Another network's weights (a GAN's discriminator, the EMA --ema did not take)
                    // are not metadata that failed to fit: say what they are and how to write them.
                    if (const std::string sets = otherWeightSetsUnder(k); !sets.empty()) {
                        m_plan.lost.push_back(
                            {k, "another set of weights, left out: a safetensors file holds one set, the model's "
                                "weights (under '" + pathText(m_doc.stateDictPath) +
                                    "'); convert this one on its own with " + sets});
                        continue;
                    }
                    // Another network's optimizer (a GAN's optD) is not metadata that failed to fit either.
                    if (holdsOptimizerState(e.value)) {
                        m_plan.lost.push_back({k, "safetensors holds no optimizer state"});
                        continue;
                    }
                    // A training script's args (an argparse.Namespace) or a dict subclass (Lightning's
                    // hyper_parameters): the dict of its fields.
                    const ValuePtr value = e.value->kind() == Value::Kind::Object &&
                                                   (className(*e.value) == "argparse.Namespace" ||
                                                    isPlainDictSubclass(*e.value))
                                               ? weightsOnlyForm(e.value, k)
                                               : e.value;
                    nlohmann::ordered_json json;
                    try {
                        if (!value->isString())
                            json = valueToPlainJson(value, "JSON text", metaBudget);
                    } catch (const FormatError &error) {
                        m_plan.lost.push_back({k, error.what()});
                        continue;
                    }
                    if (value->isString()) {
                        meta[k] = value->text();
                        m_plan.carried.push_back("__metadata__/" + k);
                    } else if (!holdsNonJson(value)) {
                        meta[k] = pythonJsonText(json); // JSON text: metadata values are strings
                        jsonKeys.insert(k);
                        m_plan.carried.push_back("__metadata__/" + k);
                    } else {
                        m_plan.lost.push_back(
                            {k, "holds tensors or objects, which safetensors metadata (strings) cannot hold"});
                    }
                }
            if (!meta.contains("format"))
                meta["format"] = "pt";
            if (!jsonKeys.empty())
                meta[std::string(kSafetensorsJsonKeys)] = nlohmann::json(jsonKeys).dump();
            // Sharing is not allowed: a tensor that is exactly another one is written once.
            std::map<TensorIdentity, std::string> seen;
            std::map<const StorageRef *, std::string> sharedStorage;
            for (const auto &[name, v] : m_tensors) {
                const auto &r = *v->tensorRef();
                if (const auto key = tensorIdentity(r)) {
                    if (auto it = seen.find(*key); it != seen.end()) {
                        meta["alias:" + name] = it->second;
                        m_plan.warnings.push_back("'" + name + "' is the same tensor as '" + it->second +
                                                  "': written once, recorded as an alias in __metadata__");
                        continue;
                    }
                    seen.emplace(*key, name);
                }
                if (auto [it, fresh] = sharedStorage.emplace(r.storage.get(), name); !fresh)
                    m_plan.warnings.push_back("'" + name + "' shares storage with '" + it->second +
                                              "'; safetensors cannot share, so its values are copied");
                // safetensors stores every element of a view: an expanded tensor becomes all of them.
                if (const std::string problem = workBudgetProblem(r); !problem.empty())
                    throw FormatError("'" + name + "': " + problem + "; safetensors would store each element "
                                      "(a torch format keeps the view; or leave it out with --drop)");
                m_plan.tensors.emplace_back(name, v);
            }
            // The state dict's _metadata (module versions that _load_from_state_dict checks), which
            // safetensors has no place for: kept as JSON text, restored when converted back.
            if (m_metadata && m_metadata->isDict()) {
                try {
                    meta[std::string(kSafetensorsStateDictMetadata)] =
                        pythonJsonText(valueToPlainJson(m_metadata, "the state dict's _metadata", metaBudget));
                    m_plan.carried.push_back("the state dict's _metadata (module versions), as __metadata__/" +
                                             std::string(kSafetensorsStateDictMetadata));
                } catch (const FormatError &error) {
                    m_plan.lost.push_back({"_metadata", error.what()});
                }
            }
            // The state dict's own order (aliases included), which the file's sorted names lose:
            // reading the file back restores it, so the architecture read from the weights (a chain
            // of layers in order) and a converted-back state dict are the source's.
            if (m_tensors.size() > 1) {
                std::string order = "[";
                for (const auto &t : m_tensors) {
                    if (order.size() > 1)
                        order += ',';
                    jsontext::appendStringStrict(order, t.first);
                }
                meta[std::string(kSafetensorsKeyOrder)] = order + "]";
            }
            m_plan.safetensorsMetadata = std::move(meta);
            break;
        }
        case ConvertTarget::FullModel:
            break;
        }
        if (m_o.sidecar && m_plan.sidecar.is_null())
            m_plan.sidecar = nlohmann::ordered_json::object();
    }

    // The state dict's _metadata this tool kept in a safetensors file it wrote
    // (kSafetensorsStateDictMetadata): an OrderedDict of module prefix -> dict, as torch's
    // state_dict() sets it. Null when the file has none, or it is no JSON object of objects.
    ValuePtr recordedStateDictMetadata() const
    {
        if (m_doc.format != ContainerFormat::Safetensors || !m_doc.formatMetadata || !m_doc.formatMetadata->isDict())
            return nullptr;
        const auto text = m_doc.formatMetadata->get(std::string(kSafetensorsStateDictMetadata));
        if (!text || !text->isString())
            return nullptr;
        const auto json = parseOrderedJson(text->text(), 3);
        if (!json.is_object())
            return nullptr;
        ValuePtr md;
        try {
            md = jsonToValue(json);
        } catch (const FormatError &) {
            return nullptr;
        }
        for (const auto &e : md->entries())
            if (!e.value || !e.value->isDict())
                return nullptr;
        md->setPythonClass("collections.OrderedDict");
        return md;
    }

    // The _metadata module.state_dict() records: for each module, in the order state_dict visits
    // them, {'version': cls._version}: 2 for the normalisation layers that count batches
    // (BatchNorm and InstanceNorm, _NormBase), 1 (nn.Module's) for the others.
    static ValuePtr moduleVersions(const Value &module)
    {
        auto md = Value::dict();
        md->setPythonClass("collections.OrderedDict");
        for (const auto &m : moduleTree(module)) {
            const std::string_view cls = m.className;
            const auto dot = cls.rfind('.');
            const std::string_view name = dot == std::string_view::npos ? cls : cls.substr(dot + 1);
            const bool normBase = cls.starts_with("torch.nn.modules.") &&
                                  (name.find("BatchNorm") != std::string_view::npos ||
                                   name.find("InstanceNorm") != std::string_view::npos);
            auto version = Value::dict();
            version->entries().push_back({Value::string("version"), Value::integer(normBase ? 2 : 1)});
            md->entries().push_back({Value::string(m.path), version});
        }
        return md;
    }

    // Whether a value holds what JSON text cannot carry back (tensors, objects, globals, bytes):
    // valueToJson describes those ({"__tensor__": ...}) rather than writing them. A list or dict
    // shared many times ([x, x] nested 60 deep in a 1 KB file) is looked into once.
    static bool holdsNonJson(const ValuePtr &v)
    {
        std::unordered_set<const Value *> plain;
        return holdsNonJson(v, 0, plain);
    }

    static bool holdsNonJson(const ValuePtr &v, int depth, std::unordered_set<const Value *> &plain)
    {
        if (!v || depth > 64)
            return depth > 64;
        if (plain.contains(v.get()))
            return false;
        using K = Value::Kind;
        bool non = true;
        switch (v->kind()) {
        case K::None: case K::Bool: case K::Int: case K::BigInt: case K::Float: case K::String:
            return false;
        case K::Tuple: case K::List:
            non = std::any_of(v->items().begin(), v->items().end(),
                              [&](const ValuePtr &i) { return holdsNonJson(i, depth + 1, plain); });
            break;
        case K::Dict:
            non = std::any_of(v->entries().begin(), v->entries().end(), [&](const Value::DictEntry &e) {
                return !e.key || !e.key->isString() || holdsNonJson(e.value, depth + 1, plain);
            });
            break;
        default:
            return true;
        }
        if (!non)
            plain.insert(v.get());
        return non;
    }

    // Replaces the description valueToJson wrote for a small floating tensor (in `out`) by its
    // numbers: a list, or one number for a 0-d tensor (a loss kept as a tensor); dicts recursed.
    // True when `out` then holds `v` as plain JSON: nothing in it is a description any more.
    static bool writeTensorNumbers(const ValuePtr &v, nlohmann::ordered_json &out, int depth)
    {
        if (!v || depth > 4)
            return !holdsNonJson(v);
        if (v->isTensor()) {
            if (!v->tensorRef() || !dtypeIsFloating(v->tensorRef()->dtype))
                return false;
            const auto &r = *v->tensorRef();
            auto n = vectorTensorNumbers(r);
            if (n.empty() || r.numel() != std::ssize(n))
                return false;
            out = r.shape.empty() ? nlohmann::ordered_json(n[0]) : nlohmann::ordered_json(n);
            return true;
        }
        if (!v->isDict() || !out.is_object())
            return !holdsNonJson(v);
        // Looked up through an index: an ordered_json object finds a key by walking its keys.
        std::unordered_map<std::string_view, nlohmann::ordered_json *> byKey;
        for (auto &[k, child] : out.items())
            byKey.emplace(k, &child);
        bool plain = true;
        for (const auto &e : v->entries()) {
            if (!e.key || !e.key->isString()) {
                plain = false;
                continue;
            }
            if (e.value && (e.value->isTensor() || e.value->isDict())) {
                const auto it = byKey.find(e.key->text());
                plain = (it != byKey.end() && writeTensorNumbers(e.value, *it->second, depth + 1)) && plain;
            } else {
                plain = plain && !holdsNonJson(e.value);
            }
        }
        return plain;
    }

    // --class-names as the list a package holds; null when not given.
    ValuePtr givenClassNames() const
    {
        if (!m_o.classes)
            return nullptr;
        std::vector<ValuePtr> items;
        for (const auto &c : *m_o.classes)
            items.push_back(Value::string(c));
        return Value::list(std::move(items));
    }

    // Sets `key` in a dict, replacing an entry of that name.
    static void setEntry(const ValuePtr &dict, const std::string &key, ValuePtr value)
    {
        for (auto &e : dict->entries())
            if (e.key && e.key->isString() && e.key->text() == key) {
                e.value = std::move(value);
                return;
            }
        dict->entries().push_back({Value::string(key), std::move(value)});
    }

    // The optimizer state for the parameters that are kept. PyTorch's load_state_dict pairs the
    // saved ids with an optimizer's parameters in order and refuses groups of other sizes, so a
    // parameter left out with --drop leaves the optimizer too: its state and its id in
    // param_groups go, and the ids are numbered again from 0 as torch numbers a smaller model's
    // (torch >= 2.6's param_names lose the same positions; state keyed by name, as torch.distributed
    // writes it, loses the dropped names and needs no renumbering). Names the optimizer recorded
    // take the prefix edits the weights take, so that they still name the weights.
    // Where the ids cannot be told apart by name, the state is written as it is, with a warning.
    ValuePtr optimizerForOutput()
    {
        const std::string strip = normalisedPrefix(m_o.strip);
        const std::string add = normalisedPrefix(m_o.add);
        const auto renamed = [&strip, &add](const std::string &name) {
            return add + (!strip.empty() && name.starts_with(strip) ? name.substr(strip.size()) : name);
        };
        const bool renames = !strip.empty() || !add.empty();
        const auto groups = m_doc.optimizer->get("param_groups");
        const auto state = m_doc.optimizer->get("state");
        if (m_plan.dropped.empty() && !renames)
            return m_doc.optimizer;
        if (!groups || !groups->isSequence()) {
            if (!m_plan.dropped.empty())
                m_plan.warnings.push_back("optimizer_state_dict is written whole: it has no param_groups to match its "
                                          "parameters to names, so the state of dropped tensors stays");
            return m_doc.optimizer;
        }
        std::set<std::int64_t> leave;
        std::set<std::string> leaveKeys;  // torch.distributed's layout: parameters keyed by name
        if (!m_plan.dropped.empty()) {
            std::set<std::string> dropped;
            for (const auto &d : m_plan.dropped)
                dropped.insert(d.entry);
            const auto map = mapOptimizer(m_doc);
            if (map && map->certain) {
                for (const auto &p : map->parameters)
                    if (dropped.contains(p.name)) {
                        if (p.key.empty())
                            leave.insert(p.id);
                        else
                            leaveKeys.insert(p.key);
                    }
            } else {
                m_plan.warnings.push_back("optimizer_state_dict is written whole: its parameters cannot be matched "
                                          "to names (" + (map ? map->note : std::string("no param_groups")) +
                                          "), so the state of dropped tensors stays; an optimizer over the kept "
                                          "parameters will refuse it (--drop-optimizer leaves it out)");
            }
        }
        const auto left = [&leave, &leaveKeys](const ValuePtr &id) {
            return id && ((id->isInt() && leave.contains(id->asInt())) || (id->isString() && leaveKeys.contains(id->text())));
        };
        // A name the optimizer recorded, as the weights are now named.
        std::size_t namesRenamed = 0;
        const auto nameValue = [&](const ValuePtr &name) {
            if (!renames || !name || !name->isString())
                return name;
            std::string now = renamed(name->text());
            if (now == name->text())
                return name;
            ++namesRenamed;
            return Value::string(std::move(now));
        };
        std::map<std::int64_t, std::int64_t> renumber;
        std::size_t kept = 0;
        auto newGroups = Value::list();
        for (const auto &group : groups->items()) {
            if (!group || !group->isDict()) {
                newGroups->items().push_back(group);
                continue;
            }
            auto g = Value::dict();
            // Positions kept in this group's params; torch >= 2.6 lists param_names beside them.
            std::vector<bool> keptAt;
            if (const auto params = group->get("params"); params && params->isSequence())
                for (const auto &id : params->items())
                    keptAt.push_back(!left(id));
            for (const auto &e : group->entries()) {
                const std::string k = e.key && e.key->isString() ? e.key->text() : std::string();
                if (k == "params" && e.value && e.value->isSequence()) {
                    auto ids = Value::list();
                    for (const auto &id : e.value->items()) {
                        if (left(id))
                            continue;
                        ++kept;
                        if (id && id->isInt() && !leave.empty()) {
                            const auto it = renumber.emplace(id->asInt(), static_cast<std::int64_t>(renumber.size())).first;
                            ids->items().push_back(Value::integer(it->second));
                        } else {
                            ids->items().push_back(nameValue(id));  // a name needs no renumbering
                        }
                    }
                    g->entries().push_back({e.key, ids});
                } else if (k == "param_names" && e.value && e.value->isSequence() && e.value->items().size() == keptAt.size()) {
                    auto names = Value::list();
                    for (std::size_t i = 0; i < keptAt.size(); ++i)
                        if (keptAt[i])
                            names->items().push_back(nameValue(e.value->items()[i]));
                    g->entries().push_back({e.key, names});
                } else {
                    g->entries().push_back(e);
                }
            }
            newGroups->items().push_back(g);
        }
        if (leave.empty() && leaveKeys.empty() && namesRenamed == 0)
            return m_doc.optimizer;  // nothing of it changes (only buffers dropped, no recorded names)
        auto newState = Value::dict();
        if (state && state->isDict()) {
            for (const auto &e : state->entries()) {
                if (left(e.key))
                    continue;
                if (e.key && e.key->isInt() && !leave.empty()) {
                    if (auto it = renumber.find(e.key->asInt()); it != renumber.end())
                        newState->entries().push_back({Value::integer(it->second), e.value});
                } else {
                    newState->entries().push_back({nameValue(e.key), e.value});
                }
            }
        }
        auto opt = Value::dict();
        for (const auto &e : m_doc.optimizer->entries()) {
            const std::string k = e.key ? keyText(*e.key) : std::string();
            opt->entries().push_back({e.key, k == "state" ? newState : k == "param_groups" ? newGroups : e.value});
        }
        if (!leave.empty() || !leaveKeys.empty())
            m_plan.carried.push_back("optimizer state for the " + std::to_string(kept) + " kept parameters (" +
                                     std::to_string(leave.size() + leaveKeys.size()) + " dropped with their tensors)");
        if (namesRenamed)
            m_plan.carried.push_back("the parameter names the optimizer recorded, with the weights' prefix edits");
        return opt;
    }

    // The source's __metadata__ (or shard index metadata) under additional_info, less the entries
    // promoted to keys of their own, the JSON marker and aliases (the tensors are written apart).
    // The container's own metadata (safetensors __metadata__, a sharded index's "metadata") not
    // already taken for a field: kept under `into` as safetensors_metadata/index_metadata, or, when
    // the target has no place for it (into null), listed as lost with `why` rather than dropped silently.
    void carryFormatMetadata(const ValuePtr &into, const std::string &intoName, const std::string &why = {})
    {
        if (!m_doc.formatMetadata || !m_doc.formatMetadata->isDict())
            return;
        const bool safetensors = m_doc.format == ContainerFormat::Safetensors;
        const std::string where = safetensors ? "__metadata__/" : "metadata/";
        auto rest = Value::dict();
        for (auto &[k, v] : formatMetadataEntries(m_doc))
            if (!m_takenFromFormat.contains(k) && k != kSafetensorsKeyOrder)  // the order is the state dict's now
                rest->entries().push_back({Value::string(k), v});
        if (rest->entries().empty())
            return;
        if (!into || !blockerOf(rest).empty()) {
            for (const auto &e : rest->entries())
                m_plan.lost.push_back({where + keyText(*e.key), into ? blockerOf(rest) : why});
            return;
        }
        const char *name = safetensors ? "safetensors_metadata" : "index_metadata";
        setEntry(into, name, rest);  // replaces one carried in from an earlier round trip
        m_plan.carried.push_back(intoName + "/" + name);
    }

    // The sidecar: the root less the weights, as the plain JSON a deployment reads (what the
    // file shares written out in full at each place, within one budget for the whole sidecar). A
    // small vector tensor among the metadata (input_mean kept as a tensor or numpy array) is
    // written as its numbers, which a deployment reading the JSON can use; other tensors stay
    // described ({"__tensor__": ...}). An entry JSON cannot hold (one containing itself, or past
    // the budget) is left out of the sidecar, and said so.
    nlohmann::ordered_json sidecarOf(const ValuePtr &root, std::initializer_list<const char *> skip)
    {
        auto d = Value::dict();
        for (const auto &e : root->entries())
            if (std::none_of(skip.begin(), skip.end(), [&](const char *s) { return keyText(*e.key) == s; }))
                d->entries().push_back(e);
        PlainSidecar sidecar{{}, {root.get(), d.get(), m_doc.root.get()}, {}};
        auto j = plainEntries(d, "", sidecar);
        writeTensorNumbers(d, j, 0);
        return j;
    }

    struct PlainSidecar {
        PlainJsonBudget budget;
        std::vector<const Value *> within;                          // the dicts being written, the roots
        std::unordered_map<const Value *, std::string> splitAt;     // dicts written entry by entry, and where
    };

    // A dict's entries as plain JSON. An entry that cannot be, because it holds a cycle, is written
    // entry by entry when it is a dict (a few levels down, once per dict); otherwise it is left out
    // and listed as not written.
    nlohmann::ordered_json plainEntries(const ValuePtr &dict, const std::string &path, PlainSidecar &sidecar)
    {
        auto j = nlohmann::ordered_json::object();
        JsonObjectBuilder builder(j);
        for (const auto &e : dict->entries()) {
            const std::string label = keyText(*e.key);
            const std::string key = path + label;
            const Value *value = e.value.get();
            if (std::find(sidecar.within.begin(), sidecar.within.end(), value) != sidecar.within.end()) {
                m_plan.lost.push_back({key, "not in the sidecar: it is a dict that holds it (a cycle), which JSON cannot hold"});
                continue;
            }
            if (const auto it = sidecar.splitAt.find(value); it != sidecar.splitAt.end()) {
                m_plan.lost.push_back({key, "not in the sidecar: the same dict as '" + it->second +
                                                "', which holds a cycle; written there, without it"});
                continue;
            }
            try {
                builder.set(label, valueToPlainJson(e.value, "JSON text", sidecar.budget));
            } catch (const FormatError &error) {
                // Past the budget, everything after fails at once: nothing is split then.
                if (e.value && e.value->isDict() && sidecar.budget.left > 0 && sidecar.within.size() < 8) {
                    sidecar.splitAt.emplace(value, key);
                    sidecar.within.push_back(value);
                    builder.set(label, plainEntries(e.value, key + "/", sidecar));
                    sidecar.within.pop_back();
                } else {
                    m_plan.lost.push_back({key, std::string("not in the sidecar: ") + error.what()});
                }
            }
        }
        return j;
    }

    // The tensor as the file writes it: its own, or the one castApart gave it.
    const TensorRef &written(const ValuePtr &v) const
    {
        const auto it = m_plan.castApart.find(v.get());
        return it == m_plan.castApart.end() ? *v->tensorRef() : *it->second;
    }

    // Module.to(dtype) casts each Parameter and buffer apart (param.data = fn(param)): each cast
    // tensor gets a storage of its own elements, whatever it shared before (two Parameters made on
    // one storage, views of one tensor), and torch.save of the cast model writes those storages.
    // One Parameter under several names (a tie) is one tensor and stays one. Here each tensor the
    // cast changes whose storage holds more than it (another tensor's elements, or unused ones) is
    // written on a storage of its own, of the span of the source it uses, strides kept, where it is
    // dense (torch's cast keeps a dense tensor's strides); one whose elements are apart (a block of
    // columns) is gathered when written, in row-major order, as torch's cast makes it contiguous.
    // A view that may repeat elements (an expand's stride 0) also keeps its strides over its span:
    // torch's cast would materialise each element (Tensor.to gives a non-dense tensor contiguous
    // strides: an expand of one element to 2**34 asks for 2**34 elements), where the file may hold
    // one; the values torch.load gives are the same, only the strides and the record's size differ.
    void castApart(const ValuePtr &module)
    {
        if (!module)
            return;
        const DType to = *m_o.castTo;
        const auto tensors = moduleToTensors(*module);  // each Parameter and buffer once, ties once
        if (tensors.empty())
            return;
        std::unordered_map<const StorageRef *, int> users;
        for (const auto &t : tensors)
            if (const auto &r = t.value->tensorRef(); r && r->storage)
                ++users[r->storage.get()];
        for (const auto &t : tensors) {
            const auto &r = *t.value->tensorRef();
            const std::int64_t n = r.numel();
            std::int64_t extent = 0;
            if (r.layout != TensorRef::Layout::Strided || r.quantization || !r.storage || !r.storage->resolved ||
                !r.problem.empty() || !isFloating(r.dtype) || r.dtype == to || r.dtype != r.storage->dtype ||
                r.storage->untyped || n <= 0 || !r.extentElements(extent) || !r.fitsStorage(extent))
                continue;
            const std::size_t es = dtypeSize(r.dtype);
            const StorageRef &from = *r.storage;
            // Elements of the source from the tensor's first to its last: within the record (checked
            // above), so no size the file declares is allocated beyond what it holds.
            const auto spanBytes = static_cast<std::uint64_t>(extent - r.storageOffset) * es;
            const bool gather = !denseNonOverlapping(r) && elementsApart(r);
            if (!gather && users[&from] < 2 && r.storageOffset == 0 && spanBytes == from.byteSize)
                continue;  // the whole storage is this tensor's alone: cast as it is
            auto apart = std::make_shared<TensorRef>(r);
            auto storage = std::make_shared<StorageRef>();
            storage->key = from.key + "/" + t.name;
            storage->dtype = from.dtype;
            storage->location = from.location;
            if (!gather) {
                const auto begin = static_cast<std::size_t>(r.storageOffset) * es;
                const auto count = static_cast<std::size_t>(spanBytes);
                storage->declaredNumel = extent - r.storageOffset;
                if (!from.producedOnUse()) {
                    const auto held = from.hold();  // in memory already: a view, nothing made
                    storage->setBytes(held.bytes.subspan(begin, count));
                    storage->keepAlive = from.keepAlive;
                    storage->mapping = from.mapping;
                } else {
                    // The span copied when written (given back after): no larger than the source.
                    storage->setLoader(count, [source = r.storage, begin, count, name = t.name]() {
                        const auto held = source->hold();
                        if (begin + count > held.size())
                            throw FormatError("'" + name + "' does not fit its storage");
                        return std::make_shared<const std::vector<std::uint8_t>>(held.bytes.begin() + begin,
                                                                                 held.bytes.begin() + begin + count);
                    }, StorageRef::Reuse::NeverKeep);
                }
            } else {
                // Elements apart each appear once, so they are no more than the storage holds; the
                // work budget bounds the gather all the same, as any write of a view's elements.
                const auto bytes = static_cast<std::uint64_t>(n) * es;
                if (const std::string problem = workBudgetProblem(r); !problem.empty())
                    throw FormatError("'" + t.name + "': " + problem + "; casting it apart would gather " +
                                      std::to_string(bytes) + " bytes");
                storage->declaredNumel = n;
                // Gathered in row-major order when written (given back after).
                auto view = std::make_shared<const TensorRef>(r);
                storage->setLoader(bytes, [view]() {
                    return std::make_shared<const std::vector<std::uint8_t>>(contiguousBytes(*view));
                }, StorageRef::Reuse::NeverKeep);
                apart->strides.assign(r.shape.size(), 1);
                for (std::size_t d = r.shape.size(); d-- > 1;)
                    apart->strides[d - 1] = apart->strides[d] * std::max<std::int64_t>(1, r.shape[d]);
            }
            apart->storage = std::move(storage);
            apart->storageOffset = 0;
            m_plan.castApart[t.value.get()] = std::move(apart);
        }
        // What the file writes, in place of the names' source values (a model built from weights
        // holds tensors of its own, on the same storages).
        m_tensors.clear();
        for (const auto &t : tensors)
            m_tensors.emplace_back(t.name, t.value);
    }

    void planCasts()
    {
        const DType to = *m_o.castTo;
        std::set<const StorageRef *> done;
        std::vector<ValuePtr> tensors;
        for (const auto &t : m_tensors)
            tensors.push_back(t.second);
        // A weight set carried with the model's edits (an EMA) is cast as the model's weights.
        tensors.insert(tensors.end(), m_carriedWeights.begin(), m_carriedWeights.end());
        for (const auto &v : tensors) {
            const TensorRef *ref = &written(v);
            // A sparse COO or CSR tensor's dtype is its values': torch's .to(dtype) casts them and
            // keeps the indices (int64 or int32) as they are.
            if (ref->layout == TensorRef::Layout::SparseCoo || ref->layout == TensorRef::Layout::SparseCsr) {
                const ValuePtr &values = ref->sparseValues;
                ref = values && values->isTensor() ? values->tensorRef().get() : nullptr;
            }
            if (!ref || ref->layout != TensorRef::Layout::Strided)
                continue;
            const auto &r = *ref;
            if (!isFloating(r.dtype) || r.dtype == to || !r.storage)
                continue;
            if (!done.insert(r.storage.get()).second)
                continue;
            // Counting reads every value: a large file can be cancelled here too.
            if (m_o.progress && !m_o.progress(0.0))
                throw FormatError("cancelled; nothing was written");
            m_plan.casts[r.storage.get()] = to;
            // Counted in chunks: the cast values are let go, so none of a storage's size is held.
            // A storage whose bytes are produced on use (inflated, a LoRA-merged weight) is produced
            // here and again when written: the plan says what the cast does before a byte is
            // written, and holding each until then would hold the whole model. A look-ahead, so
            // the write's production is its first and the bytes are let go after it.
            const auto bytes = r.storage->lookAhead();
            const std::size_t es = std::max<std::size_t>(1, dtypeSize(r.storage->dtype));
            const std::size_t step = (std::size_t{4} << 20) / es * es;
            for (std::size_t at = 0; at < bytes.size(); at += step)
                castFloats(bytes.bytes.subspan(at, std::min(step, bytes.size() - at)), r.storage->dtype, to, &m_plan.cast);
        }
        if (m_plan.cast.overflow)
            m_plan.warnings.push_back(std::to_string(m_plan.cast.overflow) + " values overflow " +
                                      std::string(dtypeName(to)) + " and become ±inf");
        if (m_plan.cast.subnormal)
            m_plan.warnings.push_back(std::to_string(m_plan.cast.subnormal) + " values become subnormal in " +
                                      std::string(dtypeName(to)) + " (precision lost)");
        if (m_plan.cast.zeroed)
            m_plan.warnings.push_back(std::to_string(m_plan.cast.zeroed) + " non-zero values become zero in " +
                                      std::string(dtypeName(to)));
    }
};

PickleWriterOptions pickleOptions(const ConversionPlan &plan, const ConvertOptions &o)
{
    PickleWriterOptions p;
    p.weightsOnly = plan.weightsOnly;
    p.cpuLocations = !o.keepDevices;
    const auto casts = plan.casts;
    p.storageDType = [casts](const StorageRef &s) {
        auto it = casts.find(&s);
        return it == casts.end() ? s.dtype : it->second;
    };
    if (!plan.castApart.empty())
        p.tensorAs = [apart = plan.castApart](const Value &v) -> std::shared_ptr<const TensorRef> {
            const auto it = apart.find(&v);
            return it == apart.end() ? nullptr : it->second;
        };
    return p;
}

} // namespace

std::string defaultOutputPathFor(const std::string &input, const std::string &suffix, const std::string &ext,
                                 const std::optional<DType> &castTo, const std::string &outDir)
{
    // A checkpoint folder named with a trailing slash ("checkpoint-500/"), or as "." or "dir/..", is
    // the folder: its output goes beside it, named for it, not into it as "_safetensors.safetensors".
    fs::path in(input);
    if (!in.has_filename() || in.filename() == "." || in.filename() == "..") {
        std::error_code ec;
        const fs::path absolute = fs::absolute(in, ec);
        if (!ec)
            in = absolute.lexically_normal();
        while (!in.has_filename() && in.has_relative_path())
            in = in.parent_path();
    }
    const fs::path folder = outDir.empty() ? in.parent_path() : fs::path(outDir);
    // A word the stem already ends with (or is) is not added again: model_safetensors.pth becomes
    // model_safetensors.safetensors, not model_safetensors_safetensors.safetensors, and
    // x_state_dict_fp16.pth converted to a float16 state dict keeps its name (numbered below).
    const std::string stem = stemOf(in.string());
    const std::string dtype = dtypeSuffix(castTo);
    const bool hasDtype = !dtype.empty() && stem.size() > dtype.size() && stem.ends_with(dtype);
    const std::string_view core = std::string_view(stem).substr(0, stem.size() - (hasDtype ? dtype.size() : 0));
    const bool hasSuffix = !suffix.empty() && ((core.size() > suffix.size() && core.ends_with(suffix)) ||
                                               (suffix.front() == '_' && core == std::string_view(suffix).substr(1)));
    const std::string name = stem + (hasSuffix ? "" : suffix) + (hasDtype ? "" : dtype);
    // Never the input itself: the same name then gets a number.
    const auto isInput = [&in](const fs::path &p) {
        std::error_code ec;
        return (fs::equivalent(p, in, ec) && !ec) || p.lexically_normal() == in.lexically_normal();
    };
    fs::path out = folder / (name + ext);
    for (int i = 2; isInput(out); ++i)
        out = folder / (name + "_" + std::to_string(i) + ext);
    return out.string();
}

std::string defaultOutputPath(const std::string &input, const ConvertOptions &options, const std::string &outDir)
{
    std::string suffix = "_" + convertTargetName(options.to);
    std::replace(suffix.begin(), suffix.end(), '-', '_');
    return defaultOutputPathFor(input, suffix, options.to == ConvertTarget::Safetensors ? ".safetensors" : ".pth",
                                options.castTo, outDir);
}

void checkOutputExtension(const std::string &output, bool safetensors, const std::string &what)
{
    std::string ext = fs::path(output).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!safetensors && ext == ".safetensors")
        throw FormatError(output + ": the name says safetensors, but " + what +
                          ", which safetensors readers refuse: give it another name (.pth, .pt), or convert to safetensors");
    if (safetensors && (ext == ".pth" || ext == ".pt" || ext == ".ckpt"))
        throw FormatError(output + ": the name says a torch file, but a safetensors conversion writes safetensors, "
                          "which torch.load refuses: name it .safetensors");
}

namespace {
WriteOptions writeOptionsFor(const Document &doc, const ConvertOptions &o)
{
    WriteOptions w = protectingInputs(doc, o.overwrite);
    for (const auto &p : o.protectedPaths)
        w.protect(p);
    if (!o.architecture.scriptPath.empty())
        w.protect(o.architecture.scriptPath);
    return w;
}

// A tensor of the output as the packing sees it: its storage and the bytes it is written as.
struct SizedTensor {
    std::string name;
    const StorageRef *storage = nullptr;
    std::uint64_t bytes = 0;
};

// The output's tensors in the state dict's order (a safetensors alias with the tensor it names).
std::vector<SizedTensor> outputTensors(const ConversionPlan &plan, const ConvertOptions &options)
{
    std::vector<SizedTensor> out;
    const auto add = [&](const std::string &name, const TensorRef &r) {
        const auto it = r.storage ? plan.casts.find(r.storage.get()) : plan.casts.end();
        const DType t = it == plan.casts.end() ? r.dtype : it->second;
        out.push_back({name, r.storage.get(), static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.numel())) * dtypeSize(t)});
    };
    if (plan.target == ConvertTarget::Safetensors) {
        std::unordered_map<std::string_view, const TensorRef *> byName;
        for (const auto &[name, v] : plan.tensors)
            byName.emplace(name, v->tensorRef().get());
        for (const auto &name : plan.kept) {
            auto it = byName.find(name);
            if (const auto alias = plan.safetensorsMetadata.find("alias:" + name);
                it == byName.end() && alias != plan.safetensorsMetadata.end())
                it = byName.find(alias->second);
            if (it == byName.end())
                throw FormatError(plan.output + ": '" + name + "' is not among the tensors written");
            add(name, *it->second);
        }
        return out;
    }
    // An index's weight_map places tensors: any other entry (a quantized layer's packed tuple and
    // its dtype) is refused, named, with the ways out.
    std::string others, drops;
    std::set<std::string> patterns;
    std::size_t otherCount = 0;
    for (const auto &e : plan.root->entries()) {
        if (e.key && e.key->isString() && e.value && e.value->isTensor() && e.value->tensorRef()) {
            add(e.key->text(), *e.value->tensorRef());
            continue;
        }
        const std::string key = e.key && e.key->isString() ? e.key->text() : std::string("?");
        std::string what = e.value ? "a " + e.value->typeName() : std::string("nothing");
        std::string owner;  // the packed params' prefix, shared by its tuple and its dtype
        if (e.value && e.value->kind() == Value::Kind::Tuple) {
            std::string items;
            bool quantized = false;
            for (const auto &i : e.value->items()) {
                const auto r = i && i->isTensor() ? i->tensorRef() : nullptr;
                quantized = quantized || (r && r->quantization);
                items += (items.empty() ? "" : ", ") +
                         (r ? (r->quantization ? "quantized " : "") + std::string(dtypeName(r->dtype)) + " tensor"
                            : i ? i->typeName() : std::string("?"));
            }
            what = "a tuple (" + items + ")";
            if (quantized && key.ends_with("_packed_params")) {
                what += ": a quantized layer's packed weight and bias";
                owner = key.substr(0, key.size() - std::string_view("_packed_params").size());
            }
        } else if (e.value && e.value->kind() == Value::Kind::Global && e.value->text() == "torch") {
            what = "a dtype, torch." + e.value->name();
            if (key.ends_with("dtype"))
                owner = key.substr(0, key.size() - std::string_view("dtype").size());
        }
        if (++otherCount <= 4)
            others += (others.empty() ? "'" : ", '") + key + "' (" + what + ")";
        // --drop matches the source's keys: the prefix edits undone.
        std::string source = owner.empty() ? key : owner + "*";
        if (!options.add.empty() && source.starts_with(normalisedPrefix(options.add)))
            source = source.substr(normalisedPrefix(options.add).size());
        source = normalisedPrefix(options.strip) + source;
        if (patterns.insert(source).second && patterns.size() <= 4)
            drops += " --drop '" + source + "'";
    }
    if (otherCount)
        throw FormatError(plan.output + ": the state dict holds " +
                          (otherCount == 1 ? std::string("an entry") : std::to_string(otherCount) + " entries") +
                          (otherCount == 1 ? " that is not a tensor" : " that are not tensors") + ", which a shard index cannot "
                          "place (its weight_map maps tensors to files): " + others +
                          (otherCount > 4 ? ", ..." : "") + "; write it as one file (without --max-shard-size), or "
                          "leave " + (otherCount == 1 ? "it" : "them") + " out with" + drops +
                          (patterns.size() > 4 ? " ..." : ""));
    return out;
}

// Splits the output into shards as huggingface_hub's split_torch_state_dict_into_shards does (what
// transformers' save_pretrained calls): in the state dict's order, a tensor larger than the limit
// alone in a shard of its own (placed when met, before the shard being filled), else a new shard
// when the tensor would take the current one past the limit; a tensor sharing its storage with an
// earlier one goes in that one's shard and is not counted again (a safetensors alias, a torch
// file's shared storage: written once, never across files). A size is numel × element size, as
// written (after --dtype). Fills plan.shards when more than one shard results.
void planShards(ConversionPlan &plan, const ConvertOptions &options, const WriteOptions &wo, std::uint64_t limit)
{
    const auto tensors = outputTensors(plan, options);
    std::vector<std::vector<std::size_t>> shards;
    std::vector<std::uint64_t> sizes;
    std::vector<std::size_t> current;
    std::uint64_t currentSize = 0, total = 0;
    std::unordered_map<const StorageRef *, std::size_t> firstOf;  // storage -> its first tensor
    std::vector<std::pair<std::size_t, std::size_t>> followers;     // (tensor, first of its storage)
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto &t = tensors[i];
        if (t.storage) {
            const auto [it, fresh] = firstOf.emplace(t.storage, i);
            if (!fresh) {
                followers.emplace_back(i, it->second);
                continue;
            }
        }
        total += t.bytes;
        if (t.bytes > limit) {
            shards.push_back({i});
            sizes.push_back(t.bytes);
            continue;
        }
        if (currentSize + t.bytes > limit) {
            shards.push_back(std::move(current));
            sizes.push_back(currentSize);
            current = {};
            currentSize = 0;
        }
        current.push_back(i);
        currentSize += t.bytes;
    }
    if (!current.empty()) {
        shards.push_back(std::move(current));
        sizes.push_back(currentSize);
    }
    plan.totalSize = total;
    if (shards.size() <= 1)
        return;  // one file, as transformers writes it: no index
    if (shards.size() > kMaxShards)
        throw FormatError(plan.output + ": " + std::to_string(shards.size()) + " shards of at most " +
                          std::to_string(limit) + " bytes; at most " + std::to_string(kMaxShards) +
                          " are written (give a larger --max-shard-size)");
    std::vector<std::size_t> shardOf(tensors.size(), 0);
    for (std::size_t k = 0; k < shards.size(); ++k)
        for (const auto i : shards[k])
            shardOf[i] = k;
    for (const auto &[i, first] : followers) {
        shardOf[i] = shardOf[first];
        shards[shardOf[first]].push_back(i);
    }
    const fs::path out(plan.output);
    const std::string stem = out.stem().string(), ext = out.extension().string();
    plan.indexPath = plan.output + ".index.json";
    for (std::size_t k = 0; k < shards.size(); ++k) {
        char number[48];
        std::snprintf(number, sizeof number, "-%05zu-of-%05zu", k + 1, shards.size());
        ConversionPlan::Shard shard;
        shard.path = (out.parent_path() / (stem + number + ext)).string();
        shard.bytes = sizes[k];
        std::sort(shards[k].begin(), shards[k].end());
        for (const auto i : shards[k])
            shard.names.push_back(tensors[i].name);
        plan.shards.push_back(std::move(shard));
    }
    // Before anything is written: no shard, nor the index, replaces an input or (without --force)
    // an existing file.
    for (const auto &shard : plan.shards)
        checkWriteTarget(shard.path, wo);
    checkWriteTarget(plan.indexPath, wo);
    // The index as transformers writes it, but the weight map in the state dict's order (reading
    // it back gives that order; transformers sorts the names, which no loader relies on).
    nlohmann::ordered_json map = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < tensors.size(); ++i)
        map[tensors[i].name] = fs::path(plan.shards[shardOf[i]].path).filename().string();
    plan.shardIndex = {{"metadata", {{"total_size", total}}}, {"weight_map", std::move(map)}};
}

// Whether `name` is a shard of `<stem><ext>` as transformers names them: <stem>-NNNNN-of-NNNNN<ext>.
bool isShardName(const std::string &name, const std::string &stem, const std::string &ext)
{
    constexpr std::size_t kNumbered = 15;  // "-00001-of-00003"
    if (name.size() != stem.size() + kNumbered + ext.size() || !name.starts_with(stem) || !name.ends_with(ext))
        return false;
    const std::string_view n = std::string_view(name).substr(stem.size(), kNumbered);
    const auto fiveDigits = [&](std::size_t at) {
        return std::all_of(n.begin() + at, n.begin() + at + 5, [](char c) { return c >= '0' && c <= '9'; });
    };
    return n[0] == '-' && fiveDigits(1) && n.substr(6, 4) == "-of-" && fiveDigits(10);
}

// The files of a previous output under the plan's name that the new one does not take over (see
// ConversionPlan::superseded): the shards a save_pretrained over an older save removes, the index
// of a previous set when one file is written now (it would name shards no longer there), and a
// previous single file when shards are written now (loaders take it before the index). Without
// --force they are refused, as an existing output is. A set any file of which is an input (a
// sharded input merged into one file beside itself, a lone shard converted) is left whole.
void planSuperseded(ConversionPlan &plan, const WriteOptions &wo)
{
    const fs::path out(plan.output);
    const fs::path folder = out.parent_path();
    const std::string stem = out.stem().string(), ext = out.extension().string();
    std::set<std::string> taken;
    for (const auto &shard : plan.shards)
        taken.insert(fs::path(shard.path).filename().string());
    // The index (or the single file) first: removed first, so that an interruption leaves no index
    // naming shards that are gone.
    std::vector<std::string> found{plan.shards.empty() ? plan.output + ".index.json" : plan.output};
    std::vector<std::string> shards;
    std::error_code ec;
    for (fs::directory_iterator it(folder.empty() ? fs::path(".") : folder, ec), end; !ec && it != end;
         it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!taken.contains(name) && isShardName(name, stem, ext))
            shards.push_back((folder / name).string());
    }
    std::sort(shards.begin(), shards.end());
    found.insert(found.end(), shards.begin(), shards.end());
    std::vector<std::string> files;
    for (const auto &f : found) {
        struct stat st {};
        if (::lstat(f.c_str(), &st) != 0 || S_ISDIR(st.st_mode))
            continue;
        if (isInput(f, wo))
            return;
        files.push_back(f);
    }
    if (!files.empty() && !wo.overwrite) {
        const std::string &f = files.front();
        throw FormatError(f + ": " +
                          (f == plan.output                   ? "the previous output under this name, which the shards"
                           : f == plan.output + ".index.json" ? "the index of a previous sharded output under this "
                                                                "name, which this file"
                                                              : "a shard of a previous output under this name, which "
                                                                "this one") +
                          " replace" + (f == plan.output ? "" : "s") +
                          " (use --force to replace it whole: its files the new output does not name are removed "
                          "once the new one is in place)");
    }
    plan.superseded = std::move(files);
}

// Says which hidden files beside the outputs an interrupted write left (a kill -9 or a crash while
// one of them was written or replaced: its temporary file, a replaced set's backups), which hold
// as much as the output and which nothing else removes.
void noteInterruptedWrites(ConversionPlan &plan)
{
    std::vector<std::string> outputs;
    if (plan.shards.empty()) {
        outputs.push_back(plan.output);
    } else {
        for (const auto &shard : plan.shards)
            outputs.push_back(shard.path);
        outputs.push_back(plan.indexPath);
    }
    if (!plan.sidecarPath.empty())
        outputs.push_back(plan.sidecarPath);
    const std::vector<std::string> found = interruptedWriteFiles(outputs);
    std::uint64_t bytes = 0;
    for (const auto &f : found) {
        std::error_code ec;
        const auto size = fs::file_size(f, ec);
        bytes += ec ? 0 : size;
    }
    if (found.empty())
        return;
    std::string list;
    for (std::size_t i = 0; i < found.size() && i < 5; ++i)
        list += (i ? ", " : "") + found[i];
    if (found.size() > 5)
        list += " and " + std::to_string(found.size() - 5) + " more";
    plan.warnings.push_back(std::to_string(found.size()) + " hidden file" + (found.size() == 1 ? "" : "s") +
                            " beside the output (" + std::to_string(bytes) + " bytes: " + list +
                            ") left by a write of it that was killed or crashed, or being written by one running "
                            "now; nothing removes them: delete them if no other conversion is writing there");
}
} // namespace

std::uint64_t parseShardSize(const std::string &text)
{
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
        ++digits;
    const std::string unit = text.substr(digits);
    std::string upper = unit;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return char(std::toupper(c)); });
    static const std::pair<const char *, std::uint64_t> kUnits[] = {
        {"", 1},       {"B", 1},           {"KB", 1000},       {"MB", 1000000},    {"GB", 1000000000},
        {"TB", 1000000000000}, {"KIB", 1u << 10}, {"MIB", 1u << 20}, {"GIB", 1u << 30}, {"TIB", std::uint64_t{1} << 40}};
    std::uint64_t scale = 0;
    for (const auto &[name, value] : kUnits)
        if (upper == name)
            scale = value;
    const std::string usage = "--max-shard-size '" + text + "': give bytes, or a whole number with KB, MB, GB (powers "
                              "of 10) or KiB, MiB, GiB (powers of 2), such as 5GB or 2GiB";
    if (digits == 0 || scale == 0)
        throw FormatError(usage);
    if (unit.size() > 1 && unit.back() == 'b')
        throw FormatError("--max-shard-size '" + text + "': a final lowercase 'b' means bits to transformers; write '" +
                          unit.substr(0, unit.size() - 1) + "B' for bytes");
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < digits; ++i)
        if (__builtin_mul_overflow(n, 10u, &n) || __builtin_add_overflow(n, std::uint64_t(text[i] - '0'), &n))
            throw FormatError(usage + " (this one is past 2^64 bytes)");
    if (__builtin_mul_overflow(n, scale, &n))
        throw FormatError(usage + " (this one is past 2^64 bytes)");
    if (n == 0)
        throw FormatError("--max-shard-size '" + text + "': a shard of 0 bytes holds nothing");
    return n;
}

ConversionPlan planConversion(const Document &doc, const std::string &output, const ConvertOptions &options)
{
    checkOutputExtension(output, options.to == ConvertTarget::Safetensors,
                         options.moduleExport ? std::string(kScriptExportWrites)
                                              : "a " + convertTargetName(options.to) + " conversion writes a torch zip (torch.load's format)");
    ConversionPlan plan;
    plan.input = doc.path;
    plan.output = output;
    plan.target = options.to;
    if (options.castTo && !isFloating(*options.castTo))
        throw FormatError("--dtype must be a floating type");
    try {
        Planner(doc, options, plan).run();
    } catch (const FormatError &e) {
        throw FormatError(doc.path + ": " + e.what());
    }
    // Sets of weights beside the model's under the same root key (a teacher beside the student
    // under 'state_dict') go with that key, which the planner accounts for as a whole: said as the
    // planner says it of a set under a key of its own. A full model's own tree is written whole.
    if (!doc.stateDictPath.empty() && !(options.to == ConvertTarget::FullModel && doc.stateDictSource == "module_tree"))
        for (const auto &p : doc.otherWeightSets)
            if (p.size() > 1 && p.front() == doc.stateDictPath.front())
                plan.lost.push_back({pathText(p), "another set of weights: the file's model weights, under '" +
                                                      pathText(doc.stateDictPath) +
                                                      "', are the ones written; convert this one on its own with "
                                                      "--weights '" +
                                                      pathText(p) + "'"});
    if (options.to == ConvertTarget::Inference || options.sidecar)
        plan.sidecarPath = sidecarPathFor(output);
    if (options.maxShardSize) {
        if (options.to != ConvertTarget::StateDict && options.to != ConvertTarget::Safetensors)
            throw FormatError("--max-shard-size splits a state-dict or safetensors output, not " +
                              convertTargetName(options.to));
        const WriteOptions wo = writeOptionsFor(doc, options);
        planShards(plan, options, wo, options.maxShardSize);
        if (plan.shards.empty())
            checkWriteTarget(plan.output, wo);
    }
    if ((options.to == ConvertTarget::StateDict || options.to == ConvertTarget::Safetensors) && !options.moduleExport)
        planSuperseded(plan, writeOptionsFor(doc, options));
    if (!options.moduleExport)
        noteInterruptedWrites(plan);
    return plan;
}

Document readWrittenBack(const std::string &temporary, const std::string &output)
{
    try {
        return readDocument(temporary);
    } catch (const FormatError &e) {
        std::string why = e.what();
        if (why.starts_with(temporary + ": "))
            why.erase(0, temporary.size() + 2);
        throw FormatError(output + ": what was written does not read back, so it was not kept: " + why);
    }
}

WriteOptions protectingInputs(const Document &doc, bool overwrite)
{
    WriteOptions w;
    w.allowOverwrite(overwrite).protect(doc.path);
    if (!doc.sidecarPath.empty())
        w.protect(doc.sidecarPath);
    for (const auto &f : doc.extraFiles)
        if (f)
            w.protect(f->path());
    return w;
}

namespace {
// A progress callback's answer: false cancels, said of `output`.
void reportFraction(const ConvertOptions &o, double fraction, const std::string &output)
{
    if (o.progress && !o.progress(fraction))
        throw FormatError(output + ": cancelled; nothing was written");
}

// What one output file holds: the whole plan, or one shard's part of it.
struct FilePart {
    std::string path;
    std::vector<std::pair<std::string, ValuePtr>> tensors;  // safetensors
    std::map<std::string, std::string> metadata;            // safetensors
    std::vector<std::string> kept;                          // safetensors: the order read back
    ValuePtr root;                                          // torch
};

FilePart wholePlan(const ConversionPlan &plan)
{
    return {plan.output, plan.tensors, plan.safetensorsMetadata, plan.kept, plan.root};
}

// The part of the plan a shard holds: its tensors; for safetensors the metadata with only its
// aliases and its own key order, for a torch file a state dict of the same class and _metadata.
FilePart shardPart(const ConversionPlan &plan, const ConversionPlan::Shard &shard)
{
    FilePart part;
    part.path = shard.path;
    part.kept = shard.names;
    const std::unordered_set<std::string_view> in(shard.names.begin(), shard.names.end());
    if (plan.target == ConvertTarget::Safetensors) {
        for (const auto &t : plan.tensors)
            if (in.contains(t.first))
                part.tensors.push_back(t);
        for (const auto &[k, v] : plan.safetensorsMetadata)
            if (k != kSafetensorsKeyOrder && !(k.starts_with("alias:") && !in.contains(std::string_view(k).substr(6))))
                part.metadata.emplace(k, v);
        if (shard.names.size() > 1 && plan.safetensorsMetadata.contains(std::string(kSafetensorsKeyOrder))) {
            std::string order = "[";
            for (const auto &name : shard.names) {
                if (order.size() > 1)
                    order += ',';
                jsontext::appendStringStrict(order, name);
            }
            part.metadata[std::string(kSafetensorsKeyOrder)] = order + "]";
        }
        return part;
    }
    auto d = Value::dict();
    d->setPythonClass(plan.root->pythonClass());
    if (plan.root->state())
        d->setState(plan.root->state());
    for (const auto &e : plan.root->entries())
        if (e.key && e.key->isString() && in.contains(e.key->text()))
            d->entries().push_back(e);
    part.root = d;
    return part;
}

// Writes a safetensors file to a temporary file beside part.path, reads it back with the project's
// reader and compares every tensor, the order and the metadata: finished, not yet renamed. Each
// tensor streams from its source (see streamBytes); its CRC is taken as it goes.
std::unique_ptr<AtomicFileWriter> writeSafetensorsPart(const ConversionPlan &plan, const FilePart &part,
                                                       const WriteOptions &wo, const std::function<void(double)> &progress,
                                                       std::size_t &verified)
{
    auto file = std::make_unique<AtomicFileWriter>(part.path, wo);
    auto sink = [&file](std::span<const std::uint8_t> b) { file->write(b); };
    std::vector<SafetensorsEntry> entries;
    std::unordered_map<std::string, std::pair<std::uint32_t, std::uint64_t>> expected; // crc, size
    expected.reserve(part.tensors.size());
    for (const auto &[name, v] : part.tensors) {
        const auto ref = v->tensorRef();
        SafetensorsEntry e;
        e.name = name;
        auto it = ref->storage ? plan.casts.find(ref->storage.get()) : plan.casts.end();
        e.dtype = it == plan.casts.end() ? ref->dtype : it->second;
        e.shape = ref->shape;
        e.byteSize = static_cast<std::uint64_t>(std::max<std::int64_t>(0, ref->numel())) * dtypeSize(e.dtype);
        const DType to = e.dtype;
        e.produce = [ref, to, key = name, &expected](const ByteSink &out) {  // a copy: clang cannot capture a structured binding
            std::uint32_t crc = 0;
            std::uint64_t size = 0;
            streamBytes(*ref, to, [&](std::span<const std::uint8_t> b) {
                crc = crc32Of(b, crc);
                size += b.size();
                out(b);
            });
            expected[key] = {crc, size};
        };
        entries.push_back(std::move(e));
    }
    SafetensorsWriter::write(sink, std::move(entries), part.metadata, [&](std::uint64_t d, std::uint64_t t) {
        progress(t ? static_cast<double>(d) / static_cast<double>(t) : 1.0);
    });
    file->finish([&](const std::string &temp) {
        const Document back = readWrittenBack(temp, part.path);
        // The reader gives each recorded alias as the tensor it names.
        std::unordered_map<std::string_view, std::string_view> aliasOf;
        for (const auto &[k, v] : part.metadata)
            if (k.starts_with("alias:"))
                aliasOf.emplace(std::string_view(k).substr(6), v);
        if (back.format != ContainerFormat::Safetensors || back.stateDict.size() != part.tensors.size() + aliasOf.size())
            throw FormatError(part.path + ": reading the written file back gives " + std::to_string(back.stateDict.size()) +
                              " tensors, expected " + std::to_string(part.tensors.size() + aliasOf.size()));
        for (const auto &t : back.stateDict) {
            const auto alias = aliasOf.find(t.name);
            auto it = expected.find(alias == aliasOf.end() ? t.name : std::string(alias->second));
            const auto bytes = t.ref().spannedBytes();
            if (it == expected.end() || crc32Of(bytes.bytes) != it->second.first || bytes.size() != it->second.second)
                throw FormatError(part.path + ": tensor '" + t.name + "' reads back different from what was written");
            ++verified;
        }
        // In the state dict's order, as the key order recorded restores it.
        std::size_t at = 0;
        for (const auto &t : back.stateDict)
            if (at < part.kept.size() && t.name == part.kept[at])
                ++at;
        if (part.kept.size() > 1 && at != part.kept.size())
            throw FormatError(part.path + ": reading the written file back does not give the tensors in the "
                                          "state dict's order");
        std::map<std::string, std::string> meta;
        if (back.formatMetadata && back.formatMetadata->isDict())
            for (const auto &e : back.formatMetadata->entries())
                meta[keyText(*e.key)] = e.value && e.value->isString() ? e.value->text() : "";
        if (meta != part.metadata)
            throw FormatError(part.path + ": the metadata reads back different from what was written");
    });
    return file;
}

// Writes a torch zip of part.root to a temporary file beside part.path, reads it back and
// compares the structure and every storage: finished, not yet renamed.
std::unique_ptr<AtomicFileWriter> writeTorchPart(const ConversionPlan &plan, const ConvertOptions &options,
                                                 const FilePart &part, const WriteOptions &wo,
                                                 const std::function<void(double)> &progress, std::size_t &verified)
{
    PickleWriter writer(pickleOptions(plan, options));
    std::string pkl;
    try {
        pkl = writer.write(part.root);
    } catch (const FormatError &e) {
        throw FormatError(part.path + ": not written: " + e.what());
    }
    auto file = std::make_unique<AtomicFileWriter>(part.path, wo);
    TorchZipWriter zip([&file](std::span<const std::uint8_t> b) { file->write(b); });
    zip.addRecord("data.pkl", pkl);
    zip.addRecord("byteorder", std::string("little"));
    std::uint64_t total = 0, done = 0;
    for (const auto &s : writer.storages())
        total += s.source->byteSize;
    // What each record must read back as: the source's own bytes when written unchanged
    // (compared byte for byte), else the CRC and size of what was written (a cast).
    struct Expected {
        std::uint32_t crc = 0;
        std::uint64_t size = 0;
        std::span<const std::uint8_t> same;
    };
    std::map<std::string, Expected> expected;
    for (const auto &s : writer.storages()) {
        const auto bytes = s.source->bulkData();
        zip.beginRecord("data/" + s.key);
        Expected e;
        e.size = bytes.size();
        if (s.dtype != s.source->dtype) {
            const auto cast = castFloats(bytes.bytes, s.source->dtype, s.dtype);
            zip.append(cast);
            e.size = cast.size();
        } else {
            zip.append(bytes.bytes);
            // Compared byte for byte where the bytes stay in memory anyway; a record
            // produced on use (inflated) is let go here and checked by its CRC.
            if (!s.source->producedOnUse())
                e.same = bytes.bytes;
        }
        e.crc = zip.endRecord();  // the CRC the zip computed as it wrote
        expected[s.key] = e;
        done += s.source->byteSize;
        progress(total ? static_cast<double>(done) / static_cast<double>(total) : 1.0);
    }
    zip.addRecord("version", std::string("3\n"));
    zip.finish();
    file->finish([&](const std::string &temp) {
        const Document back = readWrittenBack(temp, part.path);
        // Structure: the tree read back pickles to the very bytes written.
        PickleWriterOptions again = pickleOptions(plan, options);
        again.storageDType = {};
        again.tensorAs = {};
        PickleWriter rewriter(again);
        if (rewriter.write(back.root) != pkl)
            throw FormatError(part.path + ": the structure reads back different from what was written");
        if (rewriter.storages().size() != writer.storages().size())
            throw FormatError(part.path + ": the storages read back differ from those written");
        for (const auto &s : rewriter.storages()) {
            auto it = expected.find(s.key);
            const auto bytes = s.source->bulkData();
            const bool same =
                it != expected.end() && bytes.size() == it->second.size &&
                (it->second.same.data() ? std::memcmp(bytes.data(), it->second.same.data(), bytes.size()) == 0
                                        : crc32Of(bytes.bytes) == it->second.crc);
            if (!same)
                throw FormatError(part.path + ": storage '" + s.key + "' reads back different from what was written");
            ++verified;
        }
    });
    return file;
}
} // namespace

ConversionResult executeConversion(const Document &doc, const ConversionPlan &plan, const ConvertOptions &options)
{
    ConversionResult result;
    result.output = plan.shards.empty() ? plan.output : plan.indexPath;
    const WriteOptions wo = writeOptionsFor(doc, options);
    // Those of the plan's superseded files still there (the window plans with leave to replace, and
    // asks before it writes): none may be replaced without it.
    std::vector<std::string> superseded;
    for (const auto &f : plan.superseded)
        if (struct stat st {}; ::lstat(f.c_str(), &st) == 0)
            superseded.push_back(f);
    if (!superseded.empty() && !wo.overwrite)
        throw FormatError(superseded.front() + ": a file of a previous output under this name (use --force to replace it)");
    // The sidecar goes to its temporary file first: a full disk stops the conversion before
    // either file takes its name.
    const std::string sidecarText = plan.sidecarPath.empty() ? std::string() : pythonJsonText(plan.sidecar, 2) + "\n";
    std::unique_ptr<AtomicFileWriter> sidecar;
    if (!plan.sidecarPath.empty()) {
        sidecar = std::make_unique<AtomicFileWriter>(plan.sidecarPath, wo);
        sidecar->write(sidecarText);
    }
    const auto writePart = [&](const FilePart &part, const std::function<void(double)> &progress) {
        return plan.target == ConvertTarget::Safetensors
                   ? writeSafetensorsPart(plan, part, wo, progress, result.tensorsVerified)
                   : writeTorchPart(plan, options, part, wo, progress, result.tensorsVerified);
    };
    // The files of the output, each finished (written, verified, flushed) under its temporary name
    // (which Ctrl-C or a failure removes) before any takes its name: the shards and the index, or
    // the one file.
    std::vector<std::unique_ptr<AtomicFileWriter>> files;
    if (plan.shards.empty()) {
        files.push_back(writePart(wholePlan(plan), [&](double f) { reportFraction(options, f, plan.output); }));
        result.bytes = files.back()->size();
    } else {
        const double n = static_cast<double>(plan.shards.size());
        for (std::size_t k = 0; k < plan.shards.size(); ++k) {
            files.push_back(writePart(shardPart(plan, plan.shards[k]), [&](double f) {
                reportFraction(options, (static_cast<double>(k) + f) / n, plan.indexPath);
            }));
            result.bytes += files.back()->size();
            result.shards.push_back(plan.shards[k].path);
        }
        const std::string indexText = pythonJsonText(plan.shardIndex, 2) + "\n";
        const std::span<const std::uint8_t> indexBytes(reinterpret_cast<const std::uint8_t *>(indexText.data()),
                                                       indexText.size());
        auto index = std::make_unique<AtomicFileWriter>(plan.indexPath, wo);
        index->write(indexText);
        index->finish([&](const std::string &temp) {
            verifyFileBytes(temp, indexBytes, plan.indexPath);
            // The index read back as the sharded checkpoint it names is left to the caller: the
            // shards do not have their names yet.
        });
        files.push_back(std::move(index));
    }
    if (sidecar) {
        const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t *>(sidecarText.data()),
                                                  sidecarText.size());
        sidecar->finish([&](const std::string &temp) { verifyFileBytes(temp, bytes, plan.sidecarPath); });
    }
    // All take their names together or none does, over previous files too (--force): the shards,
    // the sidecar, then the index or the model (what is opened) last.
    std::vector<AtomicFileWriter *> set;
    for (std::size_t k = 0; k + 1 < files.size(); ++k)
        set.push_back(files[k].get());
    if (sidecar)
        set.push_back(sidecar.get());
    set.push_back(files.back().get());
    commitTogether(set);
    result.verified = true;
    if (sidecar)
        result.sidecarPath = plan.sidecarPath;
    // The previous set's files the new output does not name, now that it is in place (an input
    // since the plan, or one that went meanwhile, is left as it is).
    for (const auto &f : superseded) {
        if (isInput(f, wo))
            continue;
        if (::unlink(f.c_str()) == 0) {
            result.removed.push_back(f);
        } else if (const int err = errno; err != ENOENT) {
            result.notRemoved.push_back(f + ": " + std::strerror(err));
        }
    }
    if (!result.removed.empty())
        syncFolderOf(plan.output);
    return result;
}

nlohmann::ordered_json conversionToJson(const ConversionPlan &plan, const ConversionResult *result)
{
    using json = nlohmann::ordered_json;
    json j;
    j["input"] = plan.input;
    j["output"] = plan.shards.empty() ? plan.output : plan.indexPath;  // a sharded checkpoint is opened by its index
    j["target"] = convertTargetName(plan.target);
    j["kept"] = plan.kept;
    json dropped = json::array();
    for (const auto &d : plan.dropped)
        dropped.push_back({{"name", d.entry}, {"reason", d.reason}});
    j["dropped"] = dropped;
    j["carried"] = plan.carried;
    json lost = json::array();
    for (const auto &l : plan.lost)
        lost.push_back({{"entry", l.entry}, {"reason", l.reason}});
    j["lost"] = lost;
    j["detected_prefixes"] = plan.detectedPrefixes;
    if (plan.castTo)
        j["cast"] = {{"dtype", std::string(dtypeName(*plan.castTo))},
                     {"values", plan.cast.values},
                     {"overflow", plan.cast.overflow},
                     {"subnormal", plan.cast.subnormal},
                     {"zeroed", plan.cast.zeroed}};
    else
        j["cast"] = nullptr;
    j["bytes_before"] = plan.bytesBefore;
    j["bytes_after"] = plan.bytesAfter;
    j["warnings"] = plan.warnings;
    j["sidecar"] = plan.sidecarPath.empty() ? json(nullptr) : json(plan.sidecarPath);
    if (!plan.loraAdapter.empty()) {
        json renamed = json::array();
        for (const auto &[from, to] : plan.lora.renamed)
            renamed.push_back({{"from", from}, {"to", to}});
        j["lora"] = {{"adapter", plan.loraAdapter},
                     {"merged", plan.lora.merged},
                     {"replaced", plan.lora.replaced},
                     {"renamed", renamed}};
    }
    if (!plan.shards.empty()) {
        json shards = json::array();
        for (const auto &s : plan.shards)
            shards.push_back({{"file", s.path}, {"tensors", s.names.size()}, {"bytes", s.bytes}});
        j["shards"] = {{"index", plan.indexPath}, {"total_size", plan.totalSize}, {"files", shards}};
    }
    if (!plan.superseded.empty())
        j["superseded"] = plan.superseded;
    if (result) {
        j["result"] = {
            {"bytes", result->bytes}, {"verified", result->verified}, {"storages_verified", result->tensorsVerified}};
        if (!plan.superseded.empty()) {
            j["result"]["removed"] = result->removed;
            j["result"]["not_removed"] = result->notRemoved;
        }
    }
    return j;
}

} // namespace ckpt
