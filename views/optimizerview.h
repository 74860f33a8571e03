#pragma once

#include <QWidget>

#include <memory>
#include <string>
#include <vector>

class QComboBox;
class QLabel;
class QProgressBar;
class QSortFilterProxyModel;
class QStandardItemModel;
class QTableView;
class QToolButton;
class QTreeView;
template <typename T>
class QFutureWatcher;

namespace ckpt {

struct Document;
struct RowStatistics;
class OptimizerStateModel;

// What the optimizer kept: its type inferred from the state's keys, each param group's
// hyperparameters, per parameter its step and state tensors (L2 norms computed in the background,
// with progress and cancel), how ids were mapped to names and how sure that is; and the LR
// scheduler, GradScaler and RNG states saved beside it. A file with several optimizers (a GAN's, one
// per network) offers each in a chooser, with the weights it updates where the shapes tell it.
class OptimizerView : public QWidget {
    Q_OBJECT
public:
    explicit OptimizerView(QWidget *parent = nullptr);
    ~OptimizerView() override;
    // `source` names the folder's file the optimizer was read from where it is not the document's
    // own (a Trainer's optimizer.pt); `sourceError` says why that file could not be read.
    void setDocument(const std::shared_ptr<const Document> &doc, const QString &source = {},
                     const QString &sourceError = {});

    QLabel *summary() const { return m_summary; }
    // The file's optimizers, the model's first; hidden when it has one or none.
    QComboBox *optimizerChoice() const { return m_choice; }
    QWidget *optimizerChoiceRow() const { return m_choiceRow; }
    // Beside the chooser: says that the file holds more optimizers than those offered.
    QLabel *optimizerChoiceCut() const { return m_choiceCut; }
    QStandardItemModel *groupsModel() const { return m_groups; }
    OptimizerStateModel *stateModel() const { return m_state; }
    QSortFilterProxyModel *stateProxy() const { return m_stateProxy; }
    QStandardItemModel *trainingStateModel() const { return m_training; }
    // The line shown instead of the schedulers table when the file keeps none of those states.
    QLabel *trainingStateNote() const { return m_trainingNote; }
    bool statisticsRunning() const { return m_watcher != nullptr; }
    void cancelStatistics();

Q_SIGNALS:
    void statisticsFinished(bool complete);

private:
    void stopStatistics();
    void showOptimizer(int index);
    std::shared_ptr<const Document> m_document;
    // Per optimizer of the chooser, the document with it as the optimizer, and which weights it updates.
    std::vector<std::shared_ptr<const Document>> m_optimizerDocuments;
    std::vector<std::string> m_updates;
    QString m_source;
    QString m_sourceError;
    QComboBox *m_choice = nullptr;
    QLabel *m_choiceCut = nullptr;
    QWidget *m_choiceRow = nullptr;
    QLabel *m_summary = nullptr;
    QLabel *m_mapping = nullptr;
    QStandardItemModel *m_groups = nullptr;
    OptimizerStateModel *m_state = nullptr;
    QSortFilterProxyModel *m_stateProxy = nullptr;
    QStandardItemModel *m_training = nullptr;
    QTableView *m_groupsView = nullptr;
    QTableView *m_stateView = nullptr;
    QTreeView *m_trainingView = nullptr;
    QLabel *m_trainingNote = nullptr;
    QWidget *m_content = nullptr;
    QProgressBar *m_progress = nullptr;
    QToolButton *m_cancel = nullptr;
    QFutureWatcher<RowStatistics> *m_watcher = nullptr;
};

} // namespace ckpt
