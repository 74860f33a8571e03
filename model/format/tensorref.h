#pragma once

#include "dtype.h"
#include "value.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ckpt {

class MappedFile;

// Limits no input can move. Each has a test at and just past it (tst_limits).
struct TensorLimits {
    // Dimensions of one tensor (numpy 2 allows 64; PyTorch kernels far fewer).
    static constexpr std::size_t kMaxRank = 64;
    // Elements of one tensor: 2^48 keeps every byte count (16 bytes an element at most) and sums
    // of them far from 64-bit overflow, and is far beyond any real tensor.
    static constexpr std::int64_t kMaxElements = std::int64_t(1) << 48;
};

// A storage's bytes, valid while this (or a copy of `keep`) lives. Bytes a storage produces on use
// (a deflated record inflated) are given back when the last holder goes, so a pass over many
// storages holds one at a time, not all of them. There is no conversion to a bare span: taking
// one out is a decision to keep `keep` alive as long as it is used.
struct HeldBytes {
    std::span<const std::uint8_t> bytes;
    std::shared_ptr<const void> keep;  // owner of the bytes (null where the document owns them)

    const std::uint8_t *data() const { return bytes.data(); }
    std::size_t size() const { return bytes.size(); }
    bool empty() const { return bytes.empty(); }
    auto begin() const { return bytes.begin(); }
    auto end() const { return bytes.end(); }
    std::uint8_t operator[](std::size_t i) const { return bytes[i]; }
    // The part [offset, offset + count) held by the same owner.
    HeldBytes subspan(std::size_t offset, std::size_t count) const { return {bytes.subspan(offset, count), keep}; }
};

// A storage record of the file: where its bytes are, never the bytes themselves until asked for.
struct StorageRef {
    std::string key;            // record name in the archive ("0", "140234...")
    DType dtype = DType::Unknown;
    std::string location;       // saved device: "cpu", "cuda:0", ...
    std::int64_t declaredNumel = 0;  // element count the pickle declared
    bool untyped = false;        // torch.UntypedStorage: bytes whose tensors name their own dtype (_rebuild_tensor_v3)
    std::uint64_t byteSize = 0;  // bytes the record holds, known without reading them
    bool resolved = false;       // the record was found and byteSize is known
    std::string problem;         // why the record could not be resolved, when it could not
    std::shared_ptr<const void> keepAlive;  // owner of bytes that are not in the mapping (numpy arrays)
    // The mapped file the bytes are a view on, when they are: consumers check mapping->truncated()
    // after reading (a file cut short while open reads as zeros, see MappedFile).
    std::shared_ptr<const MappedFile> mapping;

    // Binds bytes that are already in memory (a view on the mapping).
    void setBytes(std::span<const std::uint8_t> bytes);
    // Binds a record whose bytes are produced on first use (a deflated zip record).
    // Records `file` as the source of the bytes when they lie in its mapping.
    void noteMapping(const std::shared_ptr<const MappedFile> &file);
    // Whether bytes produced on use are kept once they were produced twice (see hold()). A storage
    // only one tensor views (a LoRA-merged weight) gains nothing from being kept: it is never read
    // apart by many views, and keeping each would hold the whole model at the end of a pass.
    enum class Reuse { KeepWhenProducedTwice, NeverKeep };
    void setLoader(std::uint64_t size, std::function<std::shared_ptr<const std::vector<std::uint8_t>>()> load,
                   Reuse reuse = Reuse::KeepWhenProducedTwice);
    // The record's bytes for as long as the result is kept; a deflated record is inflated when no
    // holder has it already, and given back when the last one goes (except once it has been
    // inflated twice: then it is kept, so many views of one record read apart inflate it twice,
    // not once each). Throws FormatError when the bytes cannot be produced. Thread-safe.
    HeldBytes hold() const;
    // hold(), for a pass over much of it (statistics, conversion, a copy): first asks the file's
    // mapping for its usual read-ahead, which it is opened without (see MappedFile::setAccess).
    HeldBytes bulkData() const;
    // bulkData() for one pass a storage at a time made ahead of the real use (a conversion plan
    // counting what a cast does before the file is written): producing the bytes here does not
    // count toward keeping them, so the write that follows lets each go as it would have alone.
    HeldBytes lookAhead() const;
    // The record's bytes for the document's lifetime: a deflated record stays inflated from then
    // on. For callers that cannot keep a holder; prefer hold(). Thread-safe.
    std::span<const std::uint8_t> data() const;
    // True when the bytes are produced on use (setLoader) rather than lying in memory already.
    bool producedOnUse() const { return m_lazy != nullptr; }
    std::int64_t availableElements() const;

private:
    struct Lazy;
    HeldBytes produce(bool counted) const;
    std::span<const std::uint8_t> m_bytes;
    std::shared_ptr<Lazy> m_lazy;
};

// A tensor as the file describes it: metadata plus a reference to its storage.
struct TensorRef {
    DType dtype = DType::Unknown;
    std::vector<std::int64_t> shape;
    std::vector<std::int64_t> strides;  // in elements
    std::int64_t storageOffset = 0;     // in elements
    std::shared_ptr<StorageRef> storage;
    bool requiresGrad = false;
    bool isParameter = false;
    std::string rebuild;                // reconstructor that built it ("_rebuild_tensor_v2", ...)
    std::string problem;                // non-empty when the extent does not fit its storage

    // Layouts other than dense strided data on a storage.
    enum class Layout { Strided, SparseCoo, Meta, SparseCsr };
    Layout layout = Layout::Strided;
    // Sparse COO: the indices and values tensors (each a Tensor value).
    ValuePtr sparseIndices;
    ValuePtr sparseValues;  // also sparse CSR's values
    // Sparse CSR (torch.sparse_csr): its compressed row indices and column indices (Tensor values).
    ValuePtr sparseCrowIndices;
    ValuePtr sparseColIndices;
    // The tensors a sparse tensor is made of (COO: indices, values; CSR: crow_indices,
    // col_indices, values); empty for other layouts. Entries may be null in a malformed file.
    std::vector<ValuePtr> sparseParts() const;
    // Quantized tensors: raw integers on the storage, real value = (raw - zero_point) * scale.
    struct Quantization {
        std::string scheme;        // "per_tensor_affine", "per_channel_affine", ...
        double scale = 0.0;        // per-tensor
        std::int64_t zeroPoint = 0;
        std::int64_t axis = -1;    // per-channel
        ValuePtr scales;           // per-channel: Tensor values
        ValuePtr zeroPoints;
    };
    std::shared_ptr<const Quantization> quantization;

    std::int64_t numel() const;
    // Bytes the tensor occupies: numel times the element size; for the packed quantized types
    // (quint4x2, quint2x4) what torch allocates for them, each row packed apart
    // (rows * ceil(columns / elements per byte), as ATen's get_sub_byte_tensor_size).
    std::int64_t nbytes() const;
    std::string device() const;         // saved location, "cpu" when unknown
    bool isContiguous() const;
    // Elements of the storage the tensor spans: offset + 1 + sum(stride*(size-1)), 0 when empty.
    // Returns false on arithmetic overflow or negative values.
    bool extentElements(std::int64_t &out) const;
    // True when `extent` elements of this tensor's type fit in its storage's bytes.
    bool fitsStorage(std::int64_t extent) const;
    // Checks the extent against the storage; sets and returns `problem` ("" when it fits).
    const std::string &validate();
    // Bytes from the tensor's first element to one past its last, held (see HeldBytes); empty when
    // invalid or empty. May produce the storage's bytes (see StorageRef::bulkData: for a pass over them).
    HeldBytes spannedBytes() const;
};

// Elements one byte holds for the packed quantized types torch stores several to a byte
// (quint4x2: 2, quint2x4: 4), lowest bits first, one after another over the whole tensor
// (not per row); 1 for every other type.
std::int64_t packedElementsPerByte(DType t);
// Bytes a packed tensor of `numel` elements reads from its storage: ceil(numel / per byte).
std::int64_t packedDataBytes(DType t, std::int64_t numel);

// A new TensorRef or StorageRef, made from the thread's value pool when one is active (as the
// values that refer to it are; see ValuePoolScope), else on the heap.
std::shared_ptr<TensorRef> makeTensorRef();
std::shared_ptr<StorageRef> makeStorageRef();

// Work over a tensor is bounded by what the file stores, not by the shape it declares: strides of
// 0 (an expand) can make a view of 2^40 elements out of 16 stored ones, and a sparse tensor can
// declare a dense size it would take terabytes to fill. Up to 16 times what is stored, plus 16 Mi
// elements, may be computed or written out; beyond that this says why the tensor is refused
// ("" when it is within the budget).
std::string workBudgetProblem(const TensorRef &ref);

// "[2, 3]" style text for a shape.
std::string shapeText(const std::vector<std::int64_t> &shape);

} // namespace ckpt
