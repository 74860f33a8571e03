#pragma once

#include "conversionqueuemodel.h"

#include <QDateTime>
#include <QFrame>
#include <QHash>
#include <QWidget>

#include <atomic>
#include <functional>
#include <map>
#include <memory>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableView;
class QTimer;
template <typename T>
class QFutureWatcher;

namespace ckpt {

class ConversionPlanModel;
class ScriptArchitectureCache;
struct ConversionRun;

// A drop target of the conversion pane: files dropped on it are queued for conversion to its
// target; a click is the pane's to interpret (retarget the selected files, or choose files).
class ConversionDropTarget : public QFrame {
    Q_OBJECT
public:
    ConversionDropTarget(PaneTarget target, const QString &title, const QString &description,
                         QWidget *parent = nullptr);
    PaneTarget target() const { return m_target; }
    // The tooltip says what a click does with this many queue rows selected.
    void setSelectionCount(int selected);
    // The target cannot write (TorchScript without LibTorch): the card says so and why; files
    // dropped on it are still queued, their rows saying the same. Empty: available again.
    void setUnavailable(const QString &reason);
    QString unavailableReason() const { return m_unavailable; }
    QString description() const;

Q_SIGNALS:
    void filesDropped(const QStringList &paths, ckpt::PaneTarget target);
    void clicked(ckpt::PaneTarget target);

protected:
    void dragEnterEvent(QDragEnterEvent *event) override;
    void dragLeaveEvent(QDragLeaveEvent *event) override;
    void dropEvent(QDropEvent *event) override;
    void mouseReleaseEvent(QMouseEvent *event) override;

private:
    void setHighlighted(bool on);
    PaneTarget m_target;
    QString m_title;
    QString m_description;
    QString m_unavailable;
    int m_selected = 0;
    QLabel *m_descriptionLabel = nullptr;
};

// The conversions pane: six drop targets (one per `ckpt convert --to` target), options for the
// selected files (prefilled with the values each file carries), the plan of the selected file
// (keys kept and dropped, values carried or not written, size before → after, cast warnings),
// and a queue converted one file at a time in the background with progress, cancel, the
// verification result, and Open/Reveal for finished outputs. Planning runs off the GUI thread.
class ConversionView : public QWidget {
    Q_OBJECT
public:
    // Asked before an existing output is replaced; true replaces it. `question` is what the pane
    // asks: the file, and which row of this queue wrote it when an earlier conversion did.
    using OverwritePolicy = std::function<bool(const QString &output, const QString &question)>;
    // Called off the GUI thread before a file is planned for TorchScript (and once when the pane is
    // first shown): throws, saying why, when the compute module (LibTorch) cannot be loaded.
    using ComputeProbe = std::function<void()>;

    explicit ConversionView(QWidget *parent = nullptr);
    ~ConversionView() override;

    // Queues files for `target` with the current options; each is read and planned in the background.
    void addFiles(const QStringList &paths, PaneTarget target);
    void addFiles(const QStringList &paths, ConvertTarget target) { addFiles(paths, paneTarget(target)); }
    // Same, with the target last used (state dict at first).
    void addFiles(const QStringList &paths) { addFiles(paths, m_lastTarget); }
    // Converts every planned file not yet converted, one at a time.
    void runQueue();
    // Cancels the file being written (nothing of it is left) and stops the queue.
    void cancel();
    bool isRunning() const { return m_running != 0; }
    void removeSelected();
    // A target card was clicked: the selected files are converted to `target` instead; with none
    // selected, a file dialog chooses files to queue for it.
    void activateTarget(PaneTarget target);
    // Selects a queue row: the options panel and the plan show that file.
    void selectRow(int row);
    int currentRow() const;
    // Default: a QMessageBox question. Tests replace it.
    void setOverwritePolicy(OverwritePolicy policy) { m_overwrite = std::move(policy); }
    // Default: loading ComputeLoader::api(). Tests replace it.
    void setComputeProbe(ComputeProbe probe) { m_probe = std::move(probe); }
    // Called on the worker thread each time the file being written asks whether it was cancelled
    // (at each progress step; for TorchScript once the module is built, before it is written).
    // Default: nothing. Tests hold the job there, so that a cancel lands at a point they choose.
    using CancelCheckHook = std::function<void()>;
    void setCancelCheckHook(CancelCheckHook hook) { m_cancelCheckHook = std::move(hook); }
    void openSelected();    // emits openRequested for a finished item
    void revealSelected();  // the output's folder in the desktop's file manager

    // How many times planning loaded a TorchScript architecture file with a file's weights: a
    // replan with the file unchanged reuses what the last load found (tests count them).
    int architectureLoads() const;

    ConversionQueueModel *queueModel() const { return m_queue; }
    ConversionPlanModel *planModel() const { return m_plan; }
    QTableView *queueView() const { return m_queueView; }
    QLabel *planSummary() const { return m_summary; }
    ConversionDropTarget *dropTarget(PaneTarget target) const;
    ConversionDropTarget *dropTarget(ConvertTarget target) const { return dropTarget(paneTarget(target)); }
    // Options panel fields (object names target, dtype, stripPrefix, addPrefix, ema, dropOptimizer,
    // keepDevice, sidecar, drops, architecture, architectureScript (a line edit; its browse
    // button is "browseArchitectureScript"), activation, config, classNames, preprocessing, epoch,
    // trainLoss, valLoss, outDir).
    QWidget *optionWidget(const QString &name) const;

Q_SIGNALS:
    void openRequested(const QString &path);
    // A row's plan arrived (or failed: its status says which).
    void planned(int row);
    // A row finished writing: done, failed, cancelled or skipped.
    void itemFinished(int row);
    void queueFinished();

protected:
    // The compute module is probed when the pane is first shown (loading LibTorch takes a while
    // and is not needed before), so that the TorchScript card says up front when it cannot write.
    void showEvent(QShowEvent *event) override;

private:
    void buildUi();
    void fitQueueColumns();
    QWidget *buildOptions();
    void requestPlan(int row);
    void replanSelection();
    void showSelected();
    void loadPanel(const ConversionQueueItem &item);
    void applyPanel(const QString &field);
    // Fields the target does not write (an inference package keeps no epoch) are disabled.
    void enableFieldsFor(PaneTarget target);
    void probeCompute();
    // The compute module could not be loaded (reason), or could (empty): the TorchScript card and
    // its entry under "Convert to" say so.
    void setComputeUnavailable(const QString &reason);
    void startNext();
    void finishRun();
    void updateButtons();
    QList<int> selectedRows() const;
    // A finished row's output (and sidecar) are remembered as this session's; the question before
    // replacing a file says which row wrote it, while the file is still as that row left it.
    void rememberWritten(const ConversionQueueItem &item);
    QString overwriteQuestion(const QString &path, quint64 asking) const;

    ConversionQueueModel *m_queue = nullptr;
    ConversionPlanModel *m_plan = nullptr;
    QTableView *m_queueView = nullptr;
    QTableView *m_planView = nullptr;
    QLabel *m_summary = nullptr;
    QPushButton *m_runButton = nullptr;
    QPushButton *m_cancelButton = nullptr;
    QPushButton *m_removeButton = nullptr;
    QPushButton *m_openButton = nullptr;
    QPushButton *m_revealButton = nullptr;
    std::map<PaneTarget, ConversionDropTarget *> m_targets;
    std::map<QString, QWidget *> m_fields;
    QComboBox *m_target = nullptr;
    QComboBox *m_dtype = nullptr;
    QComboBox *m_strip = nullptr;
    QComboBox *m_activation = nullptr;
    QTimer *m_replan = nullptr;
    bool m_loadingPanel = false;

    ConversionSettings m_defaults;  // the panel's generic options, given to new files
    PaneTarget m_lastTarget = PaneTarget::StateDict;
    OverwritePolicy m_overwrite;
    struct Written {
        quint64 id = 0;  // the row that wrote it
        QString input;
        QString output;
        qint64 size = 0;
        QDateTime modified;
    };
    QHash<QString, Written> m_written;  // by absolute path: files the queue wrote this session
    ComputeProbe m_probe;
    CancelCheckHook m_cancelCheckHook;
    std::shared_ptr<ScriptArchitectureCache> m_architectures;  // shared with the planning jobs
    bool m_probed = false;
    quint64 m_running = 0;  // id of the item being written
    std::shared_ptr<std::atomic_bool> m_cancel;
    QFutureWatcher<ConversionRun> *m_runWatcher = nullptr;
};

} // namespace ckpt
