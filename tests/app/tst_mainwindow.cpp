// MainWindow: files from the command line, dropped files, a broken file, recent files, tabs, and
// screenshots of the window for people to look at (saved under the build folder).
#include "document.h"
#include "documenttabwidget.h"
#include "isolatedsettings.h"
#include "itemicons.h"
#include "compareview.h"
#include "conversionqueuemodel.h"
#include "conversionview.h"
#include "documentview.h"
#include "dropevents.h"
#include "seriesview.h"
#include "copyrole.h"
#include "dialogfolders.h"
#include "mainwindow.h"
#include "predictionview.h"
#include "whensettled.h"
#include "tensortablemodel.h"

#include <QAbstractItemModelTester>
#include <QContextMenuEvent>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include "testdata.h"
#include <QDir>
#include <QFile>
#include <QDirIterator>
#include <QFileInfo>
#include <QRegularExpression>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QLabel>
#include <QAction>
#include <QApplication>
#include <QPalette>
#include <QGuiApplication>
#include <QImage>
#include <QClipboard>
#include <QMenu>
#include <QMenuBar>
#include <QMimeData>
#include <QSettings>
#include <QStackedWidget>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStyle>
#include <QTabBar>
#include <QTabWidget>
#include <QToolButton>
#include <QTableView>
#include <QTreeView>
#include <QLineEdit>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QComboBox>
#include <QLineEdit>
#include <QScrollArea>
#include <QScrollBar>
#include <QTableWidget>
#include <QHeaderView>
#include <QPushButton>
#include <QTest>

#include <algorithm>

using namespace ckpt;

namespace {

using test::dropUrls;

QString example(const char *name)
{
    return QStringLiteral(CKPT_EXAMPLES_DIR "/") + QLatin1String(name);
}

QString fixture(const char *name)
{
    return QStringLiteral(CKPT_FIXTURES_DIR "/") + QLatin1String(name);
}

void saveScreenshot(QWidget &w, const QString &name)
{
    QDir().mkpath(QStringLiteral(CKPT_SCREENSHOT_DIR));
    const QString path = QStringLiteral(CKPT_SCREENSHOT_DIR "/") + name;
    QVERIFY2(w.grab().save(path), qPrintable(path));
}

QAction *findMenu(QMainWindow &w, const QString &title)
{
    for (QAction *a : w.menuBar()->actions())
        if (a->text().remove(QLatin1Char('&')) == title)
            return a;
    return nullptr;
}

// What `view` shows of the row of `index`: its visible columns' text, tab-separated.
QString shownRow(const QAbstractItemView *view, const QModelIndex &index)
{
    QStringList cells;
    const auto *tree = qobject_cast<const QTreeView *>(view);
    const auto *table = qobject_cast<const QTableView *>(view);
    for (int c = 0; c < view->model()->columnCount(index.parent()); ++c)
        if (!(tree && tree->isColumnHidden(c)) && !(table && table->isColumnHidden(c)))
            cells << index.siblingAtColumn(c).data().toString();
    return cells.join(QLatin1Char('\t'));
}

// Edit → Copy with the keyboard in `view`, after selecting the row of `index`.
QString copyRow(MainWindow &w, QAbstractItemView *view, const QModelIndex &index)
{
    view->setFocus(Qt::OtherFocusReason);
    if (!QTest::qWaitFor([view] { return view->hasFocus(); }))
        return QStringLiteral("(the view did not take the keyboard)");
    view->selectionModel()->setCurrentIndex(index, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    QGuiApplication::clipboard()->setText(QStringLiteral("(nothing copied)"));
    w.findChild<QAction *>(QStringLiteral("copyAction"))->trigger();
    return QGuiApplication::clipboard()->text();
}

} // namespace

class TestMainWindow : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();

    void emptyState();
    void openFromCommandLine();
    void dropOpensTab();
    void dropIgnoresNonFiles();
    void brokenFileShowsError();
    void settlesWhenNothingIsLeft_data();
    void settlesWhenNothingIsLeft();
    void dangerousFileTabIsMarked();
    void sameFileTwiceReusesTab();
    void recentFiles();
    void closeTabs();
    void manyTabsStayReadable();
    void longNameTabIsCapped();
    void predictRunIsAlwaysInView_data();
    void predictRunIsAlwaysInView();
    void tensorTableHasTheRoom();
    void compareTabNamesBothFiles();
    void openDialogOffersWhatIsRead();
    void dialogsStartWhereTheUserWorks();
    void menus();
    void copyPutsRowsOnClipboard();
    void copyFollowsFocus();
    void contextMenuCopies();
    void recentMenuTellsSameNamesApart();
    void viewKeysWorkAnywhereInTheWindow();
    void themeIsAppliedAndRemembered();
    void ctrlDropCompares();
    void conversionsTab();
    void conversionsScreenshot();
    void screenshots_data();
    void screenshots();
};

void TestMainWindow::initTestCase()
{
    test::isolateSettings(QStringLiteral("Checkpoint Studio"), QStringLiteral("Checkpoint Studio Test"));
}

void TestMainWindow::init()
{
    QSettings().clear();
}

void TestMainWindow::emptyState()
{
    MainWindow w;
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    auto *hint = w.findChild<QLabel *>(QStringLiteral("emptyHint"));
    QVERIFY(hint);
    QVERIFY(hint->isVisible());
    QCOMPARE(hint->text(), QStringLiteral("Drop a checkpoint here or use File \u2192 Open"));
    QVERIFY(!w.findChild<QLabel *>(QStringLiteral("emptyRecent"))->isVisible());
    QCOMPARE(w.windowTitle(), QStringLiteral("Checkpoint Studio"));
    QCOMPARE(w.viewCount(), 0);
    saveScreenshot(w, QStringLiteral("empty.png"));
}

void TestMainWindow::openFromCommandLine()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    DocumentView *view = w.openFiles({example("simple_nn_checkpoint.pth")});
    QVERIFY(view);
    auto tester = std::make_unique<QAbstractItemModelTester>(view->tableModel(),
                                                             QAbstractItemModelTester::FailureReportingMode::QtTest);
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    QCOMPARE(w.viewCount(), 1);
    QCOMPARE(view->tableModel()->rowCount(), 4);
    QCOMPARE(view->tableView()->model()->rowCount(), 4);
    QCOMPARE(view->tableModel()->index(0, TensorTableModel::NameColumn).data().toString(),
             QStringLiteral("fc1.weight"));
    QCOMPARE(w.windowTitle(), QStringLiteral("Checkpoint Studio \u2014 simple_nn_checkpoint.pth"));
    QCOMPARE(w.tabs()->tabText(0), QStringLiteral("simple_nn_checkpoint.pth"));
    const QString status = w.findChild<QLabel *>(QStringLiteral("statusLabel"))->text();
    QVERIFY2(status.contains(QStringLiteral("zip")) && status.contains(QStringLiteral("training_checkpoint")) &&
                 status.contains(QStringLiteral("652")),
             qPrintable(status));
    QCOMPARE(w.recentFiles().value(0), QFileInfo(example("simple_nn_checkpoint.pth")).absoluteFilePath());

    view->tableView()->setCurrentIndex(view->tableView()->model()->index(0, 0));  // fc1.weight, in the tree too
    QTRY_VERIFY_WITH_TIMEOUT(!view->statisticsRunning(), 30000);  // the picture with its figures, not "..."
    QTest::qWait(200);
    saveScreenshot(w, QStringLiteral("mainwindow.png"));
}

void TestMainWindow::dropOpensTab()
{
    MainWindow w;
    w.show();
    w.openFiles({example("simple_nn_checkpoint.pth")});
    QCOMPARE(w.viewCount(), 1);

    QVERIFY(dropUrls(w, {QUrl::fromLocalFile(example("simple_nn_full_model.pth")),
                         QUrl::fromLocalFile(example("simple_nn_inference.pth"))}));
    QCOMPARE(w.viewCount(), 3);
    QCOMPARE(w.tabs()->currentIndex(), 2);
    for (int i = 0; i < w.viewCount(); ++i)
        QTRY_COMPARE_WITH_TIMEOUT(w.viewAt(i)->state(), DocumentView::State::Loaded, 20000);
    QCOMPARE(w.viewAt(1)->tableModel()->rowCount(), 4);
    QCOMPARE(QString::fromStdString(kindName(w.viewAt(1)->document()->kind)), QStringLiteral("full_model"));
    QCOMPARE(w.windowTitle(), QStringLiteral("Checkpoint Studio \u2014 simple_nn_inference.pth"));
}

void TestMainWindow::dropIgnoresNonFiles()
{
    MainWindow w;
    w.show();
    QVERIFY(!dropUrls(w, {QUrl(QStringLiteral("https://example.com/model.pth"))}));
    QCOMPARE(w.viewCount(), 0);
}

void TestMainWindow::brokenFileShowsError()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    DocumentView *view = w.openFile(fixture("not_a_checkpoint.pth"));
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Failed, 20000);
    QVERIFY(view->errorLabel()->isVisible());
    QVERIFY(view->errorLabel()->text().contains(QStringLiteral("not_a_checkpoint.pth")));
    QVERIFY(!w.tabs()->tabIcon(0).isNull());
    QVERIFY(w.findChild<QLabel *>(QStringLiteral("statusLabel"))->text().contains(QStringLiteral("Could not read")));
    QVERIFY(w.recentFiles().isEmpty());  // only files that opened are remembered
    // Nothing to convert in a file that could not be read.
    QAction *convert = w.findChild<QAction *>(QStringLiteral("convertFileAction"));
    QVERIFY(!convert->isEnabled());
    saveScreenshot(w, QStringLiteral("error.png"));

    // The window keeps working: a good file opens next to the broken one.
    DocumentView *good = w.openFile(example("simple_nn_checkpoint.pth"));
    QTRY_COMPARE_WITH_TIMEOUT(good->state(), DocumentView::State::Loaded, 20000);
    QCOMPARE(w.viewCount(), 2);
    QVERIFY(convert->isEnabled());
    w.tabs()->setCurrentIndex(0);
    QVERIFY(!convert->isEnabled());
    w.convertCurrentFile();  // called directly: no conversions tab with an error row
    QCOMPARE(w.viewCount(), 2);
}

// What --screenshot waits for: the file read and its statistics done, or none to do (a file without
// tensors starts none), or the file failed. Each settles once, with nothing still running.
void TestMainWindow::settlesWhenNothingIsLeft_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<bool>("readable");
    QTest::newRow("tensors") << example("simple_nn_checkpoint.pth") << true;
    QTest::newRow("no tensors, a pickle naming os.system") << fixture("popped_call.pth") << true;
    for (const char *name : {"candle_config.pt", "tchrs_foo4_2019-12-07.pt"}) {
        const QString corpus = QStringLiteral(CKPT_CORPUS_DIR "/") + QLatin1String(name);
        if (QFileInfo::exists(corpus))
            QTest::newRow(qPrintable(QStringLiteral("no tensors, corpus %1").arg(QLatin1String(name)))) << corpus << true;
    }
    QTest::newRow("unreadable") << fixture("not_a_checkpoint.pth") << false;
}

void TestMainWindow::settlesWhenNothingIsLeft()
{
    QFETCH(QString, file);
    QFETCH(bool, readable);
    MainWindow w;
    w.show();
    DocumentView *view = w.openFile(file);
    int settled = 0;
    bool runningThen = true;
    whenSettled(view, &w, [&] {
        ++settled;
        runningThen = view->statisticsRunning();
    });
    QTRY_COMPARE_WITH_TIMEOUT(settled, 1, 20000);
    QCOMPARE(view->state(), readable ? DocumentView::State::Loaded : DocumentView::State::Failed);
    QVERIFY(!runningThen);
    // Once only; and a view already settled settles at once.
    QTest::qWait(200);
    QCOMPARE(settled, 1);
    int again = 0;
    whenSettled(view, &w, [&] { ++again; });
    QTRY_COMPARE_WITH_TIMEOUT(again, 1, 5000);
}

// A file naming code that Python would run gets its own tab marker (not the unreadable one's), and
// the tab's tooltip says why; a clean file's tab has none.
void TestMainWindow::dangerousFileTabIsMarked()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    DocumentView *clean = w.openFile(fixture("state_dict.pth"));
    DocumentView *dangerous = w.openFile(fixture("os_system.pth"));
    DocumentView *broken = w.openFile(fixture("not_a_checkpoint.pth"));
    QTRY_COMPARE_WITH_TIMEOUT(clean->state(), DocumentView::State::Loaded, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(dangerous->state(), DocumentView::State::Loaded, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(broken->state(), DocumentView::State::Failed, 20000);
    QTabWidget *tabs = w.tabs();
    const int c = tabs->indexOf(clean), d = tabs->indexOf(dangerous), b = tabs->indexOf(broken);
    QVERIFY(tabs->tabIcon(c).isNull());
    QVERIFY(!tabs->tabIcon(d).isNull());
    QVERIFY(!tabs->tabIcon(b).isNull());
    const QImage dangerImage = tabs->tabIcon(d).pixmap(16, 16).toImage();
    QVERIFY(dangerImage != tabs->tabIcon(b).pixmap(16, 16).toImage());
    // The unreadable file has the style's error sign; the dangerous one, which was read, its shield.
    QCOMPARE(tabs->tabIcon(b).pixmap(16, 16).toImage(),
             w.style()->standardIcon(QStyle::SP_MessageBoxCritical).pixmap(16, 16).toImage());
    QCOMPARE(dangerImage, itemicons::danger().pixmap(16, 16).toImage());
    QVERIFY(!dangerous->dangerousGlobals().isEmpty());
    const QString tip = tabs->tabToolTip(d);
    QVERIFY2(tip.startsWith(dangerous->path()), qPrintable(tip));
    for (const QString &g : dangerous->dangerousGlobals())
        QVERIFY2(tip.contains(g), qPrintable(tip));
    QVERIFY2(tip.contains(QStringLiteral("Dangerous")), qPrintable(tip));
    QVERIFY2(tabs->tabToolTip(b).contains(QStringLiteral("Could not be read")), qPrintable(tabs->tabToolTip(b)));
    QCOMPARE(tabs->tabToolTip(c), clean->path());
    tabs->setCurrentIndex(d);
    QTest::qWait(20);
    saveScreenshot(w, QStringLiteral("dangerous-tab.png"));
    dangerous->showView(DocumentView::SecurityTab);
    QTest::qWait(20);
    saveScreenshot(w, QStringLiteral("dangerous-security.png"));
}

void TestMainWindow::sameFileTwiceReusesTab()
{
    MainWindow w;
    DocumentView *a = w.openFile(example("simple_nn_checkpoint.pth"));
    w.openFile(example("simple_nn_inference.pth"));
    QCOMPARE(w.tabs()->currentIndex(), 1);
    DocumentView *again = w.openFile(example("simple_nn_checkpoint.pth"));
    QCOMPARE(again, a);
    QCOMPARE(w.viewCount(), 2);
    QCOMPARE(w.tabs()->currentIndex(), 0);
}

void TestMainWindow::recentFiles()
{
    const QStringList files{
        "state_dict.pth", "training_checkpoint.pth", "inference_package.pth", "full_model.pth",
        "legacy_state_dict.pth", "dtypes.pth", "dtypes_legacy.pth", "views.pth", "views_legacy.pth",
        "cuda_saved.pth", "protocol2.pth", "protocol4.pth",
    };
    {
        MainWindow w;
        for (const QString &f : files) {
            DocumentView *v = w.openFile(QStringLiteral(CKPT_FIXTURES_DIR "/") + f);
            QTRY_COMPARE_WITH_TIMEOUT(v->state(), DocumentView::State::Loaded, 20000);  // in order
        }
        const QStringList recent = w.recentFiles();
        QCOMPARE(recent.size(), MainWindow::kMaxRecentFiles);
        QCOMPARE(QFileInfo(recent.first()).fileName(), QStringLiteral("protocol4.pth"));
        QCOMPARE(QFileInfo(recent.last()).fileName(), QStringLiteral("inference_package.pth"));
    }
    {
        // A new window (a new session) lists them in its menu and on its empty page.
        MainWindow w;
        w.show();
        auto *recentMenu = w.findChild<QMenu *>();
        QVERIFY(recentMenu);
        QMenu *menu = nullptr;
        for (QMenu *m : w.findChildren<QMenu *>())
            if (m->title().remove(QLatin1Char('&')) == QStringLiteral("Open Recent"))
                menu = m;
        QVERIFY(menu);
        QCOMPARE(menu->actions().size(), MainWindow::kMaxRecentFiles + 2);  // files, separator, Clear
        QVERIFY(menu->actions().first()->text().contains(QStringLiteral("protocol4.pth")));
        auto *emptyRecent = w.findChild<QLabel *>(QStringLiteral("emptyRecent"));
        QVERIFY(emptyRecent->isVisible());
        QVERIFY(emptyRecent->text().contains(QStringLiteral("protocol4.pth")));
        saveScreenshot(w, QStringLiteral("empty-with-recent.png"));

        // Opening from the menu.
        menu->actions().first()->trigger();
        QCOMPARE(w.viewCount(), 1);
        QCOMPARE(QFileInfo(w.currentView()->path()).fileName(), QStringLiteral("protocol4.pth"));

        menu->actions().last()->trigger();  // Clear
        QVERIFY(w.recentFiles().isEmpty());
        QCOMPARE(menu->actions().size(), 1);
        QVERIFY(!menu->actions().first()->isEnabled());
    }
}

void TestMainWindow::closeTabs()
{
    MainWindow w;
    w.show();
    w.openFiles({example("simple_nn_checkpoint.pth"), example("simple_nn_full_model.pth")});
    QCOMPARE(w.viewCount(), 2);
    w.closeCurrentTab();
    QCOMPARE(w.viewCount(), 1);
    QCOMPARE(w.windowTitle(), QStringLiteral("Checkpoint Studio \u2014 simple_nn_checkpoint.pth"));
    w.closeTab(0);  // closing while the file may still be loading is fine
    QCOMPARE(w.viewCount(), 0);
    QCOMPARE(w.windowTitle(), QStringLiteral("Checkpoint Studio"));
    QVERIFY(w.findChild<QLabel *>(QStringLiteral("emptyHint"))->isVisible());
    QTest::qWait(200);  // let deleted views' jobs finish in the background without touching anything
}

// A dozen open files: each tab still shows the start of its name (elided at the right, not to
// "s…t"), and the bar scrolls rather than squeezing them.
void TestMainWindow::manyTabsStayReadable()
{
    MainWindow w;
    w.resize(1000, 700);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    const char *names[] = {"predict_package_class_to_idx.pth", "predict_package_idx_to_class.pth", "predict_package_preprocessing.pth",
                           "predict_odd_names_state_dict.pth", "predict_nested_state_dict.pth", "conv_training_state.pth",
                           "conv_torchvision.pth", "conv_dataparallel.pth", "payload_then_garbage.pth", "negative_after_zero.pth",
                           "deflate_declares_huge.pth", "os_system.pth"};
    for (const char *name : names)
        w.openFile(fixture(name));
    w.openFile(fixture(names[0]));  // the first tab current: the bar starts at the left
    QTest::qWait(50);
    auto *tabs = w.findChild<QTabWidget *>(QStringLiteral("tabs"));
    QVERIFY(tabs);
    QCOMPARE(tabs->count(), int(std::size(names)));
    QTabBar *bar = tabs->tabBar();
    QCOMPARE(bar->elideMode(), Qt::ElideRight);
    QVERIFY(bar->usesScrollButtons());
    const QFontMetrics fm(bar->font());
    constexpr int kLeading = 10;
    for (int i = 0; i < tabs->count(); ++i) {
        const QString text = bar->tabText(i);
        QWidget *close = bar->tabButton(i, QTabBar::RightSide);
        const int need = fm.horizontalAdvance(text.left(kLeading) + QChar(0x2026)) + (close ? close->width() : 0);
        QVERIFY2(bar->tabRect(i).width() >= need,
                 qPrintable(QStringLiteral("%1: %2 px for %3 px").arg(text).arg(bar->tabRect(i).width()).arg(need)));
    }
    // They do not all fit in 1000 px: the scroll buttons show.
    bool scrolls = false;
    for (auto *b : bar->findChildren<QToolButton *>())
        scrolls = scrolls || (b->isVisible() && b->objectName().startsWith(QLatin1String("Scroll")));  // ScrollLeftButton, ScrollRightButton
    QVERIFY(scrolls);
    saveScreenshot(w, QStringLiteral("many-tabs.png"));
    // Let the loads and their statistics end: a process leaving while LibTorch is still being
    // loaded in the background crashes in its static initialisers.
    for (int i = 0; i < w.viewCount(); ++i)
        if (DocumentView *v = w.viewAt(i))
            QTRY_VERIFY_WITH_TIMEOUT(!v->isLoading() && !v->statisticsRunning(), 30000);
}

// One very long file name does not take half the tab bar: its tab is capped (the name elided,
// the whole path in the tooltip) and the tabs beside it keep their full names.
void TestMainWindow::longNameTabIsCapped()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString longName = dir.filePath(
        QStringLiteral("a_really_long_experiment_name_resnet50_finetune_lr0.001_bs256_epoch120_seed42_final_best_v2_trained_model.pth"));
    QVERIFY(QFile::copy(fixture("state_dict.pth"), longName));
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    DocumentView *a = w.openFile(fixture("training_checkpoint.pth"));
    DocumentView *b = w.openFile(longName);
    QTRY_COMPARE_WITH_TIMEOUT(a->state(), DocumentView::State::Loaded, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(b->state(), DocumentView::State::Loaded, 20000);
    QTabBar *bar = w.tabs()->tabBar();
    const int i = w.tabs()->indexOf(b);
    const QFontMetrics fm(bar->font());
    const int cap = DocumentTabWidget::maxTextWidth(fm) + 80;  // name, close button, margins
    QVERIFY2(bar->tabRect(i).width() <= cap, qPrintable(QStringLiteral("%1 px > %2 px").arg(bar->tabRect(i).width()).arg(cap)));
    QVERIFY(bar->tabRect(i).width() < w.width() / 3);
    QVERIFY(bar->tabToolTip(i).startsWith(b->path()));
    // The short name beside it is shown whole.
    const int j = w.tabs()->indexOf(a);
    QVERIFY(bar->tabRect(j).width() >= fm.horizontalAdvance(bar->tabText(j)));
    saveScreenshot(w, QStringLiteral("long-name-tab.png"));
    QTRY_VERIFY_WITH_TIMEOUT(!a->statisticsRunning() && !b->statisticsRunning(), 30000);
}

// The Predict pane's device and Run button never scroll away with its settings, and its results
// table and the file's header line fit a small window without hiding anything sideways.
void TestMainWindow::predictRunIsAlwaysInView_data()
{
    QTest::addColumn<QSize>("size");
    QTest::newRow("1280x800") << QSize(1280, 800);
    QTest::newRow("1024x700") << QSize(1024, 700);
}

void TestMainWindow::predictRunIsAlwaysInView()
{
    QFETCH(QSize, size);
    MainWindow w;
    w.resize(size);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    DocumentView *view = w.openFile(fixture("predict_cnn_package.pth"));
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    view->showView(DocumentView::PredictTab);
    QTest::qWait(50);
    PredictionView *predict = view->predictionView();
    for (QWidget *widget : {static_cast<QWidget *>(predict->runButton()), static_cast<QWidget *>(predict->deviceBox())}) {
        QVERIFY(widget->isVisible());
        // Whole, not clipped by a scroll area, and inside the window.
        QCOMPARE(widget->visibleRegion().boundingRect(), widget->rect());
        const QRect inWindow(widget->mapTo(&w, QPoint(0, 0)), widget->size());
        QVERIFY2(w.rect().contains(inWindow), qPrintable(QStringLiteral("%1,%2 %3x%4")
                                                             .arg(inWindow.x()).arg(inWindow.y())
                                                             .arg(inWindow.width()).arg(inWindow.height())));
        for (QWidget *p = widget->parentWidget(); p != predict; p = p->parentWidget())
            QVERIFY2(!qobject_cast<QScrollArea *>(p), "scrolls with the settings");
    }
    // Every results column is within the table's width: no horizontal scrolling to see Top k.
    QTableWidget *results = predict->resultsTable();
    QVERIFY2(results->horizontalHeader()->length() <= results->viewport()->width(),
             qPrintable(QStringLiteral("%1 px of columns in %2 px")
                            .arg(results->horizontalHeader()->length())
                            .arg(results->viewport()->width())));
    // The header line under the file name wraps rather than losing its end ("read in …").
    auto *details = view->findChild<QLabel *>(QStringLiteral("details"));
    QVERIFY(details);
    const int needed = details->fontMetrics().horizontalAdvance(details->text());
    if (needed > details->width())
        QVERIFY2(details->height() >= 2 * details->fontMetrics().lineSpacing(),
                 qPrintable(QStringLiteral("%1 px of text in %2 px, %3 px high")
                                .arg(needed).arg(details->width()).arg(details->height())));
    saveScreenshot(w, QStringLiteral("predict-%1x%2.png").arg(size.width()).arg(size.height()));
    QTRY_VERIFY_WITH_TIMEOUT(!view->statisticsRunning(), 30000);
}

// At the default size the tensor table gets most of the window: a dozen rows or more (about 8
// before), and the statistics columns through zeros on screen once they are computed.
void TestMainWindow::tensorTableHasTheRoom()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    DocumentView *view = w.openFile(fixture("conv_lightning.ckpt"));
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    QTRY_VERIFY_WITH_TIMEOUT(!view->statisticsRunning(), 30000);
    QTest::qWait(50);
    saveScreenshot(w, QStringLiteral("tensors-default.png"));
    QTableView *table = view->tableView();
    const int rows = table->viewport()->height() / table->verticalHeader()->defaultSectionSize();
    QVERIFY2(rows >= 12, qPrintable(QStringLiteral("%1 rows").arg(rows)));
    const int zeros = TensorTableModel::ZeroFractionColumn;
    QVERIFY2(table->columnViewportPosition(zeros) + table->columnWidth(zeros) <= table->viewport()->width(),
             qPrintable(QStringLiteral("zeros column ends at %1 px of %2")
                            .arg(table->columnViewportPosition(zeros) + table->columnWidth(zeros))
                            .arg(table->viewport()->width())));
    w.setTheme(MainWindow::Theme::Dark);  // the histogram in the dark theme's colours
    QTest::qWait(50);
    saveScreenshot(w, QStringLiteral("tensors-dark.png"));
    w.setTheme(MainWindow::Theme::System);
}

// A compare tab of two long names shows both (each elided in its middle), never only the first.
void TestMainWindow::compareTabNamesBothFiles()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString first = dir.filePath(QStringLiteral("a_really_long_experiment_name_resnet50_finetune_lr0.001_final.pth"));
    const QString second = dir.filePath(QStringLiteral("checkpoint2.pth"));
    QVERIFY(QFile::copy(fixture("compare/base.pth"), first));
    QVERIFY(QFile::copy(fixture("compare/finetuned.pth"), second));
    MainWindow w;
    w.resize(1024, 700);
    w.show();
    CompareView *compare = w.compareFiles(first, second);
    const int i = w.tabs()->indexOf(compare);
    const QString title = w.tabs()->tabText(i);
    QVERIFY2(title.contains(QStringLiteral(" \u2194 checkpoint2.pth")), qPrintable(title));
    QVERIFY2(title.startsWith(QStringLiteral("a_really")) && title.contains(QStringLiteral("final.pth \u2194")),
             qPrintable(title));
    QVERIFY(w.tabs()->tabToolTip(i).contains(first) && w.tabs()->tabToolTip(i).contains(second));
    QCOMPARE(w.tabs()->tabIcon(i).pixmap(16, 16).toImage(), itemicons::compare().pixmap(16, 16).toImage());
    // The whole title fits the capped tab: nothing of the second name is cut off.
    QTabBar *bar = w.tabs()->tabBar();
    QVERIFY(bar->tabRect(i).width() >= QFontMetrics(bar->font()).horizontalAdvance(title));
    QSignalSpy compared(compare, &CompareView::finished);
    QVERIFY(compared.wait(30000));
    QVERIFY(w.windowTitle().contains(QFileInfo(first).fileName()));
    QTest::qWait(20);
    saveScreenshot(w, QStringLiteral("compare-tab-1024.png"));
}

// Every fixture and example the reader opens (whatever its name: .ptl mobile archives, shard
// indexes, .ckpt, .safetensors, ...) is offered by the Open dialog's first filter.
void TestMainWindow::openDialogOffersWhatIsRead()
{
    const QString filter = MainWindow::checkpointFileFilter().section(QStringLiteral(";;"), 0, 0);
    const QString inside = filter.section(QLatin1Char('('), 1).section(QLatin1Char(')'), 0, 0);
    QList<QRegularExpression> patterns;
    for (const QString &glob : inside.split(QLatin1Char(' '), Qt::SkipEmptyParts))
        patterns << QRegularExpression(QRegularExpression::wildcardToRegularExpression(glob),
                                       QRegularExpression::CaseInsensitiveOption);
    QVERIFY(!patterns.isEmpty());
    int read = 0;
    QStringList missing;
    for (const QString &root : {QStringLiteral(CKPT_FIXTURES_DIR), QStringLiteral(CKPT_EXAMPLES_DIR)}) {
        QDirIterator it(root, QDir::Files, QDirIterator::Subdirectories);
        while (it.hasNext()) {
            const QString path = it.next();
            try {
                (void)readDocument(path.toStdString());
            } catch (const std::exception &) {
                continue;  // not read: the dialog need not offer it
            }
            ++read;
            const QString name = QFileInfo(path).fileName();
            if (std::none_of(patterns.begin(), patterns.end(), [&](const QRegularExpression &re) { return re.match(name).hasMatch(); }))
                missing << name;
        }
    }
    QVERIFY(read > 20);
    QVERIFY2(missing.isEmpty(), qPrintable(missing.join(QStringLiteral(", "))));
}

// File → Open starts in the folder of the last file opened, however it was opened (here as the
// command line and a drop open them, no dialog), never in the process's working folder; a save
// dialog (Export, a conversion's output folder) in the last folder written to, else the folder of
// the file being exported. A remembered folder that is gone is passed over.
void TestMainWindow::dialogsStartWhereTheUserWorks()
{
    QTemporaryDir work;
    QVERIFY(work.isValid());
    const QString runs = work.filePath(QStringLiteral("runs/a"));
    QVERIFY(QDir().mkpath(runs));
    const QString file = QDir(runs).filePath(QStringLiteral("model.pth"));
    QVERIFY(QFile::copy(example("simple_nn_checkpoint.pth"), file));
    const QString cwd = QDir::currentPath();
    QVERIFY(QDir::setCurrent(work.path()));  // the working folder, which no dialog should start in
    QCOMPARE(dialogfolders::openStart(), QDir::homePath());
    QCOMPARE(dialogfolders::outputStart(file), QFileInfo(runs).absoluteFilePath());

    {
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        DocumentView *view = w.openFile(file);
        QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    }
    QCOMPARE(dialogfolders::openStart(), QFileInfo(runs).absoluteFilePath());
    // A checkpoint folder opened: Open starts in the folder that holds it, where it can be picked again.
    const QString ckptFolder = work.filePath(QStringLiteral("out/checkpoint-500"));
    QVERIFY(QDir().mkpath(ckptFolder));
    dialogfolders::rememberOpened(ckptFolder + QLatin1Char('/'));
    QCOMPARE(dialogfolders::openStart(), QFileInfo(work.filePath(QStringLiteral("out"))).absoluteFilePath());

    const QString exports = work.filePath(QStringLiteral("exports"));
    QVERIFY(QDir().mkpath(exports));
    dialogfolders::rememberOutput(exports);
    QCOMPARE(dialogfolders::outputStart(file), QFileInfo(exports).absoluteFilePath());
    // Gone: the file's own folder again; Open's remembered folder gone: home.
    QVERIFY(QDir(exports).removeRecursively());
    QCOMPARE(dialogfolders::outputStart(file), QFileInfo(runs).absoluteFilePath());
    QVERIFY(QDir(work.filePath(QStringLiteral("out"))).removeRecursively());
    QCOMPARE(dialogfolders::openStart(), QDir::homePath());
    QVERIFY(QDir::setCurrent(cwd));
}

void TestMainWindow::menus()
{
    MainWindow w;
    QVERIFY(findMenu(w, QStringLiteral("File")));
    QVERIFY(findMenu(w, QStringLiteral("Help")));
    QStringList shortcuts;
    for (QAction *a : findMenu(w, QStringLiteral("File"))->menu()->actions())
        if (!a->shortcut().isEmpty())
            shortcuts << a->shortcut().toString();
    QCOMPARE(shortcuts, QStringList({"Ctrl+O", "Ctrl+Shift+O", "Ctrl+D", "Ctrl+W", "Ctrl+Q"}));  // Ctrl+Shift+O: Open Folder
}

// Alt+1 … Alt+6 and Ctrl+F are in the View menu, and they (and Ctrl+Enter in Predict) work with
// the keyboard anywhere in the window, on the current document only.
void TestMainWindow::viewKeysWorkAnywhereInTheWindow()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    w.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&w));
    // Before a file is open the entries are there, disabled.
    QMenu *viewMenu = findMenu(w, QStringLiteral("View"))->menu();
    auto viewShortcuts = [viewMenu] {
        QStringList out;
        for (QAction *a : viewMenu->actions())
            if (!a->shortcut().isEmpty())
                out << a->shortcut().toString() + (a->isEnabled() ? QString() : QStringLiteral(" (off)"));
        return out;
    };
    const QStringList off{"Ctrl+Shift+C", "Alt+1 (off)", "Alt+2 (off)", "Alt+3 (off)", "Alt+4 (off)", "Alt+5 (off)",
                          "Alt+6 (off)", QKeySequence(QKeySequence::Find).toString() + " (off)"};
    QCOMPARE(viewShortcuts(), off);

    DocumentView *other = w.openFile(example("simple_nn_inference.pth"));
    QTRY_COMPARE_WITH_TIMEOUT(other->state(), DocumentView::State::Loaded, 20000);
    DocumentView *view = w.openFile(example("simple_nn_checkpoint.pth"));
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    QCOMPARE(viewShortcuts(), QStringList({"Ctrl+Shift+C", "Alt+1", "Alt+2", "Alt+3", "Alt+4", "Alt+5", "Alt+6",
                                           QKeySequence(QKeySequence::Find).toString()}));
    for (QAction *a : view->viewActions())
        QVERIFY(viewMenu->actions().contains(a));

    // The keyboard in the structure tree, outside the tabs on the right.
    view->viewTabs()->setCurrentIndex(DocumentView::TensorsTab);
    other->viewTabs()->setCurrentIndex(DocumentView::TensorsTab);
    view->treeView()->setFocus();
    QTRY_VERIFY(view->treeView()->hasFocus());
    QTest::keyClick(view->treeView(), Qt::Key_6, Qt::AltModifier);
    QCOMPARE(view->viewTabs()->currentIndex(), int(DocumentView::PredictTab));
    QCOMPARE(other->viewTabs()->currentIndex(), int(DocumentView::TensorsTab));  // only the current document
    QVERIFY(view->predictionView()->isAncestorOf(QApplication::focusWidget()));  // the keyboard went with it

    // Ctrl+Enter runs with the keyboard back in the tree.
    view->treeView()->setFocus();
    QTRY_VERIFY(view->treeView()->hasFocus());
    QSignalSpy ran(view->predictionView(), &PredictionView::finished);
    QTest::keyClick(view->treeView(), Qt::Key_Return, Qt::ControlModifier);
    QVERIFY(!ran.isEmpty() || ran.wait(60000));

    // Ctrl+F from the Predict tab: the structure filter.
    QTest::keySequence(QApplication::focusWidget(), QKeySequence::Find);
    QTRY_VERIFY(view->treeFilter()->hasFocus());
    QTest::keyClick(view->treeFilter(), Qt::Key_1, Qt::AltModifier);
    QCOMPARE(view->viewTabs()->currentIndex(), int(DocumentView::TensorsTab));
}

void TestMainWindow::copyPutsRowsOnClipboard()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    DocumentView *view = w.openFiles({example("simple_nn_checkpoint.pth")});
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    view->tableView()->selectRow(1);  // fc1.bias
    view->tableView()->setFocus();
    QGuiApplication::clipboard()->clear();
    QAction *copy = w.findChild<QAction *>(QStringLiteral("copyAction"));
    QVERIFY(copy);
    QCOMPARE(copy->shortcut(), QKeySequence(QKeySequence::Copy));
    copy->trigger();
    const QStringList cells = QGuiApplication::clipboard()->text().split(QLatin1Char('\t'));
    QVERIFY2(cells.size() >= 7, qPrintable(QGuiApplication::clipboard()->text()));
    QCOMPARE(cells.value(0), QStringLiteral("fc1.bias"));
    QCOMPARE(cells.value(1), QStringLiteral("float32"));
    QCOMPARE(cells.value(2), QStringLiteral("[50]"));
}

// Edit → Copy copies from whichever list, table or tree has the keyboard: the cells the user
// selected, as they are shown, rows in the order shown.
void TestMainWindow::copyFollowsFocus()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    w.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&w));
    DocumentView *view = w.openFile(fixture("training_checkpoint.pth"));
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    QAction *copy = w.findChild<QAction *>(QStringLiteral("copyAction"));

    // The values grid of fc1.weight ([50, 10]): a 2x2 block selected bottom-right first comes out
    // top-left first, and holds the numbers torch saved.
    auto *grid = view->findChild<QTableView *>(QStringLiteral("valuesGrid"));
    QVERIFY(grid);
    QTRY_VERIFY_WITH_TIMEOUT(grid->model() && grid->model()->rowCount() >= 2 && grid->model()->columnCount() >= 2, 20000);
    grid->setFocus(Qt::OtherFocusReason);
    QTRY_VERIFY(grid->hasFocus());
    const QAbstractItemModel *gm = grid->model();
    QTRY_VERIFY_WITH_TIMEOUT(gm->index(1, 1).data().toString() != QStringLiteral("\u2026"), 20000);  // read in the background
    grid->selectionModel()->select(gm->index(1, 1), QItemSelectionModel::ClearAndSelect);
    grid->selectionModel()->select(gm->index(1, 0), QItemSelectionModel::Select);
    grid->selectionModel()->select(gm->index(0, 1), QItemSelectionModel::Select);
    grid->selectionModel()->select(gm->index(0, 0), QItemSelectionModel::Select);
    QGuiApplication::clipboard()->clear();
    copy->trigger();
    const QStringList lines = QGuiApplication::clipboard()->text().split(QLatin1Char('\n'));
    QCOMPARE(lines.size(), 2);
    const QJsonArray values = test::expectedListing()
                                  .value("training_checkpoint.pth").toObject()
                                  .value("tensors").toArray().at(0).toObject().value("values").toArray();
    const int columns = 10;  // fc1.weight is [50, 10], row-major
    for (int r = 0; r < 2; ++r) {
        const QStringList cells = lines[r].split(QLatin1Char('\t'));
        QCOMPARE(cells.size(), 2);
        for (int c = 0; c < 2; ++c) {
            // Every digit the float32 holds, not the six shown: it reads back as torch's value.
            QCOMPARE(cells[c], gm->index(r, c).data(CopyTextRole).toString());
            QCOMPARE(static_cast<float>(cells[c].toDouble()), static_cast<float>(values.at(r * columns + c).toDouble()));
            const double saved = values.at(r * columns + c).toDouble();
            QVERIFY2(std::abs(cells[c].toDouble() - saved) <= 1e-6 * std::max(1.0, std::abs(saved)),
                     qPrintable(cells[c] + QStringLiteral(" vs torch's %1").arg(saved)));
        }
    }
    // With the keys: Ctrl+C reaches the window's Copy (the view's own copies only its current cell).
    grid->selectionModel()->setCurrentIndex(gm->index(2, 3), QItemSelectionModel::ClearAndSelect);
    grid->selectionModel()->select(gm->index(2, 4), QItemSelectionModel::Select);
    QGuiApplication::clipboard()->clear();
    QTest::keySequence(grid, QKeySequence::Copy);
    QCOMPARE(QGuiApplication::clipboard()->text(),
             gm->index(2, 3).data(CopyTextRole).toString() + QLatin1Char('\t') +
                 gm->index(2, 4).data(CopyTextRole).toString());
    // Nothing selected: the current cell.
    grid->selectionModel()->clearSelection();
    grid->selectionModel()->setCurrentIndex(gm->index(3, 2), QItemSelectionModel::NoUpdate);
    copy->trigger();
    QCOMPARE(QGuiApplication::clipboard()->text(), gm->index(3, 2).data(CopyTextRole).toString());

    // The structure tree: the selected row as shown.
    QTreeView *tree = view->treeView();
    const QModelIndex modelDict = tree->model()->index(1, 0);
    const QModelIndex fc1 = tree->model()->index(0, 0, modelDict);
    QCOMPARE(copyRow(w, tree, fc1), shownRow(tree, fc1));
    QVERIFY(copyRow(w, tree, fc1).startsWith(QStringLiteral("fc1.weight\tTensor")));

    // Metadata, Security and Optimizer tabs: their own rows, not a tensor's.
    view->viewTabs()->setCurrentIndex(DocumentView::MetadataTab);
    auto *meta = view->findChild<QTreeView *>(QStringLiteral("metadataTree"));
    QVERIFY(meta && meta->model()->rowCount() > 0);
    QCOMPARE(copyRow(w, meta, meta->model()->index(0, 0)), shownRow(meta, meta->model()->index(0, 0)));
    view->viewTabs()->setCurrentIndex(DocumentView::SecurityTab);
    auto *security = view->findChild<QTableView *>(QStringLiteral("securityGlobals"));
    QVERIFY(security && security->model()->rowCount() > 0);
    const QModelIndex lastGlobal = security->model()->index(security->model()->rowCount() - 1, 0);
    QCOMPARE(copyRow(w, security, lastGlobal), shownRow(security, lastGlobal));
    view->viewTabs()->setCurrentIndex(DocumentView::OptimizerTab);
    auto *groups = view->findChild<QTableView *>(QStringLiteral("paramGroups"));
    QVERIFY(groups && groups->model()->rowCount() > 0);
    QCOMPARE(copyRow(w, groups, groups->model()->index(0, 1)), shownRow(groups, groups->model()->index(0, 1)));

    // A text field with selected text copies that text.
    view->viewTabs()->setCurrentIndex(DocumentView::TensorsTab);
    view->tableFilter()->setText(QStringLiteral("fc1"));
    view->tableFilter()->setFocus(Qt::OtherFocusReason);
    QTRY_VERIFY(view->tableFilter()->hasFocus());
    view->tableFilter()->selectAll();
    copy->trigger();
    QCOMPARE(QGuiApplication::clipboard()->text(), QStringLiteral("fc1"));
    view->tableFilter()->clear();

    // A comparison tab has no document: its tree is copied all the same.
    CompareView *compare = w.compareFiles(fixture("training_checkpoint.pth"), fixture("state_dict.pth"));
    QSignalSpy compared(compare, &CompareView::finished);
    QVERIFY(compared.wait(60000));
    auto *compareTree = compare->findChild<QTreeView *>(QStringLiteral("compareTree"));
    QVERIFY(compareTree);
    QTRY_VERIFY(compareTree->model()->rowCount() > 0);
    const QModelIndex first = compareTree->model()->index(0, 0);
    const QString copied = copyRow(w, compareTree, first);
    QCOMPARE(copied, shownRow(compareTree, first));
    QVERIFY(!copied.isEmpty());
}

// A right-click on a list, table or tree offers Copy, and Copy name / Copy value where the row has them.
void TestMainWindow::contextMenuCopies()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    w.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&w));
    DocumentView *view = w.openFile(fixture("training_checkpoint.pth"));
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    QTreeView *tree = view->treeView();
    const QModelIndex fc1 = tree->model()->index(0, 0, tree->model()->index(1, 0));
    tree->scrollTo(fc1);
    tree->selectionModel()->setCurrentIndex(fc1, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    auto openMenu = [](QAbstractItemView *v, const QModelIndex &index) -> QMenu * {
        const QPoint at = v->visualRect(index).center();
        QContextMenuEvent event(QContextMenuEvent::Mouse, at, v->viewport()->mapToGlobal(at));
        QCoreApplication::sendEvent(v->viewport(), &event);
        return qobject_cast<QMenu *>(QApplication::activePopupWidget());
    };
    QMenu *menu = openMenu(tree, fc1);
    QVERIFY(menu);
    QStringList names;
    for (QAction *a : menu->actions())
        names << a->objectName();
    QCOMPARE(names, QStringList({"contextCopy", "contextCopyName", "contextCopyValue"}));
    auto trigger = [](QMenu *m, const char *name) {
        QGuiApplication::clipboard()->clear();
        m->findChild<QAction *>(QLatin1String(name))->trigger();
        m->close();
        return QGuiApplication::clipboard()->text();
    };
    QCOMPARE(trigger(menu, "contextCopyName"), QStringLiteral("fc1.weight"));
    menu = openMenu(tree, fc1);
    QVERIFY(menu);
    // Value as the tree shows it: torch's shape, dtype and device of fc1.weight.
    const QJsonObject saved = test::expectedListing()
                                  .value("training_checkpoint.pth").toObject()
                                  .value("tensors").toArray().at(0).toObject();
    QStringList shape;
    for (const QJsonValue &d : saved.value("shape").toArray())
        shape << QString::number(d.toInt());
    QCOMPARE(trigger(menu, "contextCopyValue"), QStringLiteral("[%1] %2 %3")
                                                     .arg(shape.join(QStringLiteral(", ")), saved.value("dtype").toString(),
                                                          saved.value("device_saved").toString()));
    menu = openMenu(tree, fc1);
    QVERIFY(menu);
    QCOMPARE(trigger(menu, "contextCopy"), shownRow(tree, fc1));

    // The values grid has neither names nor a Value column: Copy alone.
    auto *grid = view->findChild<QTableView *>(QStringLiteral("valuesGrid"));
    QTRY_VERIFY_WITH_TIMEOUT(grid->model() && grid->model()->rowCount() > 0, 20000);
    QTRY_VERIFY_WITH_TIMEOUT(grid->model()->index(0, 0).data().toString() != QStringLiteral("\u2026"), 20000);
    grid->selectionModel()->setCurrentIndex(grid->model()->index(0, 0), QItemSelectionModel::ClearAndSelect);
    menu = openMenu(grid, grid->model()->index(0, 0));
    QVERIFY(menu);
    QCOMPARE(menu->actions().size(), 1);
    QCOMPARE(trigger(menu, "contextCopy"), grid->model()->index(0, 0).data(CopyTextRole).toString());
}

// The Recent menu tells two files of one name apart by their folders; every entry's tooltip is its path.
void TestMainWindow::recentMenuTellsSameNamesApart()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QStringList paths;
    for (const char *run : {"run-a", "run-b"}) {
        QVERIFY(QDir(dir.path()).mkpath(QLatin1String(run)));
        paths << dir.filePath(QStringLiteral("%1/best.pth").arg(QLatin1String(run)));
        QVERIFY(QFile::copy(fixture("state_dict.pth"), paths.last()));
    }
    paths << dir.filePath(QStringLiteral("a&b.pth"));
    QVERIFY(QFile::copy(fixture("state_dict.pth"), paths.last()));
    MainWindow w;
    w.clearRecentFiles();
    for (const QString &p : std::as_const(paths)) {
        DocumentView *v = w.openFile(p);
        QTRY_COMPARE_WITH_TIMEOUT(v->state(), DocumentView::State::Loaded, 20000);
    }
    QMenu *menu = nullptr;
    for (QMenu *m : w.findChildren<QMenu *>())
        if (m->title().remove(QLatin1Char('&')) == QStringLiteral("Open Recent"))
            menu = m;
    QVERIFY(menu);
    QVERIFY(menu->toolTipsVisible());
    const QList<QAction *> entries = menu->actions().mid(0, 3);
    // Most recent first: a&b.pth (its '&' doubled, so that it is shown, not taken as an accelerator).
    QVERIFY2(entries[0]->text().endsWith(QStringLiteral("a&&b.pth")), qPrintable(entries[0]->text()));
    QVERIFY2(entries[1]->text().contains(QStringLiteral("best.pth")) && entries[1]->text().contains(QStringLiteral("run-b")),
             qPrintable(entries[1]->text()));
    QVERIFY2(entries[2]->text().contains(QStringLiteral("best.pth")) && entries[2]->text().contains(QStringLiteral("run-a")),
             qPrintable(entries[2]->text()));
    QCOMPARE(entries[1]->toolTip(), QFileInfo(paths[1]).absoluteFilePath());
    w.clearRecentFiles();
}

namespace {

// Disabled text is set apart from enabled text: a colour of its own, with less contrast to its
// background than enabled text has.
void disabledLooksDisabled(const QPalette &p)
{
    const std::pair<QPalette::ColorRole, QPalette::ColorRole> pairs[] = {
        {QPalette::Text, QPalette::Base}, {QPalette::WindowText, QPalette::Window},
        {QPalette::ButtonText, QPalette::Button}};
    for (const auto &[fg, bg] : pairs) {
        const auto contrast = [&p, fg = fg, bg = bg](QPalette::ColorGroup g) {
            return std::abs(p.color(g, fg).lightness() - p.color(g, bg).lightness());
        };
        QVERIFY2(p.color(QPalette::Disabled, fg) != p.color(QPalette::Active, fg),
                 qPrintable(QStringLiteral("role %1").arg(int(fg))));
        QVERIFY2(contrast(QPalette::Disabled) < contrast(QPalette::Active),
                 qPrintable(QStringLiteral("role %1: %2 vs %3").arg(int(fg)).arg(contrast(QPalette::Disabled)).arg(contrast(QPalette::Active))));
    }
}

} // namespace

void TestMainWindow::themeIsAppliedAndRemembered()
{
    {
        MainWindow w;
        w.setTheme(MainWindow::Theme::Dark);
        QVERIFY(QApplication::palette().color(QPalette::Window).lightness() < 100);
        QVERIFY(QApplication::palette().color(QPalette::WindowText).lightness() > 200);
        disabledLooksDisabled(QApplication::palette());
        QVERIFY(!QTest::currentTestFailed());
    }
    {
        MainWindow w;  // a new window starts with the theme chosen last
        QCOMPARE(w.theme(), MainWindow::Theme::Dark);
        QVERIFY(w.findChild<QAction *>(QStringLiteral("theme2"))->isChecked());
        w.setTheme(MainWindow::Theme::Light);
        QVERIFY(QApplication::palette().color(QPalette::Window).lightness() > 200);
        disabledLooksDisabled(QApplication::palette());
        QVERIFY(!QTest::currentTestFailed());
        w.setTheme(MainWindow::Theme::System);
    }
}

void TestMainWindow::ctrlDropCompares()
{
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    w.openFiles({fixture("compare/base.pth")});
    QTRY_COMPARE_WITH_TIMEOUT(w.viewAt(0)->state(), DocumentView::State::Loaded, 20000);
    // One file dropped with Ctrl: compared with the open one, in a new tab.
    QVERIFY(dropUrls(w, {QUrl::fromLocalFile(fixture("compare/finetuned.pth"))}, Qt::ControlModifier));
    QCOMPARE(w.viewCount(), 2);
    auto *compare = qobject_cast<CompareView *>(w.tabs()->currentWidget());
    QVERIFY(compare);
    QVERIFY(!w.currentView());
    QCOMPARE(QFileInfo(compare->fileA()).fileName(), QStringLiteral("base.pth"));
    QCOMPARE(QFileInfo(compare->fileB()).fileName(), QStringLiteral("finetuned.pth"));
    QSignalSpy compared(compare, &CompareView::finished);
    QVERIFY(compared.wait(30000));
    QVERIFY(compare->summary()->text().contains(QStringLiteral("Weights differ")));
    QVERIFY(w.windowTitle().contains(QStringLiteral("base.pth")));
    // The tab names both files and has an icon of its own (not a document's).
    const QString title = w.tabs()->tabText(w.tabs()->currentIndex());
    QCOMPARE(title, QStringLiteral("base.pth \u2194 finetuned.pth"));
    QVERIFY(!w.tabs()->tabIcon(w.tabs()->currentIndex()).isNull());
    QVERIFY(w.tabs()->tabToolTip(w.tabs()->currentIndex()).contains(compare->fileB()));
    QVERIFY(compare->selectPath(QStringLiteral("head.weight")));
    QSignalSpy histograms(compare, &CompareView::histogramsReady);
    QVERIFY(histograms.wait(30000));
    QTest::qWait(50);
    saveScreenshot(w, QStringLiteral("compare.png"));

    // Several files with Ctrl: a training run. Opening a file still finds its document tab.
    QStringList run;
    for (const char *name : {"ckpt_a.pth", "ckpt_b.pth", "ckpt_c.pth", "ckpt_d.pth"})
        run << fixture((std::string("compare/run/") + name).c_str());
    QList<QUrl> urls;
    for (const auto &f : run)
        urls << QUrl::fromLocalFile(f);
    QVERIFY(dropUrls(w, urls, Qt::ControlModifier));
    auto *series = qobject_cast<SeriesView *>(w.tabs()->currentWidget());
    QVERIFY(series);
    QSignalSpy ran(series, &SeriesView::finished);
    QVERIFY(ran.wait(30000));
    QCOMPARE(series->model()->columnCount(), 5);
    QTest::qWait(50);
    saveScreenshot(w, QStringLiteral("series.png"));
    QCOMPARE(w.openFile(fixture("compare/base.pth")), w.viewAt(0));
    QCOMPARE(w.tabs()->currentIndex(), 0);
    // Closing the compare tabs leaves the document.
    w.closeTab(2);
    w.closeTab(1);
    QCOMPARE(w.viewCount(), 1);
}

// View → Conversions… shows one conversions tab, reused; File → Convert This File… queues the
// open file there; the pane's Open opens the output in a tab of its own.
void TestMainWindow::conversionsTab()
{
    MainWindow w;
    w.show();
    auto *conversions = w.findChild<QAction *>(QStringLiteral("conversionsAction"));
    QVERIFY(conversions);
    QCOMPARE(conversions->shortcut().toString(), QStringLiteral("Ctrl+Shift+C"));
    conversions->trigger();
    ConversionView *pane = w.findChild<ConversionView *>();
    QVERIFY(pane);
    QCOMPARE(w.viewCount(), 1);
    QCOMPARE(w.viewAt(0), nullptr);  // not a document
    QVERIFY(!w.currentView());

    const QString file = QFileInfo(example("simple_nn_checkpoint.pth")).absoluteFilePath();
    DocumentView *doc = w.openFile(file);
    QCOMPARE(w.viewCount(), 2);
    w.findChild<QAction *>(QStringLiteral("convertFileAction"))->trigger();
    QCOMPARE(w.tabs()->currentWidget(), pane);  // the same pane, shown again
    QCOMPARE(w.viewCount(), 2);
    QCOMPARE(pane->queueModel()->rowCount(), 1);
    QCOMPARE(pane->queueModel()->index(0, 0).data(ConversionQueueModel::PathRole).toString(), file);
    QTRY_VERIFY_WITH_TIMEOUT(pane->queueModel()->index(0, 0).data(ConversionQueueModel::StatusRole).toInt() !=
                                 static_cast<int>(ConversionQueueItem::Status::Planning),
                             20000);

    Q_EMIT pane->openRequested(file);  // as the pane's Open does for a finished output
    QCOMPARE(w.currentView(), doc);
    QCOMPARE(w.viewCount(), 2);
}

// The conversions tab with a finished, verified queue and the plan of its first file, for people
// to look at (docs/screenshots/conversion.png is this one, taken under xvfb).
void TestMainWindow::conversionsScreenshot()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    ConversionView *pane = w.showConversions();
    auto *outDir = pane->findChild<QLineEdit *>(QStringLiteral("outDir"));
    QVERIFY(outDir);
    outDir->setFocus();
    QTest::keyClicks(outDir, out.path());
    pane->addFiles({fixture("inference_package.pth")}, ConvertTarget::Safetensors);
    pane->addFiles({fixture("state_dict.pth")}, ConvertTarget::Checkpoint);
    pane->addFiles({fixture("full_model.pth")}, ConvertTarget::FullModel);
    pane->addFiles({fixture("training_checkpoint.pth")}, ConvertTarget::Inference);
    pane->addFiles({fixture("state_dict.pth")}, ConvertTarget::FullModel);  // built from weights
    pane->addFiles({fixture("predict_cnn_package.pth")}, PaneTarget::TorchScript);
    pane->addFiles({fixture("gated_state_dict.pth")}, PaneTarget::TorchScript);  // architecture from a file
    auto status = [pane](int row) {
        return static_cast<ConversionQueueItem::Status>(
            pane->queueModel()->index(row, 0).data(ConversionQueueModel::StatusRole).toInt());
    };
    for (int r = 0; r < 7; ++r)
        QTRY_VERIFY_WITH_TIMEOUT(status(r) != ConversionQueueItem::Status::Planning, 20000);
    // The weights alone do not say their architecture: a TorchScript file of the model gives it.
    auto *archFile = pane->findChild<QLineEdit *>(QStringLiteral("architectureScript"));
    QVERIFY(archFile);
    archFile->setFocus();
    QTest::keyClicks(archFile, fixture("gated_arch.pt"));
    QTRY_COMPARE_WITH_TIMEOUT(status(6), ConversionQueueItem::Status::Ready, 20000);
    pane->selectRow(3);
    // The last file: float16, class names typed in.
    auto *dtype = pane->findChild<QComboBox *>(QStringLiteral("dtype"));
    dtype->setCurrentIndex(dtype->findData(QStringLiteral("float16")));
    auto *names = pane->findChild<QLineEdit *>(QStringLiteral("classNames"));
    names->setFocus();
    QTest::keyClicks(names, QStringLiteral("cat, dog"));
    QTRY_COMPARE_WITH_TIMEOUT(status(3), ConversionQueueItem::Status::Ready, 20000);
    QSignalSpy done(pane, &ConversionView::queueFinished);
    pane->runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 60000);
    QCOMPARE(status(3), ConversionQueueItem::Status::Done);
    QCOMPARE(status(4), ConversionQueueItem::Status::Done);
    QCOMPARE(status(5), ConversionQueueItem::Status::Done);
    QCOMPARE(status(6), ConversionQueueItem::Status::Done);
    pane->selectRow(3);
    QTest::qWait(100);
    saveScreenshot(w, QStringLiteral("conversion.png"));
    pane->selectRow(4);
    QTest::qWait(100);
    saveScreenshot(w, QStringLiteral("conversion-full-model.png"));
    pane->selectRow(6);
    // The options from their top: the target and the architecture fields.
    auto *options = pane->findChild<QScrollArea *>();
    QVERIFY(options);
    options->verticalScrollBar()->setValue(0);
    QTest::qWait(100);
    saveScreenshot(w, QStringLiteral("conversion-torchscript.png"));
    w.resize(1024, 700);  // the smallest window the panes are laid out for
    QTest::qWait(100);
    saveScreenshot(w, QStringLiteral("conversion-torchscript-1024x700.png"));
}

void TestMainWindow::screenshots_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("png");
    QTest::newRow("full model") << example("simple_nn_full_model.pth") << "full-model.png";
    QTest::newRow("training checkpoint") << fixture("training_checkpoint.pth") << "training-checkpoint.png";
    QTest::newRow("nested values") << fixture("nested.pth") << "nested.png";
    QTest::newRow("memo bomb") << fixture("memo_bomb.pth") << "memo-bomb.png";
    QTest::newRow("tensor past storage") << fixture("tensor_past_storage.pth") << "problem.png";
    QTest::newRow("dtypes") << fixture("dtypes.pth") << "dtypes.png";
    QTest::newRow("integer extremes") << fixture("int_extremes.pth") << "int-extremes.png";
}

// Pictures of the window on files that show off the tree's features, for reviews.
void TestMainWindow::screenshots()
{
    QFETCH(QString, file);
    QFETCH(QString, png);
    MainWindow w;
    w.resize(1280, 800);
    w.show();
    DocumentView *view = w.openFile(file);
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    QTest::qWait(20);
    saveScreenshot(w, png);
}

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
