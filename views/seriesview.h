#pragma once

#include <QStringList>
#include <QWidget>

#include <memory>

class QChartView;
class QComboBox;
class QLabel;
class QProgressBar;
class QStandardItemModel;
class QTableView;
class QToolButton;
template <typename T>
class QFutureWatcher;

namespace ckpt {

struct Series;
struct SeriesJob;

// The checkpoints of one run, in epoch order: per tensor its L2 norm, drift from the first and
// drift from the previous checkpoint, as a table (tensors × checkpoints) and as line charts of the
// tensors selected in the table (the most-drifting ones at first).
class SeriesView : public QWidget {
    Q_OBJECT
public:
    enum class Metric { Norm, DriftFromFirst, DriftFromPrevious };
    explicit SeriesView(QWidget *parent = nullptr);
    ~SeriesView() override;

    void setFiles(const QStringList &files);
    void cancel();
    bool isRunning() const { return m_job != nullptr; }
    void setMetric(Metric m);

    const std::shared_ptr<const Series> &series() const { return m_series; }
    QStandardItemModel *model() const { return m_model; }
    QTableView *table() const { return m_table; }
    QChartView *chart() const { return m_chart; }
    QComboBox *metricBox() const { return m_metric; }
    QLabel *summary() const { return m_summary; }
    // The line above the table saying that the selected rows are what the chart draws.
    QLabel *hint() const { return m_hint; }
    // Under the chart, where a drawn tensor holds NaN or Inf values: which, and at which checkpoints
    // (its line breaks there); hidden when none does.
    QLabel *nonFiniteNote() const { return m_nonFinite; }

Q_SIGNALS:
    void finished(bool ok);

protected:
    // A theme change redraws the chart in the new palette.
    void changeEvent(QEvent *event) override;

private:
    void fill();
    void plot();
    void updateHint();
    // The x-axis position of checkpoint k: its epoch when every checkpoint records one, else k.
    bool byEpoch() const;
    QString checkpointLabel(std::size_t k) const;
    Metric metric() const;
    std::shared_ptr<const Series> m_series;
    QFutureWatcher<std::shared_ptr<SeriesJob>> *m_job = nullptr;
    QLabel *m_summary = nullptr;
    QLabel *m_hint = nullptr;
    QLabel *m_nonFinite = nullptr;
    QProgressBar *m_progress = nullptr;
    QToolButton *m_cancel = nullptr;
    QComboBox *m_metric = nullptr;
    QStandardItemModel *m_model = nullptr;
    QTableView *m_table = nullptr;
    QChartView *m_chart = nullptr;
};

} // namespace ckpt
