#pragma once

#include <QWidget>

#include <QString>

#include <memory>
#include <utility>
#include <vector>

class QChart;
class QChartView;
class QValueAxis;
class QLabel;
class QStandardItemModel;
class QTreeView;

namespace ckpt {

struct Document;

// Everything in a checkpoint that is not weights, as a key/value tree: first the fields a
// researcher looks for (epoch, losses, timestamps, versions, config, class names, preprocessing),
// then every metadata entry as saved, the metadata JSON sidecar beside the file, the format's own
// metadata (safetensors __metadata__, a shard index), the conventions recognised and, for
// TorchScript, the code records (listed, never run). A checkpoint opened as a folder first shows the
// folder's parts and, from a Trainer's trainer_state.json, the run's state and its losses by step
// (a chart below the tree).
class MetadataView : public QWidget {
    Q_OBJECT
public:
    explicit MetadataView(QWidget *parent = nullptr);
    void setDocument(const std::shared_ptr<const Document> &doc);

    QStandardItemModel *model() const { return m_model; }
    QTreeView *view() const { return m_view; }
    // The training and evaluation loss by step, shown when the folder's trainer state logged any;
    // else the lists of losses the file holds, by position (`train_losses: [2.3, 1.9, …]`).
    QChartView *lossChart() const { return m_lossChart; }
    struct LossList {
        QString name;  // "train_losses", "history/val_loss"
        std::vector<double> values;
    };
    // The lists of losses the file holds: keys naming a loss, at its root or one dict down, lists of
    // at least two numbers; at most 8.
    static std::vector<LossList> lossLists(const Document &doc);
    // Section titles, as the top-level rows show them.
    static QString summaryTitle();
    static QString metadataTitle();
    static QString sidecarTitle();
    static QString folderTitle();
    static QString trainingTitle();

protected:
    void changeEvent(QEvent *event) override;

private:
    void plotLosses();
    void plotLossLists(QChart *chart, const std::vector<LossList> &lists);
    std::pair<QValueAxis *, QValueAxis *> lossAxes(QChart *chart, const QString &xTitle) const;
    std::shared_ptr<const Document> m_doc;
    QChartView *m_lossChart = nullptr;
    QStandardItemModel *m_model = nullptr;
    QTreeView *m_view = nullptr;
};

} // namespace ckpt
