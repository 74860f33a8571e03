#pragma once

#include <QStringList>
#include <QWidget>

#include <memory>

class QAction;
class QFileSystemWatcher;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QProgressBar;
class QSortFilterProxyModel;
class QSplitter;
class QStackedWidget;
class QTabWidget;
class QTableView;
class QTimer;
class QTimer;
class QToolButton;
class QTreeView;
template <typename T>
class QFutureWatcher;

namespace ckpt {

struct Document;
struct DocumentLoad;
struct RunFolder;
struct RowStatistics;
class DocumentTreeModel;
class TensorTableModel;
class TensorDetailView;
class ModuleView;
class OptimizerView;
class MetadataView;
class SecurityView;
class PredictionView;
struct TensorRef;

// One open file: a header line, the value tree on the left and, on the right, tabs of views whose
// first ("Tensors") holds the tensor table above the detail pane of the selected tensor; a
// "Reading…" page while the file loads and an error page when it cannot be read. Splitter
// positions and the current tab are remembered (QSettings) for the next document view.
class DocumentView : public QWidget {
    Q_OBJECT
public:
    enum class State { Empty, Loading, Loaded, Failed };
    Q_ENUM(State)

    explicit DocumentView(QWidget *parent = nullptr);
    ~DocumentView() override;

    // Starts reading `path` in the background and returns at once; a later open() wins over this
    // one (its result is dropped). Emits loaded() or failed().
    void open(const QString &path);

    QString path() const { return m_path; }
    State state() const { return m_state; }
    bool isLoading() const { return m_state == State::Loading; }
    // The loaded document; nullptr while loading or after a failure.
    const std::shared_ptr<const Document> &document() const { return m_document; }
    // "path: what is wrong" after a failure, empty otherwise.
    QString errorText() const { return m_error; }
    // The loaded file's globals that Python would run on loading it (os.system, ...); empty when none.
    QStringList dangerousGlobals() const { return m_dangerousGlobals; }
    // One line for a status bar: "zip · training_checkpoint · 4 tensors in model_state_dict (16 in the
    // file) · 652 elements".
    QString summary() const;

    DocumentTreeModel *treeModel() const { return m_treeModel; }
    TensorTableModel *tableModel() const { return m_tableModel; }
    QSortFilterProxyModel *treeProxy() const { return m_treeProxy; }
    QSortFilterProxyModel *tableProxy() const { return m_tableProxy; }
    QTreeView *treeView() const { return m_tree; }
    QTableView *tableView() const { return m_table; }
    QLineEdit *treeFilter() const { return m_treeFilterEdit; }
    // The tabs on the right; the first is "Tensors" (table and detail pane). Others may be added.
    QTabWidget *viewTabs() const { return m_viewTabs; }
    // The pane showing the tensor selected in the table or the tree.
    TensorDetailView *detailView() const { return m_detail; }
    // The other tabs: the state dict by module, the optimizer state, the metadata, the security report.
    ModuleView *moduleView() const { return m_modules; }
    OptimizerView *optimizerView() const { return m_optimizer; }
    MetadataView *metadataView() const { return m_metadata; }
    SecurityView *securityView() const { return m_security; }
    PredictionView *predictionView() const { return m_prediction; }
    // Keyboard actions of this view, for a window's menu: one per tab (Alt+1 … Alt+6), then
    // Find (Ctrl+F, findFilter()). Their shortcuts work anywhere in the window while this view is
    // shown (a view in a hidden tab takes none).
    QList<QAction *> viewActions() const { return m_viewActions; }
    // The same actions unconnected, owned by `parent` (a menu's entries while no view is shown).
    static QList<QAction *> makeViewActions(QObject *parent);
    // Where Find (Ctrl+F) puts the keyboard: the structure filter while the keyboard is in the
    // structure pane, else the filter of the tab shown (the tensor table's, the modules'), else
    // the structure filter when that tab has none.
    QLineEdit *findFilter() const;
    // Shows tab `index` of viewTabs() and moves the keyboard into it.
    void showView(int index);
    enum ViewTab { TensorsTab, ModulesTab, OptimizerTab, MetadataTab, SecurityTab, PredictTab, ViewTabCount };
    // Selects the table row of a state-dict name (its detail follows); false when not listed.
    bool selectTensor(const QString &name);
    QSplitter *structureSplitter() const { return m_splitter; }
    QSplitter *tensorSplitter() const { return m_tensorSplitter; }
    QLineEdit *tableFilter() const { return m_tableFilterEdit; }
    // "Tensors in model_state_dict (16)"; "(3 of 16)" while the filter hides rows.
    QLabel *tableCaption() const { return m_tableCaption; }
    // The selectable text on the error page.
    QLabel *errorLabel() const { return m_errorText; }
    // On the error page where a training run's output folder was opened: its checkpoint folders
    // (the last chosen), a button that opens the chosen one and one that opens the whole run in the
    // Run view. Hidden otherwise.
    QWidget *runBox() const { return m_runBox; }
    QListWidget *runCheckpoints() const { return m_runList; }
    QPushButton *openCheckpointButton() const { return m_openCheckpoint; }
    QPushButton *openRunButton() const { return m_openRun; }
    // The banner shown when the file was truncated or changed on disk while open (with a reload link).
    QLabel *changedBanner() const { return m_changed; }

    // The selection of the tree or table that has the focus (the table when neither has it) as
    // itemviewcopy::selectionText gives it: what Edit → Copy puts on the clipboard.
    QString selectedText() const;

    // Statistics of the table's tensors are computed in the background after each load, filled in
    // as they arrive; cancelStatistics() stops before the next tensor.
    bool statisticsRunning() const { return m_statsWatcher != nullptr; }
    void cancelStatistics();

Q_SIGNALS:
    void loadingStarted(const QString &path);
    void loaded();
    void failed(const QString &message);
    // A run's output folder was opened: the user chose one of its checkpoints, or the whole run.
    void openRequested(const QString &path);
    void seriesRequested(const QStringList &paths);
    // The statistics job ended: `complete` false when it was cancelled.
    void statisticsFinished(bool complete);

protected:
    void showEvent(QShowEvent *event) override;
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void finishLoad(QFutureWatcher<DocumentLoad> *watcher);
    void showDocument(const DocumentLoad &load);
    void showError(const QString &message, const std::shared_ptr<const RunFolder> &run = nullptr);
    void applyTreeFilter(const QString &text);
    void applyTableFilter(const QString &text);
    void updateTableCaption();
    void selectInTree(const QModelIndex &tableIndex);
    void showTableTensor(const QModelIndex &tableIndex);
    void showTreeTensor(const QModelIndex &treeIndex);
    // The table's current row follows the tree: `sourceRow` of the table model, or none (-1).
    void selectInTable(int sourceRow);
    void showInDetail(const QString &name, const TensorRef *tensor, int tableRow);
    void restoreLayout();
    void saveLayout() const;
    void fitColumns();
    // The part of fitColumns() that needs the panes' real widths: run once the view is shown.
    void applyPendingFit();
    // Widens the structure pane for the keys it shows, within what the tensor table needs.
    void fitStructurePane();
    // The width the table's Name column may take: what DType … Grad leave of the table.
    int tableNameRoom() const;
    // Fits the structure tree's columns to its width so that Value stays on screen.
    void layoutTreeColumns();
    int m_treeNaturalWidths[4] = {0, 0, 0, 0};  // Key, Type, Shape, DType at their content width
    int m_tableNameNatural = 0;        // the Name column at its content width
    bool m_fitPending = false;         // a file was shown while the view had no real size yet
    bool m_fittingTree = false;        // the columns are being sized by the view, not the user
    bool m_treeColumnsByUser = false;  // the user dragged a column: leave the widths alone
    bool m_structureByUser = false;    // the user placed the structure pane (here or in a saved layout)
    int m_structureBaseWidth = -1;     // the pane's width before any fitting: short keys keep it
    QByteArray m_structureBaseState;   // what is saved while the width is the view's, not the user's
    void startStatistics();
    void stopStatistics();
    void fitStatisticsColumns();
    QWidget *createLoadingPage();
    QWidget *createContentPage();
    QWidget *createErrorPage();

    QString m_path;
    State m_state = State::Empty;
    QString m_error;
    QStringList m_dangerousGlobals;
    std::shared_ptr<const Document> m_document;
    bool m_predictionStale = false;  // the Predict tab has not been given m_document yet
    void updatePredictionDocument();
    QFutureWatcher<DocumentLoad> *m_watcher = nullptr;
    QFutureWatcher<RowStatistics> *m_statsWatcher = nullptr;
    QProgressBar *m_statsProgress = nullptr;
    QToolButton *m_statsCancel = nullptr;
    QLabel *m_statsStopped = nullptr;  // "Statistics cancelled … Compute them"
    QTimer *m_statsResize = nullptr;   // widens the figure columns while results arrive

    DocumentTreeModel *m_treeModel = nullptr;
    TensorTableModel *m_tableModel = nullptr;
    QSortFilterProxyModel *m_treeProxy = nullptr;
    QSortFilterProxyModel *m_tableProxy = nullptr;

    QLabel *m_title = nullptr;
    QLabel *m_details = nullptr;
    QLabel *m_warnings = nullptr;
    QLabel *m_danger = nullptr;
    QLabel *m_changed = nullptr;  // the file changed on disk while open
    QFileSystemWatcher *m_fileWatcher = nullptr;
    void checkFileChanged();
    void showFileChanged(const QString &why);  // banner when the file names dangerous globals
    QStackedWidget *m_pages = nullptr;
    QWidget *m_loadingPage = nullptr;
    QWidget *m_contentPage = nullptr;
    QWidget *m_errorPage = nullptr;
    QLabel *m_loadingText = nullptr;
    QProgressBar *m_progress = nullptr;
    QSplitter *m_splitter = nullptr;
    QTabWidget *m_viewTabs = nullptr;
    ModuleView *m_modules = nullptr;
    OptimizerView *m_optimizer = nullptr;
    MetadataView *m_metadata = nullptr;
    SecurityView *m_security = nullptr;
    PredictionView *m_prediction = nullptr;
    QSplitter *m_tensorSplitter = nullptr;
    TensorDetailView *m_detail = nullptr;
    const TensorRef *m_detailTensor = nullptr;  // what the detail pane shows (owned by m_document)
    int m_detailRow = -1;                       // its table row, -1 when it has none
    int m_wantedView = 0;                       // remembered tab, chosen on first show (tabs may come later)
    bool m_viewRestored = false;
    bool m_syncingSelection = false;  // one view is following the other: do not echo back
    bool m_filteringTable = false;    // the table's filter is moving rows: the current row is not the user's
    QList<QAction *> m_viewActions;   // Alt+1 … Alt+6, then Find
    QLineEdit *m_treeFilterEdit = nullptr;
    QLineEdit *m_tableFilterEdit = nullptr;
    QTreeView *m_tree = nullptr;
    QTableView *m_table = nullptr;
    QLabel *m_treeCaption = nullptr;
    QLabel *m_tableCaption = nullptr;
    QLabel *m_errorText = nullptr;
    QLabel *m_errorHeading = nullptr;
    QLabel *m_errorHint = nullptr;
    QWidget *m_runBox = nullptr;  // a run's checkpoints, in place of the error, with what to do
    QListWidget *m_runList = nullptr;
    QPushButton *m_openCheckpoint = nullptr;
    QPushButton *m_openRun = nullptr;
    QTimer *m_treeFilterTimer = nullptr;
};

} // namespace ckpt
