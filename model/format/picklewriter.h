#pragma once

#include "tensorref.h"
#include "value.h"

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace ckpt {

// A storage the written pickle refers to by persistent id ('storage', torch.<T>Storage, key,
// location, numel); its bytes go into the container's record `data/<key>`.
struct PickleStorage {
    std::string key;                    // "0", "1", ... in order of first use
    std::shared_ptr<StorageRef> source; // where the bytes come from
    DType dtype = DType::Unknown;       // as written (differs from the source's after a cast)
    std::string location;               // as written ("cpu" unless kept)
    std::int64_t numel = 0;             // elements (bytes when untyped)
    bool untyped = false;               // written as torch.storage.UntypedStorage (torch >= 2.0 reads it)
};

struct PickleWriterOptions {
    // The dtype each storage is written as; unset: its own (the conversion's dtype cast).
    std::function<DType(const StorageRef &)> storageDType;
    // The storage, offset and strides a dense tensor value is written with instead of its own (null:
    // its own); unset: none. Module.to(dtype) gives each Parameter and buffer it casts a storage of
    // its own, where the source had several on one storage.
    std::function<std::shared_ptr<const TensorRef>(const Value &)> tensorAs;
    bool cpuLocations = true; // saved device tags become "cpu" (what map_location='cpu' does)
    // Only what torch.load(weights_only=True) accepts: str subclasses (TorchVersion, torch.device,
    // paths) are written as str; anything else it refuses makes write() throw.
    bool weightsOnly = false;
    PickleWriterOptions &dtypeOf(std::function<DType(const StorageRef &)> f)
    {
        storageDType = std::move(f);
        return *this;
    }
    PickleWriterOptions &keepLocations(bool keep)
    {
        cpuLocations = !keep;
        return *this;
    }
    PickleWriterOptions &weightsOnlyFile(bool v)
    {
        weightsOnly = v;
        return *this;
    }
};

// Writes a value tree as the protocol-2 pickle torch.save emits: OrderedDicts by REDUCE with their
// `_metadata` by BUILD, tensors by torch._utils._rebuild_tensor_v2 (parameters wrapped in
// _rebuild_parameter; sparse COO, meta and quantized tensors by their own rebuilds) over typed storages as persistent ids, plain containers and scalars, and
// opaque objects re-emitted as class + arguments (NEWOBJ when there are none, REDUCE otherwise) +
// appended items + BUILD state, so that a pickled module tree survives. Every object written twice
// (a shared container, a tied tensor, a storage under several tensors) is written once and
// referenced through the memo, so sharing survives. Throws FormatError for what it cannot write.
class PickleWriter {
public:
    explicit PickleWriter(PickleWriterOptions options = {});
    std::string write(const ValuePtr &root);
    // Storages in key order, as referred to by the last write().
    const std::vector<PickleStorage> &storages() const { return m_storages; }

private:
    void save(const ValuePtr &v, int depth);
    void saveTensor(const ValuePtr &v, int depth);
    void saveStridedTensor(const ValuePtr &v, const TensorRef &t, int depth);  // `t`: v's, or what tensorAs gives
    void saveNumpyArray(const ValuePtr &v, int depth);
    void saveSparse(const ValuePtr &v, int depth);  // COO and CSR: one writer for both
    void saveQuantized(const ValuePtr &v, int depth);
    // A Parameter is written as _rebuild_parameter[_with_state](tensor, requires_grad, hooks[, state]):
    // the call's opening before the tensor's rebuild, and its closing after it.
    void openParameter(const ValuePtr &v);
    void closeParameter(const ValuePtr &v, int depth);
    void saveStorage(const std::shared_ptr<StorageRef> &s);
    DType writtenDType(const StorageRef &s) const;  // after the conversion's cast
    bool writtenUntyped(const StorageRef &s) const; // as torch.storage.UntypedStorage
    void saveGlobal(const std::string &module, const std::string &name);
    void saveString(const std::string &s);
    void saveInt(std::int64_t i);
    void saveIntTuple(const std::vector<std::int64_t> &xs);
    void saveBigInt(const std::string &decimal);
    void saveItems(const std::vector<ValuePtr> &items, int depth);
    void saveEntries(const std::vector<Value::DictEntry> &entries, int depth);
    void saveEmptyOrderedDict();
    void put(const Value *v);
    bool get(const Value *v);
    void op(std::uint8_t o) { m_out.push_back(static_cast<char>(o)); }

    PickleWriterOptions m_options;
    std::string m_out;
    std::unordered_map<const Value *, std::uint32_t> m_memo;
    std::unordered_map<std::string, std::uint32_t> m_globalMemo;
    std::unordered_map<const StorageRef *, std::size_t> m_storageIndex;
    std::vector<PickleStorage> m_storages;
    std::vector<ValuePtr> m_keep; // values made while writing, kept alive so their addresses stay unique
    std::uint32_t m_nextMemo = 0;
};

// "FloatStorage" for float32 ...; empty when torch 1.x has no typed storage for the dtype.
std::string storageClassName(DType t);
// Python's int from decimal text as pickle's LONG payload: little-endian two's complement.
std::string encodeLong(const std::string &decimal);

} // namespace ckpt
