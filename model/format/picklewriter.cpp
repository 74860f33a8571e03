#include "picklewriter.h"

#include "error.h"

#include <bit>
#include <cstring>

namespace ckpt {

namespace {

// A Parameter that carries attributes of its own (torch's _rebuild_parameter_with_state).
bool hasExtraState(const Value &v)
{
    return v.state() && !(v.state()->isDict() && v.state()->entries().empty()) && !v.state()->isNone();
}
enum : std::uint8_t {
    MARK = '(',
    STOP = '.',
    BINFLOAT = 'G',
    BININT = 'J',
    BININT1 = 'K',
    BININT2 = 'M',
    NONE = 'N',
    BINPERSID = 'Q',
    REDUCE = 'R',
    BINUNICODE = 'X',
    APPEND = 'a',
    BUILD = 'b',
    GLOBAL = 'c',
    APPENDS = 'e',
    BINGET = 'h',
    LONG_BINGET = 'j',
    EMPTY_LIST = ']',
    BINPUT = 'q',
    LONG_BINPUT = 'r',
    SETITEMS = 'u',
    TUPLE = 't',
    EMPTY_TUPLE = ')',
    EMPTY_DICT = '}',
    PROTO = 0x80,
    NEWOBJ = 0x81,
    TUPLE1 = 0x85,
    TUPLE2 = 0x86,
    TUPLE3 = 0x87,
    NEWTRUE = 0x88,
    NEWFALSE = 0x89,
    LONG1 = 0x8a,
    LONG4 = 0x8b,
};
constexpr int kMaxDepth = 4000;
constexpr std::size_t kBatch = 1000; // as Python's pickler batches APPENDS and SETITEMS

void appendLE32(std::string &out, std::uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::string latin1ToUtf8(const std::string &raw)
{
    std::string s;
    s.reserve(raw.size());
    for (unsigned char c : raw) {
        if (c < 0x80) {
            s.push_back(static_cast<char>(c));
        } else {
            s.push_back(static_cast<char>(0xC0 | (c >> 6)));
            s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
    return s;
}
} // namespace

std::string storageClassName(DType t)
{
    return std::string(dtypeStorageClass(t));
}

std::string encodeLong(const std::string &decimal)
{
    std::size_t i = 0;
    const bool negative = !decimal.empty() && decimal[0] == '-';
    if (!decimal.empty() && (decimal[0] == '-' || decimal[0] == '+'))
        i = 1;
    if (i == decimal.size())
        throw FormatError("'" + decimal + "' is not an integer");
    std::vector<std::uint8_t> mag; // little-endian magnitude
    for (; i < decimal.size(); ++i) {
        const char c = decimal[i];
        if (c < '0' || c > '9')
            throw FormatError("'" + decimal.substr(0, 40) + "' is not an integer");
        unsigned carry = static_cast<unsigned>(c - '0');
        for (auto &b : mag) {
            const unsigned v = b * 10u + carry;
            b = static_cast<std::uint8_t>(v & 0xFF);
            carry = v >> 8;
        }
        while (carry) {
            mag.push_back(static_cast<std::uint8_t>(carry & 0xFF));
            carry >>= 8;
        }
    }
    while (!mag.empty() && mag.back() == 0)
        mag.pop_back();
    if (mag.empty())
        return {}; // zero: LONG1 with no bytes
    if (!negative) {
        if (mag.back() & 0x80)
            mag.push_back(0);
    } else {
        // Two's complement of the magnitude.
        unsigned carry = 1;
        for (auto &b : mag) {
            const unsigned v = static_cast<std::uint8_t>(~b) + carry;
            b = static_cast<std::uint8_t>(v & 0xFF);
            carry = v >> 8;
        }
        if (!(mag.back() & 0x80))
            mag.push_back(0xFF);
    }
    return {mag.begin(), mag.end()};
}

PickleWriter::PickleWriter(PickleWriterOptions options) : m_options(std::move(options)) {}

std::string PickleWriter::write(const ValuePtr &root)
{
    m_out.clear();
    m_memo.clear();
    m_globalMemo.clear();
    m_storageIndex.clear();
    m_storages.clear();
    m_keep.clear();
    m_nextMemo = 0;
    op(PROTO);
    op(2);
    save(root, 0);
    op(STOP);
    return std::move(m_out);
}

void PickleWriter::put(const Value *v)
{
    const std::uint32_t idx = m_nextMemo++;
    if (v)
        m_memo[v] = idx;
    if (idx < 256) {
        op(BINPUT);
        op(static_cast<std::uint8_t>(idx));
    } else {
        op(LONG_BINPUT);
        appendLE32(m_out, idx);
    }
}

bool PickleWriter::get(const Value *v)
{
    auto it = m_memo.find(v);
    if (it == m_memo.end())
        return false;
    if (it->second < 256) {
        op(BINGET);
        op(static_cast<std::uint8_t>(it->second));
    } else {
        op(LONG_BINGET);
        appendLE32(m_out, it->second);
    }
    return true;
}

void PickleWriter::saveGlobal(const std::string &module, const std::string &name)
{
    const std::string key = module + "\n" + name + "\n";
    if (auto it = m_globalMemo.find(key); it != m_globalMemo.end()) {
        if (it->second < 256) {
            op(BINGET);
            op(static_cast<std::uint8_t>(it->second));
        } else {
            op(LONG_BINGET);
            appendLE32(m_out, it->second);
        }
        return;
    }
    if (key.find('\n') != module.size() || name.find('\n') != std::string::npos)
        throw FormatError("global name '" + module + "." + name + "' holds a line break");
    op(GLOBAL);
    m_out += key;
    m_globalMemo[key] = m_nextMemo;
    put(nullptr);
}

void PickleWriter::saveString(const std::string &s)
{
    if (s.size() > 0xFFFFFFFFu)
        throw FormatError("a string longer than 4 GiB cannot be written in protocol 2");
    op(BINUNICODE);
    appendLE32(m_out, static_cast<std::uint32_t>(s.size()));
    m_out += s;
}

void PickleWriter::saveInt(std::int64_t i)
{
    if (i >= 0 && i < 256) {
        op(BININT1);
        op(static_cast<std::uint8_t>(i));
    } else if (i >= 0 && i < 65536) {
        op(BININT2);
        op(static_cast<std::uint8_t>(i & 0xFF));
        op(static_cast<std::uint8_t>(i >> 8));
    } else if (i >= INT32_MIN && i <= INT32_MAX) {
        op(BININT);
        appendLE32(m_out, static_cast<std::uint32_t>(static_cast<std::int32_t>(i)));
    } else {
        saveBigInt(std::to_string(i));
    }
}

void PickleWriter::saveBigInt(const std::string &decimal)
{
    const std::string payload = encodeLong(decimal);
    if (payload.size() < 256) {
        op(LONG1);
        op(static_cast<std::uint8_t>(payload.size()));
    } else {
        op(LONG4);
        appendLE32(m_out, static_cast<std::uint32_t>(payload.size()));
    }
    m_out += payload;
}

void PickleWriter::saveItems(const std::vector<ValuePtr> &items, int depth)
{
    for (std::size_t i = 0; i < items.size(); i += kBatch) {
        const std::size_t end = std::min(items.size(), i + kBatch);
        if (end - i == 1) {
            save(items[i], depth + 1);
            op(APPEND);
            continue;
        }
        op(MARK);
        for (std::size_t j = i; j < end; ++j)
            save(items[j], depth + 1);
        op(APPENDS);
    }
}

void PickleWriter::saveEntries(const std::vector<Value::DictEntry> &entries, int depth)
{
    for (std::size_t i = 0; i < entries.size(); i += kBatch) {
        const std::size_t end = std::min(entries.size(), i + kBatch);
        op(MARK);
        for (std::size_t j = i; j < end; ++j) {
            save(entries[j].key, depth + 1);
            save(entries[j].value, depth + 1);
        }
        op(SETITEMS);
    }
}

void PickleWriter::saveEmptyOrderedDict()
{
    saveGlobal("collections", "OrderedDict");
    op(EMPTY_TUPLE);
    op(REDUCE);
    put(nullptr);
}

DType PickleWriter::writtenDType(const StorageRef &s) const
{
    return m_options.storageDType ? m_options.storageDType(s) : s.dtype;
}

bool PickleWriter::writtenUntyped(const StorageRef &s) const
{
    return s.untyped || storageClassName(writtenDType(s)).empty();
}

void PickleWriter::saveStorage(const std::shared_ptr<StorageRef> &s)
{
    auto it = m_storageIndex.find(s.get());
    std::size_t index = 0;
    if (it == m_storageIndex.end()) {
        if (!s->resolved)
            throw FormatError("storage '" + s->key + "' cannot be written: " +
                              (s->problem.empty() ? std::string("its bytes are not available") : s->problem));
        PickleStorage ps;
        ps.key = std::to_string(m_storages.size());
        ps.source = s;
        ps.dtype = writtenDType(*s);
        ps.location = m_options.cpuLocations || s->location.empty() ? std::string("cpu") : s->location;
        ps.untyped = writtenUntyped(*s);
        const auto size = ps.untyped ? 1 : dtypeSize(s->dtype);
        ps.numel = size ? static_cast<std::int64_t>(s->byteSize / size) : 0;
        index = m_storages.size();
        m_storageIndex.emplace(s.get(), index);
        m_storages.push_back(std::move(ps));
    } else {
        index = it->second;
    }
    const auto &ps = m_storages[index];
    op(MARK);
    saveString("storage");
    if (ps.untyped)
        saveGlobal("torch.storage", "UntypedStorage");
    else
        saveGlobal("torch", storageClassName(ps.dtype));
    saveString(ps.key);
    saveString(ps.location);
    saveInt(ps.numel);
    op(TUPLE);
    op(BINPERSID);
}

// A sparse tensor as torch's Tensor.__reduce_ex__ writes it: REBUILD(layout, (parts..., torch.Size(size))),
// the parts being COO's (indices, values), by _rebuild_sparse_tensor, or CSR's (crow_indices,
// col_indices, values), by torch 1.x's _rebuild_sparse_csr_tensor or torch 2's _rebuild_sparse_tensor
// as the file had it. The data tuple is pickled as Python's protocol 2 does: TUPLE1-3 up to three
// items, MARK ... TUPLE past that. One writer for both layouts (they were two near-copies).
void PickleWriter::saveSparse(const ValuePtr &v, int depth)
{
    const TensorRef &t = *v->tensorRef();
    const bool coo = t.layout == TensorRef::Layout::SparseCoo;
    const std::vector<ValuePtr> parts = t.sparseParts();
    for (const auto &part : parts)
        if (!part || !part->isTensor())
            throw FormatError(coo ? "a sparse tensor without its indices and values cannot be written"
                                  : "a sparse CSR tensor without its crow_indices, col_indices and values cannot be written");
    saveGlobal("torch._utils", coo || t.rebuild == "_rebuild_sparse_tensor" ? "_rebuild_sparse_tensor"
                                                                            : "_rebuild_sparse_csr_tensor");
    saveGlobal("torch.serialization", "_get_layout");
    saveString(coo ? "torch.sparse_coo" : "torch.sparse_csr");
    op(TUPLE1);
    op(REDUCE);
    const std::size_t items = parts.size() + 1;  // the parts, then the size
    if (items > 3)
        op(MARK);
    for (const auto &part : parts)
        save(part, depth + 1);
    saveGlobal("torch", "Size");
    saveIntTuple(t.shape);
    op(TUPLE1);
    op(REDUCE);
    op(items == 1 ? TUPLE1 : items == 2 ? TUPLE2 : items == 3 ? TUPLE3 : TUPLE);
    op(TUPLE2);
    op(REDUCE);
    put(v.get());
}

void PickleWriter::saveIntTuple(const std::vector<std::int64_t> &xs)
{
    if (xs.empty()) {
        op(EMPTY_TUPLE);
        return;
    }
    if (xs.size() > 3)
        op(MARK);
    for (auto x : xs)
        saveInt(x);
    op(xs.size() == 1 ? TUPLE1 : xs.size() == 2 ? TUPLE2 : xs.size() == 3 ? TUPLE3 : TUPLE);
    put(nullptr);
}

namespace {
// numpy's dtype code for the element type ("u4"); empty for a type numpy has none of.
std::string numpyCode(DType t)
{
    switch (t) {
    case DType::Bool: return "b1";
    case DType::Int8: return "i1";
    case DType::UInt8: return "u1";
    case DType::Int16: return "i2";
    case DType::UInt16: return "u2";
    case DType::Int32: return "i4";
    case DType::UInt32: return "u4";
    case DType::Int64: return "i8";
    case DType::UInt64: return "u8";
    case DType::Float16: return "f2";
    case DType::Float32: return "f4";
    case DType::Float64: return "f8";
    case DType::Complex64: return "c8";
    case DType::Complex128: return "c16";
    default: return {};
    }
}
} // namespace

// A numpy array as numpy pickles it at protocol 2: _reconstruct(ndarray, (0,), b'b') then BUILD
// (1, shape, dtype(code, False, True) with its BUILD state, is_fortran, raw bytes), so that a full
// pickle gives numpy arrays back as numpy arrays (np.random.get_state()'s uint32 key included).
void PickleWriter::saveNumpyArray(const ValuePtr &v, int depth)
{
    const TensorRef &t = *v->tensorRef();
    const std::string code = numpyCode(t.dtype);
    if (code.empty() || !t.storage || t.dtype != t.storage->dtype || t.layout != TensorRef::Layout::Strided)
        throw FormatError("a numpy array of " + std::string(dtypeName(t.dtype)) + " cannot be written");
    if (!t.problem.empty())
        throw FormatError("a numpy array does not fit its storage: " + t.problem);
    // Its bytes in C order, or in Fortran order as numpy keeps a Fortran array.
    bool fortran = false;
    HeldBytes bytes;
    if (t.numel() > 0) {
        std::vector<std::int64_t> f(t.shape.size(), 1);
        for (std::size_t d = 1; d < t.shape.size(); ++d)
            f[d] = f[d - 1] * std::max<std::int64_t>(1, t.shape[d - 1]);
        fortran = t.shape.size() > 1 && !t.isContiguous() && t.strides == f;
        if (!t.isContiguous() && !fortran)
            throw FormatError("a numpy array that is a strided view cannot be written");
        bytes = t.spannedBytes();
        if (bytes.size() != static_cast<std::size_t>(t.numel()) * dtypeSize(t.dtype))
            throw FormatError("a numpy array's bytes are not available");
    }
    saveGlobal("numpy.core.multiarray", "_reconstruct");
    saveGlobal("numpy", "ndarray");
    saveInt(0);
    op(TUPLE1);
    put(nullptr);
    saveGlobal("_codecs", "encode");
    saveString("b");
    saveString("latin1");
    op(TUPLE2);
    op(REDUCE);
    put(nullptr);
    op(TUPLE3);
    put(nullptr);
    op(REDUCE);
    put(v.get());
    op(MARK);
    saveInt(1);
    saveIntTuple(t.shape);
    saveGlobal("numpy", "dtype");
    saveString(code);
    op(NEWFALSE);
    op(NEWTRUE);
    op(TUPLE3);
    put(nullptr);
    op(REDUCE);
    put(nullptr);
    op(MARK);
    saveInt(3);
    saveString(dtypeSize(t.dtype) == 1 ? "|" : "<");
    op(NONE);
    op(NONE);
    op(NONE);
    saveInt(-1);
    saveInt(-1);
    saveInt(0);
    op(TUPLE);
    put(nullptr);
    op(BUILD);
    op(fortran ? NEWTRUE : NEWFALSE);
    saveGlobal("_codecs", "encode");
    saveString(latin1ToUtf8(std::string(reinterpret_cast<const char *>(bytes.data()), bytes.size())));
    saveString("latin1");
    op(TUPLE2);
    op(REDUCE);
    put(nullptr);
    op(TUPLE);
    put(nullptr);
    op(BUILD);
    (void)depth;
}

// A quantized tensor as torch 1.13's Tensor._reduce_ex_internal writes it:
// _rebuild_qtensor(storage, offset, size, stride, quantizer_params, requires_grad, OrderedDict()),
// the params (torch.per_tensor_affine, scale, zero_point) or (torch.per_channel_affine[_float_qparams],
// scales, zero_points, axis), the per-channel ones plain tensors. The storage is the quantized type's
// own (QInt8Storage, ...; QUInt4x2's counts bytes). torch refuses to save any other scheme.
void PickleWriter::saveQuantized(const ValuePtr &v, int depth)
{
    const TensorRef &t = *v->tensorRef();
    const auto &q = *t.quantization;
    if (!t.storage)
        throw FormatError("a quantized tensor without storage cannot be written");
    if (t.storage->untyped || t.dtype != t.storage->dtype || dtypeStorageClass(t.dtype).empty())
        throw FormatError("a quantized " + std::string(dtypeName(t.dtype)) + " tensor on a " +
                          std::string(dtypeName(t.storage->dtype)) + " storage cannot be written");
    if (writtenDType(*t.storage) != t.storage->dtype)
        throw FormatError("a quantized tensor's storage cannot be cast");
    if (t.shape.size() != t.strides.size())
        throw FormatError("a tensor's shape and strides disagree");
    if (!t.problem.empty())
        throw FormatError("a tensor does not fit its storage: " + t.problem);
    const bool perTensor = q.scheme == "per_tensor_affine";
    const bool perChannel = q.scheme == "per_channel_affine" || q.scheme == "per_channel_affine_float_qparams";
    if (!perTensor && !perChannel)
        throw FormatError("a quantized tensor of scheme '" + q.scheme + "' cannot be written (torch saves only "
                          "per_tensor_affine, per_channel_affine and per_channel_affine_float_qparams)");
    if (perChannel && (!q.scales || !q.scales->isTensor() || !q.zeroPoints || !q.zeroPoints->isTensor()))
        throw FormatError("a per-channel quantized tensor without its scales and zero points cannot be written");
    if (t.isParameter && hasExtraState(*v))
        throw FormatError("a quantized parameter with extra state cannot be written");
    openParameter(v);
    saveGlobal("torch._utils", "_rebuild_qtensor");
    op(MARK);
    saveStorage(t.storage);
    saveInt(t.storageOffset);
    saveIntTuple(t.shape);
    saveIntTuple(t.strides);
    if (perTensor) {
        saveGlobal("torch", "per_tensor_affine");
        save(Value::floating(q.scale), depth + 1);
        saveInt(q.zeroPoint);
        op(TUPLE3);
    } else {
        op(MARK);
        saveGlobal("torch", q.scheme);
        save(q.scales, depth + 1);
        save(q.zeroPoints, depth + 1);
        saveInt(q.axis);
        op(TUPLE);
    }
    put(nullptr);
    op(t.isParameter ? NEWFALSE : (t.requiresGrad ? NEWTRUE : NEWFALSE));
    saveEmptyOrderedDict();
    op(TUPLE);
    put(nullptr);
    op(REDUCE);
    closeParameter(v, depth);
    put(v.get());
}

void PickleWriter::openParameter(const ValuePtr &v)
{
    if (!v->tensorRef()->isParameter)
        return;
    saveGlobal("torch._utils", hasExtraState(*v) ? "_rebuild_parameter_with_state" : "_rebuild_parameter");
    op(MARK);
}

void PickleWriter::closeParameter(const ValuePtr &v, int depth)
{
    if (!v->tensorRef()->isParameter)
        return;
    put(nullptr);
    op(v->tensorRef()->requiresGrad ? NEWTRUE : NEWFALSE);
    saveEmptyOrderedDict();
    if (hasExtraState(*v)) {
        if (m_options.weightsOnly)
            throw FormatError("a parameter with extra state cannot go into a weights-only file");
        save(v->state(), depth + 1);
    }
    op(TUPLE);
    put(nullptr);
    op(REDUCE);
}

void PickleWriter::saveTensor(const ValuePtr &v, int depth)
{
    const TensorRef &t = *v->tensorRef();
    // In a full pickle a numpy array stays one (a weights-only file holds it as a torch tensor).
    if (!m_options.weightsOnly && t.rebuild == "numpy.ndarray" && !t.isParameter &&
        v->pythonClass() == "numpy.ndarray")
        return saveNumpyArray(v, depth);
    if (t.layout == TensorRef::Layout::Meta) {
        // _rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad)
        if (dtypeStorageClass(t.dtype).empty())
            throw FormatError("a meta tensor of " + std::string(dtypeName(t.dtype)) + " cannot be written yet");
        saveGlobal("torch._utils", "_rebuild_meta_tensor_no_storage");
        op(MARK);
        saveGlobal("torch", std::string(dtypeName(t.dtype)));
        saveIntTuple(t.shape);
        saveIntTuple(t.strides);
        op(t.requiresGrad ? NEWTRUE : NEWFALSE);
        op(TUPLE);
        put(nullptr);
        op(REDUCE);
        put(v.get());
        return;
    }
    if (t.layout == TensorRef::Layout::SparseCoo || t.layout == TensorRef::Layout::SparseCsr) {
        saveSparse(v, depth);
        return;
    }
    if (!t.storage)
        throw FormatError("a tensor without storage cannot be written");
    if (t.quantization) {
        saveQuantized(v, depth);
        return;
    }
    const auto as = m_options.tensorAs ? m_options.tensorAs(*v) : nullptr;
    saveStridedTensor(v, as ? *as : t, depth);
}

void PickleWriter::saveStridedTensor(const ValuePtr &v, const TensorRef &t, int depth)
{
    // A dtype with no typed storage class (float8, uint16/32/64, complex32) or a tensor on an
    // untyped storage is written as torch >= 2.0 writes it: _rebuild_tensor_v3 naming the dtype.
    const bool v3 = writtenUntyped(*t.storage);
    if (!v3 && t.dtype != t.storage->dtype)
        throw FormatError("a " + std::string(dtypeName(t.dtype)) + " tensor on a " +
                          std::string(dtypeName(t.storage->dtype)) + " storage cannot be written");
    if (t.shape.size() != t.strides.size())
        throw FormatError("a tensor's shape and strides disagree");
    if (!t.problem.empty())
        throw FormatError("a tensor does not fit its storage: " + t.problem);
    openParameter(v);
    saveGlobal("torch._utils", v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2");
    op(MARK);
    saveStorage(t.storage);
    saveInt(t.storageOffset);
    saveIntTuple(t.shape);
    saveIntTuple(t.strides);
    op(t.isParameter ? NEWFALSE : (t.requiresGrad ? NEWTRUE : NEWFALSE));
    saveEmptyOrderedDict();
    if (v3) {
        const DType dtype = t.dtype == t.storage->dtype ? writtenDType(*t.storage) : t.dtype;
        saveGlobal("torch", std::string(dtypeName(dtype)));
    }
    op(TUPLE);
    put(nullptr);
    op(REDUCE);
    closeParameter(v, depth);
    put(v.get());
}

void PickleWriter::save(const ValuePtr &v, int depth)
{
    if (depth > kMaxDepth)
        throw FormatError("the value nests deeper than " + std::to_string(kMaxDepth) + " levels");
    if (!v) {
        op(NONE);
        return;
    }
    using K = Value::Kind;
    switch (v->kind()) {
    case K::None:
        op(NONE);
        return;
    case K::Bool:
        op(v->asBool() ? NEWTRUE : NEWFALSE);
        return;
    case K::Int:
        saveInt(v->asInt());
        return;
    case K::BigInt:
        saveBigInt(v->text());
        return;
    case K::Float: {
        op(BINFLOAT);
        const auto bits = std::bit_cast<std::uint64_t>(v->asFloat());
        for (int i = 7; i >= 0; --i)
            m_out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
        return;
    }
    default:
        break;
    }
    if (get(v.get()))
        return;
    const std::string &cls = v->pythonClass();
    switch (v->kind()) {
    case K::String: {
        if (!m_options.weightsOnly && cls == "torch.device") {
            const auto colon = v->text().find(':');
            saveGlobal("torch", "device");
            saveString(v->text().substr(0, colon));
            if (colon != std::string::npos) {
                saveInt(std::stoll(v->text().substr(colon + 1)));
                op(TUPLE2);
            } else {
                op(TUPLE1);
            }
            op(REDUCE);
        } else if (!m_options.weightsOnly && cls == "torch.torch_version.TorchVersion") {
            saveGlobal("torch.torch_version", "TorchVersion");
            saveString(v->text());
            op(TUPLE1);
            op(NEWOBJ);
        } else if (cls == "torch.layout") {
            saveGlobal("torch.serialization", "_get_layout");
            saveString(v->text());
            op(TUPLE1);
            op(REDUCE);
        } else {
            saveString(v->text());
        }
        put(v.get());
        return;
    }
    case K::Bytes:
        if (m_options.weightsOnly)
            throw FormatError("bytes cannot go into a weights-only file");
        if (cls == "builtins.bytearray") {
            saveGlobal("builtins", "bytearray");
            saveString(latin1ToUtf8(v->text()));
            saveString("latin-1");
        } else {
            saveGlobal("_codecs", "encode");
            saveString(latin1ToUtf8(v->text()));
            saveString("latin1");
        }
        op(TUPLE2);
        op(REDUCE);
        put(v.get());
        return;
    case K::Complex: {
        if (m_options.weightsOnly)
            throw FormatError("a complex number cannot go into a weights-only file");
        saveGlobal("builtins", "complex");
        auto re = Value::floating(v->asFloat());
        auto im = Value::floating(v->imag());
        save(re, depth + 1);
        save(im, depth + 1);
        op(TUPLE2);
        op(REDUCE);
        put(v.get());
        return;
    }
    case K::Tuple: {
        const auto &items = v->items();
        const bool size = cls == "torch.Size";
        if (size)
            saveGlobal("torch", "Size");
        if (items.empty()) {
            op(EMPTY_TUPLE);
        } else {
            if (items.size() > 3)
                op(MARK);
            for (const auto &i : items)
                save(i, depth + 1);
            // A tuple that reached itself through a container is already memoized: use that.
            if (m_memo.contains(v.get()))
                throw FormatError("a tuple contains itself; such a cycle cannot be written");
            op(items.size() == 1 ? TUPLE1 : items.size() == 2 ? TUPLE2 : items.size() == 3 ? TUPLE3 : TUPLE);
        }
        if (size) {
            op(TUPLE1);
            op(REDUCE);
        }
        put(v.get());
        return;
    }
    case K::List:
        op(EMPTY_LIST);
        put(v.get());
        saveItems(v->items(), depth);
        return;
    case K::Dict:
        if (cls == "collections.OrderedDict") {
            saveGlobal("collections", "OrderedDict");
            op(EMPTY_TUPLE);
            op(REDUCE);
        } else {
            op(EMPTY_DICT);
        }
        put(v.get());
        saveEntries(v->entries(), depth);
        if (cls == "collections.OrderedDict" && v->state() && !v->state()->isNone()) {
            save(v->state(), depth + 1);
            op(BUILD);
        }
        return;
    case K::Set:
    case K::FrozenSet: {
        if (m_options.weightsOnly)
            throw FormatError("a set cannot go into a weights-only file");
        saveGlobal("builtins", v->kind() == K::Set ? "set" : "frozenset");
        auto list = Value::list(v->items());
        m_keep.push_back(list);
        save(list, depth + 1);
        op(TUPLE1);
        op(REDUCE);
        put(v.get());
        return;
    }
    case K::Global:
        if (m_options.weightsOnly && v->text() != "torch")
            throw FormatError("the global " + v->qualifiedName() + " cannot go into a weights-only file");
        saveGlobal(v->text(), v->name());
        m_memo[v.get()] = m_globalMemo[v->text() + "\n" + v->name() + "\n"];
        return;
    case K::Object: {
        if (m_options.weightsOnly)
            throw FormatError("an object of class " +
                              (v->objectClass() && v->objectClass()->kind() == K::Global
                                   ? v->objectClass()->qualifiedName()
                                   : std::string("?")) +
                              " cannot go into a weights-only file");
        save(v->objectClass(), depth + 1);
        // As it was made: cls.__new__(cls, *args) (NEWOBJ, what protocol 2 writes for an instance)
        // or a call of the class or function (REDUCE, a __reduce__ such as f()).
        const ValuePtr &args = v->args();
        if (!args || (args->isSequence() && args->items().empty()))
            op(EMPTY_TUPLE);
        else
            save(args, depth + 1);
        op(v->builtByNew() ? NEWOBJ : REDUCE);
        put(v.get());
        if (!v->items().empty())
            saveItems(v->items(), depth);
        if (!v->entries().empty())
            saveEntries(v->entries(), depth);
        if (v->state()) {
            save(v->state(), depth + 1);
            op(BUILD);
        }
        return;
    }
    case K::Tensor:
        saveTensor(v, depth);
        return;
    case K::Storage:
        if (m_options.weightsOnly)
            throw FormatError("a bare storage cannot go into a weights-only file");
        saveStorage(v->storageRef());
        put(v.get());
        return;
    default:
        throw FormatError("a " + v->typeName() + " cannot be written");
    }
}

} // namespace ckpt
