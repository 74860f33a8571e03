#pragma once

#include <QMainWindow>
#include <QPointer>
#include <QStringList>

class QAction;
class QLabel;
class QMenu;
class QStackedWidget;
class QTabWidget;

namespace ckpt {

class DocumentView;
class CompareView;
class SeriesView;
class ConversionView;

// The application window: one tab per open checkpoint, an empty state with a hint when none is
// open, File/Help menus, recent files, and files or checkpoint folders dropped anywhere on it.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    static constexpr int kMaxRecentFiles = 10;

    explicit MainWindow(QWidget *parent = nullptr);
    // The file dialogs' name filter: every file name the reader is known to take, then all files.
    static QString checkpointFileFilter();
    ~MainWindow() override;

    // Opens each file in a tab (or shows its tab when it is already open). Returns the last view.
    DocumentView *openFiles(const QStringList &paths);
    DocumentView *openFile(const QString &path);
    // A tab comparing two checkpoints (as `ckpt diff`), or a run's checkpoints (as `ckpt series`).
    CompareView *compareFiles(const QString &a, const QString &b);
    SeriesView *openSeries(const QStringList &paths);
    // The conversions tab (one, reused), shown.
    ConversionView *showConversions();

    QTabWidget *tabs() const { return m_tabs; }
    // Document tabs only (compare and series tabs are not DocumentViews): nullptr for those.
    DocumentView *currentView() const;
    DocumentView *viewAt(int index) const;
    int viewCount() const;  // every tab

    enum class Theme { System, Light, Dark };
    // Applies a palette to the whole application and remembers it in QSettings.
    void setTheme(Theme theme);
    Theme theme() const { return m_theme; }
    // Edit → Copy: what selectionText() gives, onto the clipboard.
    void copySelection();
    // What Copy takes: the selected text of the focused text field, else the selected cells (as
    // tab-separated rows, in view order) of the list, table or tree that has the keyboard,
    // wherever it is in the window; else the current document's selected rows.
    QString selectionText() const;

    // Most recent first, at most kMaxRecentFiles; kept in QSettings.
    QStringList recentFiles() const;
    void clearRecentFiles();

public Q_SLOTS:
    void showOpenDialog();
    // File → Open Folder…: a checkpoint folder (a Trainer's checkpoint-500/, save_pretrained's, DeepSpeed's).
    void showOpenFolderDialog();
    // File → Compare With…: the current file against one the user picks.
    void showCompareDialog();
    // File → Compare Training Run…: several checkpoints of one run.
    void showSeriesDialog();
    // File → Convert This File…: the current document queued in the conversions tab.
    void convertCurrentFile();
    void closeTab(int index);
    void closeCurrentTab();
    void showAbout();

protected:
    void dragEnterEvent(QDragEnterEvent *event) override;
    void dragMoveEvent(QDragMoveEvent *event) override;
    void dropEvent(QDropEvent *event) override;
    void closeEvent(QCloseEvent *event) override;
    // Opens the Copy menu on a right-click in any item view of the window.
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void createActions();
    Theme m_theme = Theme::System;
    QWidget *createEmptyPage();
    void addRecentFile(const QString &path);
    void rebuildRecentMenu();
    void updateEmptyPage();
    void updateForCurrentTab();
    void onViewStateChanged(DocumentView *view);
    // The View menu lists the current document's keyboard actions (tabs, Find).
    void showViewActions(DocumentView *view);

    QStackedWidget *m_stack = nullptr;
    QWidget *m_emptyPage = nullptr;
    QLabel *m_emptyRecent = nullptr;
    QTabWidget *m_tabs = nullptr;
    QMenu *m_recentMenu = nullptr;
    QMenu *m_viewMenu = nullptr;
    QAction *m_viewActionsEnd = nullptr;          // the separator the document's actions go before
    QList<QPointer<QAction>> m_shownViewActions;  // the current document's, or the placeholders
    QList<QAction *> m_placeholderViewActions;    // disabled, shown while no document is current
    QAction *m_closeTabAction = nullptr;
    QAction *m_convertFileAction = nullptr;
    QLabel *m_statusLabel = nullptr;
    QPointer<ConversionView> m_conversions;
};

} // namespace ckpt
