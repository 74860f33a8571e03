#include "mainwindow.h"

#include "compareview.h"
#include "conversionview.h"
#include "dialogfolders.h"
#include "documenttabwidget.h"
#include "documentview.h"
#include "itemicons.h"
#include "itemviewcopy.h"
#include "seriesview.h"

#include <QAction>
#include <QPalette>
#include <QGuiApplication>
#include <QClipboard>
#include <QAbstractItemView>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QContextMenuEvent>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHash>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMenuBar>
#include <QPlainTextEdit>
#include <QTextEdit>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSettings>
#include <QStackedWidget>
#include <QStatusBar>
#include <QStyle>
#include <QTabBar>
#include <QTabWidget>
#include <QVBoxLayout>

namespace ckpt {

namespace {

const QString kRecentKey = QStringLiteral("recentFiles");
const QString kGeometryKey = QStringLiteral("mainWindow/geometry");
const QString kThemeKey = QStringLiteral("view/theme");
const QString kAppTitle = QStringLiteral("Checkpoint Studio");

QStringList localFiles(const QMimeData *mime)
{
    QStringList out;
    if (!mime || !mime->hasUrls())
        return out;
    for (const QUrl &url : mime->urls())
        if (url.isLocalFile())
            out << url.toLocalFile();
    return out;
}

} // namespace

MainWindow::MainWindow(QWidget *parent) : QMainWindow(parent)
{
    setWindowTitle(kAppTitle);
    setAcceptDrops(true);

    m_tabs = new DocumentTabWidget(this);
    m_tabs->setObjectName(QStringLiteral("tabs"));
    m_tabs->setTabsClosable(true);
    m_tabs->setMovable(true);
    m_tabs->setDocumentMode(true);
    connect(m_tabs, &QTabWidget::tabCloseRequested, this, &MainWindow::closeTab);
    connect(m_tabs, &QTabWidget::currentChanged, this, [this] { updateForCurrentTab(); });

    m_emptyPage = createEmptyPage();
    m_stack = new QStackedWidget(this);
    m_stack->addWidget(m_emptyPage);
    m_stack->addWidget(m_tabs);
    setCentralWidget(m_stack);

    m_statusLabel = new QLabel(this);
    m_statusLabel->setObjectName(QStringLiteral("statusLabel"));
    m_statusLabel->setTextFormat(Qt::PlainText);  // a document's summary names its file
    statusBar()->addWidget(m_statusLabel, 1);

    createActions();
    // Right-click on any list, table or tree of the window: Copy, Copy name, Copy value.
    qApp->installEventFilter(this);

    QSettings settings;
    if (!restoreGeometry(settings.value(kGeometryKey).toByteArray()))
        resize(1280, 800);
    updateEmptyPage();
    updateForCurrentTab();
}

MainWindow::~MainWindow() = default;

void MainWindow::createActions()
{
    QMenu *file = menuBar()->addMenu(tr("&File"));
    QAction *open = file->addAction(tr("&Open\u2026"), this, &MainWindow::showOpenDialog);
    open->setShortcut(QKeySequence::Open);
    open->setIcon(style()->standardIcon(QStyle::SP_DialogOpenButton));
    QAction *openFolder = file->addAction(tr("Open &Folder\u2026"), this, &MainWindow::showOpenFolderDialog);
    openFolder->setObjectName(QStringLiteral("openFolderAction"));
    openFolder->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
    openFolder->setStatusTip(tr("Open a checkpoint folder: a Trainer's checkpoint-500, a saved model, DeepSpeed's"));
    m_recentMenu = file->addMenu(tr("Open &Recent"));
    file->addSeparator();
    QAction *compare = file->addAction(tr("Co&mpare With\u2026"), this, &MainWindow::showCompareDialog);
    compare->setObjectName(QStringLiteral("compareAction"));
    compare->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_D));
    compare->setStatusTip(tr("Compare the current file with another (or drop a file with Ctrl held)"));
    QAction *series = file->addAction(tr("Compare Training &Run\u2026"), this, &MainWindow::showSeriesDialog);
    series->setObjectName(QStringLiteral("seriesAction"));
    series->setStatusTip(tr("Norms and drift of every tensor across a run's checkpoints"));
    QAction *convertFile = file->addAction(tr("Con&vert This File\u2026"), this, &MainWindow::convertCurrentFile);
    convertFile->setObjectName(QStringLiteral("convertFileAction"));
    convertFile->setStatusTip(tr("Queue the current file in the conversions tab"));
    m_convertFileAction = convertFile;
    file->addSeparator();
    m_closeTabAction = file->addAction(tr("&Close Tab"), this, &MainWindow::closeCurrentTab);
    m_closeTabAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_W));
    file->addSeparator();
    QAction *quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Q));
    quit->setMenuRole(QAction::QuitRole);

    QMenu *edit = menuBar()->addMenu(tr("&Edit"));
    QAction *copy = edit->addAction(tr("&Copy"), this, &MainWindow::copySelection);
    copy->setShortcut(QKeySequence::Copy);
    copy->setObjectName(QStringLiteral("copyAction"));

    QMenu *view = menuBar()->addMenu(tr("&View"));
    m_viewMenu = view;
    QAction *conversions = view->addAction(tr("&Conversions\u2026"), this, [this] { showConversions(); });
    conversions->setObjectName(QStringLiteral("conversionsAction"));
    conversions->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
    conversions->setStatusTip(tr("Convert checkpoints: state dict, checkpoint, inference package, full model, safetensors"));
    view->addSeparator();
    // The document's own actions go here (see showViewActions); without a document, the same
    // entries disabled, so the keys can be found before a file is open.
    m_placeholderViewActions = DocumentView::makeViewActions(this);
    for (QAction *a : std::as_const(m_placeholderViewActions))
        a->setEnabled(false);
    m_viewActionsEnd = view->addSeparator();
    QMenu *themes = view->addMenu(tr("&Theme"));
    auto *group = new QActionGroup(this);
    const std::pair<Theme, QString> choices[] = {
        {Theme::System, tr("&System")}, {Theme::Light, tr("&Light")}, {Theme::Dark, tr("&Dark")}};
    const int savedValue = QSettings().value(kThemeKey, 0).toInt();
    const auto saved = savedValue >= 0 && savedValue <= 2 ? static_cast<Theme>(savedValue) : Theme::System;
    for (const auto &[theme, label] : choices) {
        QAction *a = themes->addAction(label, this, [this, theme = theme] { setTheme(theme); });
        a->setCheckable(true);
        a->setChecked(theme == saved);
        a->setObjectName(QStringLiteral("theme%1").arg(static_cast<int>(theme)));
        group->addAction(a);
    }
    setTheme(saved);

    QMenu *help = menuBar()->addMenu(tr("&Help"));
    QAction *about = help->addAction(tr("&About Checkpoint Studio"), this, &MainWindow::showAbout);
    about->setMenuRole(QAction::AboutRole);
    help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);

    rebuildRecentMenu();
}

QWidget *MainWindow::createEmptyPage()
{
    auto *page = new QWidget(this);
    page->setObjectName(QStringLiteral("emptyPage"));
    auto *hint = new QLabel(tr("Drop a checkpoint here or use File \u2192 Open"), page);
    hint->setObjectName(QStringLiteral("emptyHint"));
    QFont f = hint->font();
    f.setPointSizeF(f.pointSizeF() * 1.5);
    hint->setFont(f);
    hint->setAlignment(Qt::AlignCenter);
    auto *sub = new QLabel(tr("PyTorch checkpoints (.pth .pt .ckpt .bin .tar) and safetensors files are read "
                              "without running anything they contain."),
                           page);
    sub->setAlignment(Qt::AlignCenter);
    sub->setWordWrap(true);
    QPalette pal = sub->palette();
    pal.setColor(QPalette::WindowText, pal.color(QPalette::PlaceholderText));
    sub->setPalette(pal);
    auto *button = new QPushButton(style()->standardIcon(QStyle::SP_DialogOpenButton), tr("Open\u2026"), page);
    connect(button, &QPushButton::clicked, this, &MainWindow::showOpenDialog);
    m_emptyRecent = new QLabel(page);
    m_emptyRecent->setObjectName(QStringLiteral("emptyRecent"));
    m_emptyRecent->setAlignment(Qt::AlignCenter);
    m_emptyRecent->setTextFormat(Qt::RichText);
    connect(m_emptyRecent, &QLabel::linkActivated, this, [this](const QString &link) {
        openFile(QUrl(link).toLocalFile());
    });

    auto *l = new QVBoxLayout(page);
    l->addStretch(2);
    l->addWidget(hint);
    l->addWidget(sub);
    l->addSpacing(12);
    l->addWidget(button, 0, Qt::AlignHCenter);
    l->addSpacing(24);
    l->addWidget(m_emptyRecent);
    l->addStretch(3);
    return page;
}

DocumentView *MainWindow::openFiles(const QStringList &paths)
{
    DocumentView *last = nullptr;
    for (const QString &p : paths)
        if (!p.isEmpty())
            last = openFile(p);
    return last;
}

DocumentView *MainWindow::openFile(const QString &path)
{
    const QString absolute = QDir::cleanPath(QFileInfo(path).absoluteFilePath());  // a folder may end in /
    for (int i = 0; i < viewCount(); ++i) {
        DocumentView *v = viewAt(i);
        if (v && v->path() == absolute) {
            if (v->state() == DocumentView::State::Failed)
                v->open(absolute);  // try again: the file may have been fixed
            m_tabs->setCurrentIndex(i);
            return v;
        }
    }
    auto *view = new DocumentView(m_tabs);
    connect(view, &DocumentView::loaded, this, [this, view] {
        addRecentFile(view->path());
        onViewStateChanged(view);
    });
    connect(view, &DocumentView::failed, this, [this, view] { onViewStateChanged(view); });
    // A run's output folder offers its checkpoints: one opens in a tab, or the run in the Run view.
    connect(view, &DocumentView::openRequested, this, [this](const QString &path) { openFile(path); });
    connect(view, &DocumentView::seriesRequested, this, [this](const QStringList &paths) { openSeries(paths); });
    connect(view, &DocumentView::loadingStarted, this, [this, view] { onViewStateChanged(view); });
    const int index = m_tabs->addTab(view, QFileInfo(absolute).fileName());
    m_tabs->setTabToolTip(index, absolute);
    m_tabs->setCurrentIndex(index);
    m_stack->setCurrentWidget(m_tabs);
    view->open(absolute);
    return view;
}

DocumentView *MainWindow::currentView() const
{
    return qobject_cast<DocumentView *>(m_tabs->currentWidget());
}

DocumentView *MainWindow::viewAt(int index) const
{
    return qobject_cast<DocumentView *>(m_tabs->widget(index));
}

int MainWindow::viewCount() const
{
    return m_tabs->count();
}

void MainWindow::onViewStateChanged(DocumentView *view)
{
    const int index = m_tabs->indexOf(view);
    if (index < 0)
        return;
    // Two markers: the error sign when the file could not be read, a red shield when it was read
    // but names code that Python would run on loading it (read here as data, never run); the
    // tooltip says which.
    const bool failed = view->state() == DocumentView::State::Failed;
    const QStringList dangerous = failed ? QStringList() : view->dangerousGlobals();
    m_tabs->setTabIcon(index, failed               ? style()->standardIcon(QStyle::SP_MessageBoxCritical)
                              : !dangerous.isEmpty() ? itemicons::danger()
                                                     : QIcon());
    QString tip = view->path();
    if (failed)
        tip += QLatin1Char('\n') + tr("Could not be read: %1").arg(view->errorText());
    else if (!dangerous.isEmpty())
        tip += QLatin1Char('\n') + tr("Dangerous: names code that Python would run on loading it (%1). "
                                      "Read here as data, never run; do not torch.load it.")
                                       .arg(dangerous.join(QStringLiteral(", ")));
    m_tabs->setTabToolTip(index, tip);
    if (view == currentView())
        updateForCurrentTab();
}

void MainWindow::showViewActions(DocumentView *view)
{
    for (const QPointer<QAction> &a : std::as_const(m_shownViewActions))
        if (a)
            m_viewMenu->removeAction(a);
    m_shownViewActions.clear();
    const QList<QAction *> actions = view ? view->viewActions() : m_placeholderViewActions;
    for (QAction *a : actions) {
        m_viewMenu->insertAction(m_viewActionsEnd, a);
        m_shownViewActions << a;
    }
}

void MainWindow::updateForCurrentTab()
{
    DocumentView *view = currentView();
    showViewActions(view);
    if (!view) {
        const bool other = m_tabs->currentWidget() != nullptr;  // a compare or series tab
        QString name = m_tabs->tabText(m_tabs->currentIndex());
        if (const auto *compare = qobject_cast<const CompareView *>(m_tabs->currentWidget()))
            name = tr("%1 \u2194 %2").arg(QFileInfo(compare->fileA()).fileName(), QFileInfo(compare->fileB()).fileName());
        setWindowTitle(other ? QStringLiteral("%1 \u2014 %2").arg(kAppTitle, name) : kAppTitle);
        m_statusLabel->setText(other ? name : tr("No file open"));
        m_closeTabAction->setEnabled(other);
        m_convertFileAction->setEnabled(true);  // shows the conversions tab
        return;
    }
    // A file that could not be read cannot be converted either: queuing it only gives an error row.
    m_convertFileAction->setEnabled(view->state() != DocumentView::State::Failed);
    setWindowTitle(QStringLiteral("%1 \u2014 %2").arg(kAppTitle, QFileInfo(view->path()).fileName()));
    m_statusLabel->setText(view->summary());
    m_closeTabAction->setEnabled(true);
}

void MainWindow::closeTab(int index)
{
    QWidget *w = m_tabs->widget(index);
    if (!w)
        return;
    m_tabs->removeTab(index);
    w->deleteLater();
    if (m_tabs->count() == 0) {
        updateEmptyPage();
        m_stack->setCurrentWidget(m_emptyPage);
    }
    updateForCurrentTab();
}

void MainWindow::closeCurrentTab()
{
    closeTab(m_tabs->currentIndex());
}

QString MainWindow::checkpointFileFilter()
{
    // What the reader takes (it goes by content, these are the names such files have): torch.save
    // files, TorchScript and mobile (.ptl) archives, plain pickles, safetensors, shard indexes.
    return tr("PyTorch checkpoints (*.pth *.pt *.ptl *.ckpt *.bin *.tar *.th *.pkl *.safetensors *.index.json);;"
              "All files (*)");
}

void MainWindow::showOpenDialog()
{
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Open Checkpoint"), dialogfolders::openStart(),
                                                            checkpointFileFilter());
    if (files.isEmpty())
        return;
    dialogfolders::rememberOpened(files.first());
    openFiles(files);
}

void MainWindow::showOpenFolderDialog()
{
    const QString folder =
        QFileDialog::getExistingDirectory(this, tr("Open Checkpoint Folder"), dialogfolders::openStart());
    if (folder.isEmpty())
        return;
    dialogfolders::rememberOpened(folder);
    openFile(folder);
}

void MainWindow::showAbout()
{
    QMessageBox::about(this, tr("About Checkpoint Studio"),
                       tr("<h3>Checkpoint Studio %1</h3>"
                          "<p>Inspect, convert and test PyTorch checkpoints without Python.</p>"
                          "<p>Files are read as data: nothing in a checkpoint is ever run.</p>"
                          "<p>Built with Qt %2.</p>")
                           .arg(QStringLiteral(CKPT_VERSION), QString::fromLatin1(qVersion())));
}

QStringList MainWindow::recentFiles() const
{
    return QSettings().value(kRecentKey).toStringList();
}

void MainWindow::addRecentFile(const QString &path)
{
    // However it was opened (command line, drop, recent list): File → Open starts beside it next.
    dialogfolders::rememberOpened(path);
    QStringList files = recentFiles();
    files.removeAll(path);
    files.prepend(path);
    while (files.size() > kMaxRecentFiles)
        files.removeLast();
    QSettings().setValue(kRecentKey, files);
    rebuildRecentMenu();
    updateEmptyPage();
}

void MainWindow::clearRecentFiles()
{
    QSettings().remove(kRecentKey);
    rebuildRecentMenu();
    updateEmptyPage();
}

void MainWindow::rebuildRecentMenu()
{
    m_recentMenu->clear();
    m_recentMenu->setToolTipsVisible(true);  // each entry's full path
    const QStringList files = recentFiles();
    QHash<QString, int> sameName;
    for (const QString &path : files)
        ++sameName[QFileInfo(path).fileName()];
    const QFontMetrics fm = m_recentMenu->fontMetrics();
    for (int i = 0; i < files.size(); ++i) {
        const QString &path = files[i];
        // &1..&9, then 1&0: keyboard accelerators for the first ten.
        const QString number = i < 9 ? QStringLiteral("&%1").arg(i + 1) : QStringLiteral("1&0");
        QString label = QFileInfo(path).fileName();
        // Two files of one name (checkpoints/best.pth of two runs) are told apart by their folders.
        if (sameName.value(label) > 1)
            label = tr("%1 \u2014 %2").arg(label, fm.elidedText(QDir::toNativeSeparators(QFileInfo(path).absolutePath()),
                                                                 Qt::ElideMiddle, fm.averageCharWidth() * 60));
        label.replace(QLatin1Char('&'), QLatin1String("&&"));  // a '&' in a name is not an accelerator
        QAction *a = m_recentMenu->addAction(QStringLiteral("%1  %2").arg(number, label));
        a->setToolTip(path);
        a->setStatusTip(path);
        connect(a, &QAction::triggered, this, [this, path] { openFile(path); });
    }
    if (!files.isEmpty())
        m_recentMenu->addSeparator();
    QAction *clear = m_recentMenu->addAction(tr("Clear"), this, &MainWindow::clearRecentFiles);
    clear->setEnabled(!files.isEmpty());
    m_recentMenu->setEnabled(true);
}

void MainWindow::updateEmptyPage()
{
    const QStringList files = recentFiles();
    if (files.isEmpty()) {
        m_emptyRecent->clear();
        m_emptyRecent->hide();
        return;
    }
    QString html = QStringLiteral("<p><b>%1</b></p>").arg(tr("Recent files"));
    for (const QString &f : files)
        html += QStringLiteral("<p><a href=\"%1\">%2</a> <span style=\"color: gray\">%3</span></p>")
                    .arg(QUrl::fromLocalFile(f).toString().toHtmlEscaped(), QFileInfo(f).fileName().toHtmlEscaped(),
                         QFileInfo(f).absolutePath().toHtmlEscaped());
    m_emptyRecent->setText(html);
    m_emptyRecent->show();
}

void MainWindow::dragEnterEvent(QDragEnterEvent *event)
{
    if (!localFiles(event->mimeData()).isEmpty())
        event->acceptProposedAction();
}

void MainWindow::dragMoveEvent(QDragMoveEvent *event)
{
    if (!localFiles(event->mimeData()).isEmpty())
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent *event)
{
    const QStringList files = localFiles(event->mimeData());
    if (files.isEmpty())
        return;
    event->acceptProposedAction();
    // With Ctrl held: one file is compared with the open one, several make a training run.
    if (event->modifiers() & Qt::ControlModifier) {
        if (files.size() == 1 && currentView()) {
            compareFiles(currentView()->path(), files.first());
            return;
        }
        if (files.size() > 1) {
            openSeries(files);
            return;
        }
    }
    openFiles(files);
}

CompareView *MainWindow::compareFiles(const QString &a, const QString &b)
{
    auto *view = new CompareView(m_tabs);
    // Both names, each elided in its middle, so that the tab never reads as the first file's own.
    const QFontMetrics fm = m_tabs->tabBar()->fontMetrics();
    const int each = (DocumentTabWidget::maxTextWidth(fm) - fm.horizontalAdvance(QStringLiteral(" \u2194 "))) / 2;
    auto shortName = [&fm, each](const QString &path) {
        return fm.elidedText(QFileInfo(path).fileName(), Qt::ElideMiddle, each);
    };
    const int index = m_tabs->addTab(view, itemicons::compare(), tr("%1 \u2194 %2").arg(shortName(a), shortName(b)));
    m_tabs->setTabToolTip(index, tr("Comparison of\n%1\nwith\n%2").arg(a, b));
    m_tabs->setCurrentIndex(index);
    m_stack->setCurrentWidget(m_tabs);
    view->compare(a, b);
    updateForCurrentTab();  // the window's title names both files, known from here on
    return view;
}

SeriesView *MainWindow::openSeries(const QStringList &paths)
{
    auto *view = new SeriesView(m_tabs);
    const int index = m_tabs->addTab(view, tr("Run of %1 checkpoints").arg(paths.size()));
    m_tabs->setTabToolTip(index, paths.join(QLatin1Char('\n')));
    m_tabs->setCurrentIndex(index);
    m_stack->setCurrentWidget(m_tabs);
    view->setFiles(paths);
    return view;
}

ConversionView *MainWindow::showConversions()
{
    if (!m_conversions || m_tabs->indexOf(m_conversions) < 0) {  // never made, or its tab was closed
        m_conversions = new ConversionView(m_tabs);
        m_conversions->setObjectName(QStringLiteral("conversions"));
        connect(m_conversions, &ConversionView::openRequested, this, [this](const QString &path) { openFile(path); });
        m_tabs->addTab(m_conversions, tr("Conversions"));
    }
    m_tabs->setCurrentWidget(m_conversions);
    m_stack->setCurrentWidget(m_tabs);
    return m_conversions;
}

void MainWindow::convertCurrentFile()
{
    if (currentView() && currentView()->state() == DocumentView::State::Failed)
        return;  // the action is disabled then; a direct call does nothing either
    const QString path = currentView() ? currentView()->path() : QString();
    ConversionView *pane = showConversions();
    if (!path.isEmpty())
        pane->addFiles({path});
}

void MainWindow::showCompareDialog()
{
    QString first = currentView() ? currentView()->path() : QString();
    if (first.isEmpty()) {
        first = QFileDialog::getOpenFileName(this, tr("First Checkpoint"), dialogfolders::openStart(),
                                             checkpointFileFilter());
        if (first.isEmpty())
            return;
    }
    const QString second = QFileDialog::getOpenFileName(
        this, tr("Compare %1 With").arg(QFileInfo(first).fileName()), QFileInfo(first).absolutePath(),
        checkpointFileFilter());
    if (second.isEmpty())
        return;
    dialogfolders::rememberOpened(second);
    compareFiles(first, second);
}

void MainWindow::showSeriesDialog()
{
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Checkpoints of One Run"),
                                                            dialogfolders::openStart(), checkpointFileFilter());
    if (files.size() < 2)
        return;
    dialogfolders::rememberOpened(files.first());
    openSeries(files);
}

void MainWindow::copySelection()
{
    const QString text = selectionText();
    if (!text.isEmpty())
        QGuiApplication::clipboard()->setText(text);
}

QString MainWindow::selectionText() const
{
    // What has the keyboard: a text field's selection, or the selected cells of the list, table
    // or tree it is in (a cell being edited counts as its view's).
    QWidget *focus = QApplication::focusWidget();
    if (focus && focus->window() == this) {
        if (const auto *edit = qobject_cast<const QLineEdit *>(focus); edit && edit->hasSelectedText())
            return edit->echoMode() == QLineEdit::Normal ? edit->selectedText() : QString();
        if (const auto *edit = qobject_cast<const QTextEdit *>(focus))
            return edit->textCursor().selectedText().replace(QChar::ParagraphSeparator, QLatin1Char('\n'));
        if (const auto *edit = qobject_cast<const QPlainTextEdit *>(focus))
            return edit->textCursor().selectedText().replace(QChar::ParagraphSeparator, QLatin1Char('\n'));
        if (const auto *label = qobject_cast<const QLabel *>(focus); label && label->hasSelectedText())
            return label->selectedText();
        for (QWidget *w = focus; w && w != this; w = w->parentWidget())
            if (const auto *view = qobject_cast<const QAbstractItemView *>(w))
                return itemviewcopy::selectionText(view);
    }
    // The keyboard is elsewhere (a tab, a button): the document's table or tree, as before; in
    // another tab, its first list or table that has a selection.
    if (const DocumentView *view = currentView())
        return view->selectedText();
    if (QWidget *page = m_tabs->currentWidget()) {
        const auto views = page->findChildren<QAbstractItemView *>();
        for (const QAbstractItemView *view : views)
            if (view->isVisible() && view->selectionModel() && view->selectionModel()->hasSelection())
                return itemviewcopy::selectionText(view);
    }
    return {};
}

bool MainWindow::eventFilter(QObject *watched, QEvent *event)
{
    if (event->type() == QEvent::ContextMenu) {
        auto *viewport = qobject_cast<QWidget *>(watched);
        auto *view = viewport ? qobject_cast<QAbstractItemView *>(viewport->parentWidget()) : nullptr;
        if (view && view->viewport() == viewport && view->window() == this &&
            view->contextMenuPolicy() == Qt::DefaultContextMenu) {
            const auto *menuEvent = static_cast<QContextMenuEvent *>(event);
            QMenu *menu = itemviewcopy::contextMenu(view, view->indexAt(menuEvent->pos()));
            menu->setAttribute(Qt::WA_DeleteOnClose);
            menu->popup(menuEvent->globalPos());
            return true;
        }
    }
    return QMainWindow::eventFilter(watched, event);
}

void MainWindow::setTheme(Theme theme)
{
    static const QPalette systemPalette = QApplication::palette();
    QPalette p = systemPalette;
    // Colours for enabled widgets (Active and Inactive groups) only: setting a role for every group
    // would make disabled controls look enabled. The Disabled group gets its own, dimmer colours.
    auto enabled = [&p](QPalette::ColorRole role, const QColor &c) {
        p.setColor(QPalette::Active, role, c);
        p.setColor(QPalette::Inactive, role, c);
    };
    auto disabled = [&p](QPalette::ColorRole role, const QColor &c) { p.setColor(QPalette::Disabled, role, c); };
    if (theme == Theme::Dark) {
        const QColor window(0x2b, 0x2d, 0x31), base(0x1e, 0x1f, 0x22), text(0xe6, 0xe6, 0xe6);
        const QColor dimText(0x7a, 0x7c, 0x80), dimBase(0x26, 0x27, 0x2a);
        for (auto group : {QPalette::Active, QPalette::Inactive, QPalette::Disabled}) {
            // Bevels and frames: the system palette's are made for a light window.
            p.setColor(group, QPalette::Light, window.lighter(150));
            p.setColor(group, QPalette::Midlight, window.lighter(125));
            p.setColor(group, QPalette::Mid, window.lighter(140));
            p.setColor(group, QPalette::Dark, window.darker(150));
            p.setColor(group, QPalette::Shadow, Qt::black);
            p.setColor(group, QPalette::Window, window);
            p.setColor(group, QPalette::Button, window);
            p.setColor(group, QPalette::ToolTipBase, base);
            p.setColor(group, QPalette::ToolTipText, text);
            p.setColor(group, QPalette::Link, QColor(0x6c, 0xa8, 0xf0));
        }
        enabled(QPalette::WindowText, text);
        enabled(QPalette::Base, base);
        enabled(QPalette::AlternateBase, window);
        enabled(QPalette::Text, text);
        enabled(QPalette::ButtonText, text);
        enabled(QPalette::BrightText, Qt::white);
        enabled(QPalette::Highlight, QColor(0x3d, 0x6f, 0xb3));
        enabled(QPalette::HighlightedText, Qt::white);
        enabled(QPalette::PlaceholderText, QColor(0x90, 0x90, 0x90));
        disabled(QPalette::WindowText, dimText);
        disabled(QPalette::Text, dimText);
        disabled(QPalette::ButtonText, dimText);
        disabled(QPalette::BrightText, dimText);
        disabled(QPalette::PlaceholderText, QColor(0x5c, 0x5e, 0x62));
        disabled(QPalette::Base, dimBase);
        disabled(QPalette::AlternateBase, window);
        disabled(QPalette::Highlight, QColor(0x3a, 0x40, 0x4a));
        disabled(QPalette::HighlightedText, dimText);
    } else if (theme == Theme::Light) {
        p = QPalette(QColor(0xef, 0xef, 0xef));  // computes every group, Disabled included
        enabled(QPalette::Base, Qt::white);
        enabled(QPalette::Text, Qt::black);
        enabled(QPalette::WindowText, Qt::black);
        enabled(QPalette::ButtonText, Qt::black);
        const QColor dimText(0x9a, 0x9a, 0x9a);
        disabled(QPalette::WindowText, dimText);
        disabled(QPalette::Text, dimText);
        disabled(QPalette::ButtonText, dimText);
        disabled(QPalette::Base, QColor(0xef, 0xef, 0xef));
    }
    QApplication::setPalette(p);
    m_theme = theme;
    QSettings().setValue(kThemeKey, static_cast<int>(theme));
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    QSettings().setValue(kGeometryKey, saveGeometry());
    QMainWindow::closeEvent(event);
}

} // namespace ckpt
