#pragma once

#include "tensorref.h"

#include <QAbstractTableModel>
#include <QList>
#include <QPointer>
#include <QString>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

class QFutureWatcherBase;

namespace ckpt {

class ComputeApi;
struct Document;

// The values of one tensor as a grid, fetched lazily: only the blocks of elements that visible
// cells need are read (ComputeApi::values), off the GUI thread, and kept in a small cache. 0-D and
// 1-D tensors are one column; 2-D tensors are shown as they are; higher ranks show the last two
// dimensions of the slice that setSliceIndex() picks for the leading ones. Slices longer than
// kMaxGridRows rows are wrapped: each grid line holds rowsPerLine() consecutive rows.
class TensorValuesModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Role {
        ValueRole = Qt::UserRole, // double (the real part for complex), invalid until fetched
        ImaginaryRole,            // double for complex tensors
        IsFetchedRole,            // bool
        FlatIndexRole,            // qlonglong: the element's row-major index in the whole tensor
    };
    Q_ENUM(Role)

    // Where values come from; throws std::runtime_error when the compute module cannot be loaded.
    using ComputeProvider = std::function<ComputeApi &()>;

    static constexpr std::int64_t kBlockElements = 256; // elements read at a time (a row's visible part)
    static constexpr std::size_t kCacheBlocks = 1024;   // blocks kept (about 2 MiB of doubles)
    // Grid lines at most; longer slices put several of their rows on one line (a header view
    // keeps 8 bytes per line: 100 million lines would be 800 MB).
    static constexpr std::int64_t kMaxGridRows = 1'000'000;

    explicit TensorValuesModel(QObject *parent = nullptr);
    ~TensorValuesModel() override;

    // The module the values are read with; defaults to ComputeLoader::api() via the views layer.
    void setComputeProvider(ComputeProvider provider);

    // Shows `tensor` of `doc` (GUI thread); `doc` keeps its bytes alive. nullptr empties the grid.
    void setTensor(std::shared_ptr<const Document> doc, const TensorRef *tensor);
    void clear() { setTensor(nullptr, nullptr); }
    bool hasTensor() const { return m_doc != nullptr; }
    // Why the tensor has no values to show (meta tensor, invalid extent), empty when it has.
    QString noValuesReason() const { return m_noValues; }
    // The last error reading values, empty when none.
    QString errorText() const { return m_error; }

    // Quantized tensors: the stored integers instead of the real values.
    void setRawValues(bool raw);
    bool rawValues() const { return m_raw; }

    int rank() const { return static_cast<int>(m_shape.size()); }
    const std::vector<std::int64_t> &shape() const { return m_shape; }
    // Leading dimensions (all but the displayed two): the index chosen in each.
    int leadingDimensions() const;
    std::int64_t sliceIndex(int dim) const;
    void setSliceIndex(int dim, std::int64_t index);
    // The displayed dimensions (-1 when absent: 0-D has none, 1-D has no column dimension).
    int rowDimension() const;
    int columnDimension() const;
    // Rows of the slice on one grid line: 1, or 2, 5, 10, ... for very long slices.
    std::int64_t rowsPerLine() const { return m_rowsPerLine; }

    // Elements requested from the compute module since the tensor was set (for tests and status).
    std::int64_t fetchedElements() const { return m_fetchedElements; }
    // True while blocks are being read or waiting to be.
    bool isFetching() const { return m_jobRunning || !m_pending.empty(); }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

Q_SIGNALS:
    // A batch of blocks arrived and their cells changed.
    void valuesArrived();
    // Reading values failed; `message` says why.
    void fetchFailed(const QString &message);

private:
    struct Batch;
    // One block's elements as numbers and, for integer and bool tensors (and raw quantized ones),
    // exactly as integers: the text comes from these, since doubles round past 2^53.
    struct Block {
        std::vector<double> values;
        std::vector<std::int64_t> integers;
    };
    bool exactIntegers() const;
    std::int64_t flatIndex(int row, int column) const;
    std::int64_t sliceRows() const;
    std::int64_t sliceColumns() const;
    bool inTensor(int row, int column) const;
    const Block *cachedBlock(std::int64_t block) const;
    void request(std::int64_t block) const;
    void startFetch();
    void finishFetch(const std::shared_ptr<Batch> &batch);
    void resetCache();

    ComputeProvider m_provider;
    std::shared_ptr<const Document> m_doc;
    std::shared_ptr<const TensorRef> m_tensor;
    std::vector<std::int64_t> m_shape;
    std::vector<std::int64_t> m_slice; // index in each leading dimension
    std::int64_t m_sliceBase = 0;      // flat index of the displayed slice's first element
    int m_valuesPerElement = 1;        // 2 for complex
    DType m_textType = DType::Float32; // how a value is written
    bool m_raw = false;
    std::int64_t m_rowsPerLine = 1;
    QString m_noValues;
    QString m_error;

    // Cache: block number -> values, least recently used at the front of m_lru.
    mutable std::unordered_map<std::int64_t, std::pair<Block, std::list<std::int64_t>::iterator>> m_cache;
    mutable std::list<std::int64_t> m_lru;
    mutable std::vector<std::int64_t> m_pending; // newest last
    mutable std::unordered_set<std::int64_t> m_pendingSet;
    std::unordered_set<std::int64_t> m_inFlight; // being read by the running job
    mutable bool m_fetchScheduled = false;
    bool m_jobRunning = false;
    std::uint64_t m_generation = 0; // a new tensor or mode makes older batches stale
    QPointer<QFutureWatcherBase> m_fetchJob; // the running batch, cancelled when it goes stale
    std::int64_t m_fetchedElements = 0;
};

} // namespace ckpt
