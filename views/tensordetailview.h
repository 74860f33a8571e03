#pragma once

#include "computeapi.h"
#include "dtype.h"
#include "tensorvaluesmodel.h"

#include <QPointer>
#include <QString>
#include <QWidget>

#include <memory>
#include <optional>

class QCheckBox;
class QFutureWatcherBase;
class QChartView;
class QHBoxLayout;
class QLabel;
class QPushButton;
class QSpinBox;
class QSplitter;
class QTableView;

namespace ckpt {

struct Document;
struct TensorRef;
class HistogramChart;

// One tensor in detail: what the file says about it (dtype, shape, bytes, device, storage and
// the other tensors sharing it), its statistics, its values as a grid read block by block (N-D
// tensors one 2-D slice at a time, picked with a spin box per leading dimension), a histogram of
// its values (linear or logarithmic counts), and export to .npy or .csv. Everything that reads
// values runs off the GUI thread; errors are shown in the pane.
class TensorDetailView : public QWidget {
    Q_OBJECT
public:
    static constexpr int kHistogramBins = 64;

    explicit TensorDetailView(QWidget *parent = nullptr);
    ~TensorDetailView() override;

    // Where numbers come from (ComputeLoader::api() unless set); throws when it cannot load.
    void setComputeProvider(TensorValuesModel::ComputeProvider provider);

    // Shows `tensor` (named `name`) of `doc`; `known` statistics are used instead of computing
    // them again. nullptr shows the empty pane.
    void setTensor(std::shared_ptr<const Document> doc, const QString &name, const TensorRef *tensor,
                   const TensorStats *known = nullptr);
    void clear() { setTensor(nullptr, {}, nullptr); }
    // Statistics that arrived elsewhere (the table's job) for the tensor shown.
    void setStatistics(const TensorStats &stats);

    QString tensorName() const { return m_name; }
    bool hasTensor() const { return m_tensor != nullptr; }
    TensorValuesModel *valuesModel() const { return m_values; }
    QTableView *valuesView() const { return m_grid; }
    // One spin box per leading dimension of an N-D tensor (empty below three dimensions).
    QList<QSpinBox *> sliceSpinBoxes() const { return m_sliceSpins; }
    HistogramChart *histogramView() const { return m_chartView; }
    QCheckBox *logCountsBox() const { return m_logCounts; }
    // The histogram shown, once computed.
    const std::optional<Histogram> &histogram() const { return m_histogram; }
    const std::optional<TensorStats> &statistics() const { return m_stats; }
    bool isComputing() const { return m_jobRunning; }
    // The pane's message line: reasons values are missing, export results and errors.
    QString messageText() const;
    // The notes under the statistics: how many NaN values they leave out, that a complex tensor's
    // are over its real and imaginary parts together. Empty when the figures are over every value.
    static QStringList statisticsNotes(const TensorStats &stats, DType dtype);

    // Writes the tensor to `path` in the background (what the Export buttons do after asking for
    // a file name); an existing file is replaced, an input file never. Emits exportFinished().
    void exportTo(const QString &path, ComputeApi::ExportFormat format);

Q_SIGNALS:
    void statisticsReady();
    void histogramReady();
    void exportFinished(bool ok, const QString &message);

protected:
    // The histogram's colour is the palette's highlight: a theme change redraws it.
    void changeEvent(QEvent *event) override;

private:
    struct Summary;
    void showHeader();
    void showStatistics();
    void showHistogram();
    void rebuildSliceBar();
    void startSummaryJob(bool needStats);
    void askExport(ComputeApi::ExportFormat format);
    void setMessage(const QString &text, bool error);
    void updateMessage();

    TensorValuesModel::ComputeProvider m_provider;
    std::shared_ptr<const Document> m_doc;
    std::shared_ptr<const TensorRef> m_tensor;
    const TensorRef *m_source = nullptr; // the document's own TensorRef (m_tensor is a copy)
    QString m_name;
    std::optional<TensorStats> m_stats;
    QString m_statsError;
    std::optional<Histogram> m_histogram;
    QString m_histogramError;
    bool m_jobRunning = false;
    std::uint64_t m_generation = 0;
    // The statistics and histogram job of the tensor shown: cancelled when another is shown, so
    // stepping through rows of gigabyte tensors does not queue their work ahead of the current one.
    QPointer<QFutureWatcherBase> m_summaryJob;
    QString m_exportMessage;
    bool m_exportError = false;

    TensorValuesModel *m_values = nullptr;
    QLabel *m_title = nullptr;
    QLabel *m_info = nullptr;
    QLabel *m_statsLabel = nullptr;
    QLabel *m_message = nullptr;
    QLabel *m_empty = nullptr;
    QWidget *m_body = nullptr;
    QSplitter *m_splitter = nullptr;
    QWidget *m_sliceBar = nullptr;
    QHBoxLayout *m_sliceLayout = nullptr;
    QList<QSpinBox *> m_sliceSpins;
    QCheckBox *m_rawBox = nullptr;
    QTableView *m_grid = nullptr;
    HistogramChart *m_chartView = nullptr;
    QCheckBox *m_logCounts = nullptr;
    QPushButton *m_exportNpy = nullptr;
    QPushButton *m_exportCsv = nullptr;
};

} // namespace ckpt
