#include "tensorvaluesmodel.h"

#include "copyrole.h"

#include "jobpool.h"
#include "computeapi.h"
#include "document.h"
#include "valuetext.h"

#include <QBrush>
#include <QFutureWatcher>
#include <QPromise>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>

namespace ckpt {

namespace {

constexpr std::int64_t kWholeTensorElements = 65536; // smaller tensors are read in one go
constexpr std::size_t kBlocksPerBatch = 64;          // blocks one background job reads
constexpr std::size_t kMaxPending = 256;             // older requests are dropped (scrolled away)

int clampToInt(std::int64_t n)
{
    return static_cast<int>(std::clamp<std::int64_t>(n, 0, INT_MAX));
}

bool isQuantized(DType t)
{
    return t == DType::QUInt8 || t == DType::QInt8 || t == DType::QInt32 || t == DType::QUInt4x2 ||
           t == DType::QUInt2x4;
}

} // namespace

// What one background job read: blocks of values, or why it could not.
struct TensorValuesModel::Batch {
    std::uint64_t generation = 0;
    std::vector<std::pair<std::int64_t, Block>> blocks;
    std::int64_t elements = 0;
    QString error;
};

TensorValuesModel::TensorValuesModel(QObject *parent) : QAbstractTableModel(parent) {}

TensorValuesModel::~TensorValuesModel()
{
    if (m_fetchJob)
        m_fetchJob->cancel();  // nobody waits for its values now
}

void TensorValuesModel::setComputeProvider(ComputeProvider provider)
{
    m_provider = std::move(provider);
}

void TensorValuesModel::resetCache()
{
    ++m_generation;
    if (m_fetchJob)
        m_fetchJob->cancel();  // its blocks are stale: it stops before its next read
    m_cache.clear();
    m_lru.clear();
    m_pending.clear();
    m_pendingSet.clear();
    m_inFlight.clear();
    m_error.clear();
}

void TensorValuesModel::setTensor(std::shared_ptr<const Document> doc, const TensorRef *tensor)
{
    beginResetModel();
    resetCache();
    m_fetchedElements = 0;
    m_noValues.clear();
    m_raw = false;
    m_doc = tensor ? std::move(doc) : nullptr;
    m_tensor = m_doc ? std::make_shared<const TensorRef>(*tensor) : nullptr;
    m_shape = m_tensor ? m_tensor->shape : std::vector<std::int64_t>{};
    m_slice.assign(m_shape.size() > 2 ? m_shape.size() - 2 : 0, 0);
    m_sliceBase = 0;
    if (m_tensor) {
        const TensorRef &t = *m_tensor;
        m_valuesPerElement = t.dtype == DType::Complex64 || t.dtype == DType::Complex128 ? 2 : 1;
        m_textType = isQuantized(t.dtype) ? DType::Float32 : t.dtype;
        if (t.layout == TensorRef::Layout::Meta)
            m_noValues = tr("A meta tensor has a shape but no data: there are no values to show.");
        else if (!valuetext::tensorProblem(t).isEmpty())
            m_noValues = tr("The values cannot be read: %1").arg(valuetext::tensorProblem(t));
        else if (t.numel() < 0)
            m_noValues = tr("The element count overflows.");
    }
    // A header view keeps a record per row: past kMaxGridRows, several rows share a line.
    m_rowsPerLine = 1;
    if (m_tensor && m_noValues.isEmpty()) {
        const std::int64_t rows = sliceRows();
        bool done = rows <= kMaxGridRows;
        for (std::int64_t scale = 1; !done; scale *= 10)
            for (std::int64_t f : {1, 2, 5})
                if (!done && (rows + f * scale - 1) / (f * scale) <= kMaxGridRows) {
                    m_rowsPerLine = f * scale; // 1, 2, 5, 10, 20, ...: lines start at round indices
                    done = true;
                }
    }
    endResetModel();
}

void TensorValuesModel::setRawValues(bool raw)
{
    if (!m_tensor || raw == m_raw || !isQuantized(m_tensor->dtype))
        return;
    m_raw = raw;
    m_textType = raw ? DType::Int64 : DType::Float32;
    resetCache();
    if (rowCount() > 0 && columnCount() > 0)
        Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

int TensorValuesModel::leadingDimensions() const
{
    return static_cast<int>(m_slice.size());
}

std::int64_t TensorValuesModel::sliceIndex(int dim) const
{
    return dim >= 0 && dim < leadingDimensions() ? m_slice[static_cast<std::size_t>(dim)] : 0;
}

void TensorValuesModel::setSliceIndex(int dim, std::int64_t idx)
{
    if (dim < 0 || dim >= leadingDimensions())
        return;
    idx = std::clamp<std::int64_t>(idx, 0, std::max<std::int64_t>(0, m_shape[static_cast<std::size_t>(dim)] - 1));
    if (m_slice[static_cast<std::size_t>(dim)] == idx)
        return;
    m_slice[static_cast<std::size_t>(dim)] = idx;
    // Row-major: the slice starts at sum(index_d * product of the later sizes).
    std::int64_t base = 0;
    std::int64_t stride = m_shape[m_shape.size() - 1] * m_shape[m_shape.size() - 2];
    for (int d = leadingDimensions() - 1; d >= 0; --d) {
        base += m_slice[static_cast<std::size_t>(d)] * stride;
        stride *= m_shape[static_cast<std::size_t>(d)];
    }
    m_sliceBase = base;
    // The cache holds blocks by flat index and stays valid; older requests are for another slice.
    m_pending.clear();
    m_pendingSet.clear();
    if (rowCount() > 0 && columnCount() > 0)
        Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

int TensorValuesModel::rowDimension() const
{
    if (m_shape.empty())
        return -1;
    return m_shape.size() == 1 ? 0 : rank() - 2;
}

int TensorValuesModel::columnDimension() const
{
    return m_shape.size() >= 2 ? rank() - 1 : -1;
}

std::int64_t TensorValuesModel::sliceRows() const
{
    if (m_shape.empty())
        return 1;
    return m_shape[static_cast<std::size_t>(rowDimension())];
}

std::int64_t TensorValuesModel::sliceColumns() const
{
    return m_shape.size() < 2 ? 1 : m_shape.back();
}

int TensorValuesModel::rowCount(const QModelIndex &parent) const
{
    if (parent.isValid() || !m_tensor || !m_noValues.isEmpty())
        return 0;
    return clampToInt((sliceRows() + m_rowsPerLine - 1) / m_rowsPerLine);
}

int TensorValuesModel::columnCount(const QModelIndex &parent) const
{
    if (parent.isValid() || !m_tensor || !m_noValues.isEmpty())
        return 0;
    return clampToInt(sliceColumns() * m_rowsPerLine);
}

std::int64_t TensorValuesModel::flatIndex(int row, int column) const
{
    // A line of the grid holds m_rowsPerLine whole rows of the slice, in row-major order.
    return m_sliceBase + static_cast<std::int64_t>(row) * m_rowsPerLine * sliceColumns() + column;
}

bool TensorValuesModel::inTensor(int row, int column) const
{
    return static_cast<std::int64_t>(row) * m_rowsPerLine + column / std::max<std::int64_t>(1, sliceColumns()) <
           sliceRows();
}

static std::int64_t blockElementsFor(const TensorRef &t)
{
    return t.numel() <= kWholeTensorElements ? std::max<std::int64_t>(1, t.numel()) : TensorValuesModel::kBlockElements;
}

bool TensorValuesModel::exactIntegers() const
{
    return dtypeIsIntegral(m_textType) || m_textType == DType::Bool;
}

const TensorValuesModel::Block *TensorValuesModel::cachedBlock(std::int64_t block) const
{
    auto it = m_cache.find(block);
    if (it == m_cache.end())
        return nullptr;
    m_lru.splice(m_lru.end(), m_lru, it->second.second); // most recently used last
    return &it->second.first;
}

void TensorValuesModel::request(std::int64_t block) const
{
    if (!m_error.isEmpty() || m_pendingSet.count(block) || m_inFlight.count(block))
        return;
    m_pending.push_back(block);
    m_pendingSet.insert(block);
    if (m_pending.size() > kMaxPending) {
        m_pendingSet.erase(m_pending.front());
        m_pending.erase(m_pending.begin());
    }
    if (!m_fetchScheduled && !m_jobRunning) {
        // Gather the requests of one paint before starting a job.
        m_fetchScheduled = true;
        QMetaObject::invokeMethod(const_cast<TensorValuesModel *>(this), &TensorValuesModel::startFetch,
                                  Qt::QueuedConnection);
    }
}

void TensorValuesModel::startFetch()
{
    m_fetchScheduled = false;
    if (m_jobRunning || m_pending.empty() || !m_tensor)
        return;
    // Newest requests first: they are what the view shows now.
    std::vector<std::int64_t> blocks;
    while (!m_pending.empty() && blocks.size() < kBlocksPerBatch) {
        blocks.push_back(m_pending.back());
        m_pendingSet.erase(m_pending.back());
        m_pending.pop_back();
    }
    std::sort(blocks.begin(), blocks.end());
    m_inFlight.insert(blocks.begin(), blocks.end());
    m_jobRunning = true;
    auto *watcher = new QFutureWatcher<std::shared_ptr<Batch>>(this);
    m_fetchJob = watcher;
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher] {
        watcher->deleteLater();
        m_jobRunning = false;
        // A cancelled batch has no result: stale, as finishFetch takes a null one.
        const auto batch = watcher->future().resultCount() > 0 ? watcher->result() : nullptr;
        if (batch && batch->generation == m_generation)
            for (const auto &b : batch->blocks)
                m_inFlight.erase(b.first);
        if (batch && batch->generation == m_generation && !batch->error.isEmpty())
            m_inFlight.clear();
        finishFetch(batch);
    });
    const std::int64_t blockSize = blockElementsFor(*m_tensor);
    const std::int64_t numel = m_tensor->numel();
    const int vpe = m_valuesPerElement;
    watcher->setFuture(QtConcurrent::run(jobPool(), [provider = m_provider, doc = m_doc, tensor = m_tensor, raw = m_raw,
                                          exact = exactIntegers(), generation = m_generation, blocks, blockSize,
                                          numel, vpe](QPromise<std::shared_ptr<Batch>> &promise) {
        auto batch = std::make_shared<Batch>();
        batch->generation = generation;
        try {
            if (!provider)
                throw std::runtime_error("no compute module is available to read values");
            ComputeApi &api = provider();
            // Asked between chunks of a read: a batch of a tensor no longer shown (the tab closed,
            // another tensor picked) stops there rather than at the batch's end.
            const CancelCheck cancelled = [&promise] { return promise.isCanceled(); };
            // Adjacent blocks are read with one call.
            for (std::size_t i = 0; i < blocks.size();) {
                if (promise.isCanceled())
                    return;  // another tensor or mode is shown now
                std::size_t j = i + 1;
                while (j < blocks.size() && blocks[j] == blocks[j - 1] + 1)
                    ++j;
                const std::int64_t first = blocks[i] * blockSize;
                const std::int64_t count = std::min(numel, blocks[j - 1] * blockSize + blockSize) - first;
                std::vector<std::int64_t> ints;
                std::vector<double> v;
                if (exact) {
                    ints = api.integers(*tensor, first, count, cancelled);
                    const bool u64 = tensor->dtype == DType::UInt64;
                    v.reserve(ints.size());
                    for (std::int64_t x : ints)
                        v.push_back(u64 ? static_cast<double>(static_cast<std::uint64_t>(x)) : static_cast<double>(x));
                } else {
                    v = api.values(*tensor, first, count, raw, cancelled);
                }
                batch->elements += count;
                auto part = [](const auto &all, std::size_t from, std::size_t to) {
                    from = std::min(from, all.size());
                    to = std::min(to, all.size());
                    return std::decay_t<decltype(all)>(all.begin() + static_cast<std::ptrdiff_t>(from),
                                                       all.begin() + static_cast<std::ptrdiff_t>(to));
                };
                for (std::size_t k = i; k < j; ++k) {
                    const auto from = static_cast<std::size_t>((blocks[k] - blocks[i]) * blockSize * vpe);
                    const auto to = from + static_cast<std::size_t>(blockSize * vpe);
                    batch->blocks.emplace_back(blocks[k], Block{part(v, from, to), part(ints, from, to)});
                }
                i = j;
            }
        } catch (const std::exception &e) {
            if (promise.isCanceled())
                return;  // stopped part-way: no batch, never its blocks as if read whole
            batch->error = QString::fromStdString(e.what());
        }
        (void)doc; // keeps the mapped bytes alive while the job reads them
        if (!promise.isCanceled())
            promise.addResult(std::move(batch));
    }));
}

void TensorValuesModel::finishFetch(const std::shared_ptr<Batch> &batch)
{
    if (!batch || batch->generation != m_generation || !m_tensor) {
        startFetch(); // stale: what is pending now is for the current tensor
        return;
    }
    m_fetchedElements += batch->elements;
    for (auto &[block, values] : batch->blocks) {
        if (m_cache.count(block))
            continue;
        m_lru.push_back(block);
        m_cache.emplace(block, std::make_pair(std::move(values), std::prev(m_lru.end())));
        while (m_cache.size() > kCacheBlocks) {
            m_cache.erase(m_lru.front());
            m_lru.pop_front();
        }
    }
    if (!batch->error.isEmpty()) {
        m_error = batch->error;
        m_pending.clear();
        m_pendingSet.clear();
        Q_EMIT fetchFailed(m_error);
    }
    // The whole grid: a view repaints what it shows and asks again for what is still missing.
    if (rowCount() > 0 && columnCount() > 0)
        Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
    Q_EMIT valuesArrived();
    startFetch();
}

QVariant TensorValuesModel::data(const QModelIndex &index, int role) const
{
    if (!m_tensor || !checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    if (!inTensor(index.row(), index.column()))
        return {}; // the last line of a wrapped grid may be short
    const std::int64_t flat = flatIndex(index.row(), index.column());
    if (role == FlatIndexRole)
        return static_cast<qlonglong>(flat);
    if (role == Qt::TextAlignmentRole)
        return static_cast<int>(Qt::AlignRight | Qt::AlignVCenter);
    if (role != Qt::DisplayRole && role != ValueRole && role != ImaginaryRole && role != IsFetchedRole &&
        role != Qt::ToolTipRole && role != Qt::ForegroundRole && role != Qt::BackgroundRole && role != CopyTextRole)
        return {};
    const std::int64_t blockSize = blockElementsFor(*m_tensor);
    const std::int64_t block = flat / blockSize;
    const Block *cached = cachedBlock(block);
    const std::vector<double> *values = cached ? &cached->values : nullptr;
    const auto at = static_cast<std::size_t>((flat - block * blockSize) * m_valuesPerElement);
    if (!values || at + static_cast<std::size_t>(m_valuesPerElement) > values->size()) {
        if (role == IsFetchedRole)
            return false;
        if (!values && m_error.isEmpty())
            request(block);
        if (role == Qt::DisplayRole)
            return m_error.isEmpty() ? QStringLiteral("\u2026") : QStringLiteral("?");
        return {};
    }
    const double re = (*values)[at];
    const double im = m_valuesPerElement == 2 ? (*values)[at + 1] : 0.0;
    const bool exact = at < cached->integers.size();
    const bool nonFinite = !std::isfinite(re) || !std::isfinite(im);
    switch (role) {
    case IsFetchedRole:
        return true;
    case ValueRole:
        return re;
    case ImaginaryRole:
        return m_valuesPerElement == 2 ? QVariant(im) : QVariant();
    case CopyTextRole:  // every digit the dtype holds, as a pasted value must read back
        if (exact)
            return valuetext::integerText(cached->integers[at], m_textType);
        return m_valuesPerElement == 2 ? valuetext::complexElementText(re, im, DType::Float64)
                                       : valuetext::copyText(re, m_textType);
    case Qt::DisplayRole:
        if (exact)
            return valuetext::integerText(cached->integers[at], m_textType);
        return m_valuesPerElement == 2 ? valuetext::complexElementText(re, im, m_textType)
                                       : valuetext::elementText(re, m_textType);
    case Qt::ToolTipRole: {
        // The element's full index and its value at full precision.
        QStringList idx;
        std::int64_t rest = flat;
        std::vector<std::int64_t> position(m_shape.size());
        for (int d = rank() - 1; d >= 0; --d) {
            const auto size = std::max<std::int64_t>(1, m_shape[static_cast<std::size_t>(d)]);
            position[static_cast<std::size_t>(d)] = rest % size;
            rest /= size;
        }
        for (auto p : position)
            idx << QString::number(p);
        const QString text =
            exact ? valuetext::integerText(cached->integers[at], m_textType)
            : m_valuesPerElement == 2
                ? valuetext::complexElementText(re, im, DType::Float64)
                : dtypeIsFloating(m_textType) ? valuetext::copyText(re, m_textType)
                                              : valuetext::elementText(re, m_textType);
        return QStringLiteral("[%1] = %2").arg(idx.join(QStringLiteral(", ")), text);
    }
    case Qt::ForegroundRole:
        return nonFinite ? QVariant(QBrush(valuetext::nonFiniteForeground())) : QVariant();
    case Qt::BackgroundRole:
        return nonFinite ? QVariant(QBrush(valuetext::nonFiniteBackground())) : QVariant();
    default:
        return {};
    }
}

QVariant TensorValuesModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole || !m_tensor)
        return QAbstractTableModel::headerData(section, orientation, role);
    if (orientation == Qt::Vertical) {
        if (m_shape.empty())
            return QStringLiteral("()");
        return QString::number(static_cast<std::int64_t>(section) * m_rowsPerLine);
    }
    const std::int64_t columns = sliceColumns();
    if (m_rowsPerLine > 1) // a wrapped line: the row offset within the line, then the column
        return m_shape.size() < 2 ? QStringLiteral("+%1").arg(section)
                                  : QStringLiteral("+%1, %2").arg(section / columns).arg(section % columns);
    if (m_shape.size() < 2)
        return tr("value");
    return QString::number(section);
}

} // namespace ckpt
