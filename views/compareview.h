#pragma once

#include <QPointer>
#include <QWidget>

#include <memory>

class QCheckBox;
class QFutureWatcherBase;
class QLabel;
class QLineEdit;
class QProgressBar;
class QSortFilterProxyModel;
class QToolButton;
class QTreeView;
template <typename T>
class QFutureWatcher;

namespace ckpt {

struct Comparison;
struct CompareJob;
struct Document;
class ComparisonModel;
class HistogramChart;

// Two checkpoints compared: one tree of both files' tensors by module, coloured by how much each
// changed, with "changed only" and name filters; for the selected tensor its figures, the two
// files' histograms overlaid and the histogram of the difference. Reading and comparing run in
// the background with progress and cancel; a newer compare() drops an older one's result.
class CompareView : public QWidget {
    Q_OBJECT
public:
    explicit CompareView(QWidget *parent = nullptr);
    ~CompareView() override;

    // Reads both files and compares them (absolute and relative tolerance as `ckpt diff`).
    void compare(const QString &a, const QString &b, double atol = 0.0, double rtol = 0.0);
    void cancel();
    bool isRunning() const { return m_job != nullptr; }
    QString fileA() const { return m_a; }
    QString fileB() const { return m_b; }

    ComparisonModel *model() const { return m_model; }
    QSortFilterProxyModel *proxy() const { return m_proxy; }
    QTreeView *tree() const { return m_tree; }
    QCheckBox *changedOnly() const { return m_changedOnly; }
    QLineEdit *filter() const { return m_filter; }
    // Absolute and relative tolerance, as `ckpt diff --atol/--rtol` (empty or 0: exact). Editing
    // one and pressing Enter (or leaving it) compares the files again, keeping the selected tensor.
    QLineEdit *atolEdit() const { return m_atolEdit; }
    QLineEdit *rtolEdit() const { return m_rtolEdit; }
    QLabel *summary() const { return m_summary; }
    // The two files side by side: name, format, kind, tensors, parameters, size, epoch.
    QLabel *sideA() const { return m_sideA; }
    QLabel *sideB() const { return m_sideB; }
    QLabel *figures() const { return m_figures; }
    HistogramChart *valuesChart() const { return m_values; }
    HistogramChart *differenceChart() const { return m_difference; }
    // What the charts say until a tensor is selected.
    static QString valuesHint();
    static QString differenceHint();
    // Selects the row of an aligned tensor path; its histograms follow (histogramsReady()).
    bool selectPath(const QString &path);

Q_SIGNALS:
    // The comparison finished: `ok` false after an error (the summary says it) or a cancel.
    void finished(bool ok);
    void histogramsReady();

private:
    void showResult();
    void fitChangeColumn();
    void toleranceEdited();
    void showTensor(const QModelIndex &index);
    QString m_a, m_b;
    double m_atol = 0, m_rtol = 0;
    std::shared_ptr<const Document> m_docA, m_docB;
    QFutureWatcher<std::shared_ptr<CompareJob>> *m_job = nullptr;
    int m_histogramGeneration = 0;
    // The selected tensor's histograms: cancelled when another row is selected.
    QPointer<QFutureWatcherBase> m_histogramJob;

    ComparisonModel *m_model = nullptr;
    QSortFilterProxyModel *m_proxy = nullptr;
    QLabel *m_title = nullptr;
    QLabel *m_sideA = nullptr;
    QLabel *m_sideB = nullptr;
    QLabel *m_summary = nullptr;
    QProgressBar *m_progress = nullptr;
    QToolButton *m_cancel = nullptr;
    QCheckBox *m_changedOnly = nullptr;
    QCheckBox *m_log = nullptr;
    QLineEdit *m_filter = nullptr;
    QLineEdit *m_atolEdit = nullptr;
    QLineEdit *m_rtolEdit = nullptr;
    QString m_reselect;  // the tensor path to select again once a new comparison is shown
    QTreeView *m_tree = nullptr;
    QLabel *m_figures = nullptr;
    HistogramChart *m_values = nullptr;
    HistogramChart *m_difference = nullptr;
};

} // namespace ckpt
