// DocumentView: background loading, stale results dropped, the error page, filters and the link
// from the tensor table to the tree.
#include "document.h"
#include "documenttreemodel.h"
#include "documentview.h"
#include "predictionview.h"
#include "statisticsjob.h"
#include "tensordetailview.h"
#include "isolatedsettings.h"
#include "testdata.h"
#include "tensortablemodel.h"
#include "metadataview.h"
#include "moduletreemodel.h"
#include "moduleview.h"
#include "optimizerview.h"
#include "securityview.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QTabBar>
#include <QDir>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSet>
#include <QHeaderView>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QSplitter>
#include <QStyle>
#include <QStyledItemDelegate>
#include "valuetext.h"
#include <QFile>
#include <QTemporaryDir>
#include <QTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QFuture>
#include <QPromise>
#include <QLineEdit>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QStandardPaths>
#include <QTabWidget>
#include <QStandardItemModel>
#include <QTableView>
#include <QTest>
#include <QTreeView>

#include <algorithm>
#include <ctime>
#include <memory>
#include <vector>

using namespace ckpt;

namespace {

QJsonObject expectedJson() { return test::expectedListing(); }

QString fixture(const char *name)
{
    return QStringLiteral(CKPT_FIXTURES_DIR "/") + QLatin1String(name);
}

// Testers on every model and proxy of a view, attached before anything is loaded.
std::vector<std::unique_ptr<QAbstractItemModelTester>> attachTesters(DocumentView &view)
{
    std::vector<std::unique_ptr<QAbstractItemModelTester>> out;
    for (QAbstractItemModel *m : std::initializer_list<QAbstractItemModel *>{
             view.treeModel(), view.treeProxy(), view.tableModel(), view.tableProxy()})
        out.push_back(
            std::make_unique<QAbstractItemModelTester>(m, QAbstractItemModelTester::FailureReportingMode::QtTest));
    return out;
}

// The text a view paints in a cell: its delegate's options (the elide mode) in the text rect the
// style gives the cell, less the margin Qt's item text keeps on each side (QCommonStyle).
struct DelegatePeek : QStyledItemDelegate {
    using QStyledItemDelegate::initStyleOption;  // named here, called on the view's own delegate
};

QString shownText(const QAbstractItemView *view, const QModelIndex &index)
{
    auto *delegate = qobject_cast<QStyledItemDelegate *>(view->itemDelegateForIndex(index));
    if (!delegate)
        return {};
    QStyleOptionViewItem option;
    option.initFrom(view);
    option.widget = view;
    option.font = view->font();
    option.fontMetrics = view->fontMetrics();
    option.textElideMode = view->textElideMode();
    option.rect = view->visualRect(index);
    (delegate->*&DelegatePeek::initStyleOption)(&option, index);
    const QRect textRect = view->style()->subElementRect(QStyle::SE_ItemViewItemText, &option, view);
    const int margin = view->style()->pixelMetric(QStyle::PM_FocusFrameHMargin, nullptr, view) + 1;
    return option.fontMetrics.elidedText(option.text, option.textElideMode, textRect.width() - 2 * margin);
}

// Shown whole, or elided in the middle with both ends of the key kept.
bool keepsBothEnds(const QString &shown, const QString &key)
{
    if (shown == key)
        return true;
    const QString start = shown.section(QChar(0x2026), 0, 0);
    const QString end = shown.section(QChar(0x2026), 1);
    return shown.count(QChar(0x2026)) == 1 && !start.isEmpty() && !end.isEmpty() && key.startsWith(start) &&
           key.endsWith(end);
}

} // namespace

class TestDocumentView : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void opensInBackground();
    void findShortcutFocusesFilter();
    void findGoesToTheShownViewsFilter();
    void statisticsArrive();
    void statisticsJobStopsWhenCancelled();
    void dangerBanner_data();
    void dangerBanner();
    void newerOpenWins_data();
    void newerOpenWins();
    void errorPage_data();
    void errorPage();
    void filters();
    void tableFilterKeepsDetailOnMarkedRow();
    void tableSelectsTreeRow();
    void treeSelectsTableRow();
    void hugeListStaysResponsive();
    void inspectionTabs();
    void structureKeepsValueInView();
    void longKeysReadable_data();
    void longKeysReadable();
    void shortKeysKeepTheLayout();
    void chosenStructureWidthWins();
    void headerSaysWhereTensorsAre();
    void securityShowsTheCall_data();
    void securityShowsTheCall();
    void selectedTextIsWhatTheTableShows();
};

void TestDocumentView::initTestCase()
{
    // A shown view remembers its layout in QSettings: keep that out of the user's own settings.
    test::isolateSettings(QStringLiteral("Checkpoint Studio Tests"), QStringLiteral("tst_documentview"));
}

void TestDocumentView::opensInBackground()
{
    DocumentView view;
    const auto testers = attachTesters(view);
    QSignalSpy loaded(&view, &DocumentView::loaded);
    QSignalSpy failed(&view, &DocumentView::failed);
    QCOMPARE(view.state(), DocumentView::State::Empty);

    view.open(fixture("training_checkpoint.pth"));
    QCOMPARE(view.state(), DocumentView::State::Loading);  // open() returns before the file is read
    QVERIFY(!view.document());
    QVERIFY(loaded.wait(20000));
    QCOMPARE(failed.count(), 0);
    QCOMPARE(view.state(), DocumentView::State::Loaded);
    QVERIFY(view.document());
    QCOMPARE(view.tableModel()->rowCount(), 4);
    QCOMPARE(view.tableProxy()->rowCount(), 4);
    QCOMPARE(view.treeProxy()->rowCount(), 6);
    QVERIFY(view.summary().contains(QStringLiteral("training_checkpoint")));
    QVERIFY(view.summary().contains(QStringLiteral("4 tensors")));
    // Elements, as the CLI and the compare view count them: buffers and integer tensors are no
    // parameters.
    QVERIFY2(view.summary().contains(QStringLiteral(" elements")), qPrintable(view.summary()));
    QVERIFY2(!view.summary().contains(QStringLiteral("parameter")), qPrintable(view.summary()));
    // One level is open: the state dict's tensors are visible rows.
    const QModelIndex sd = view.treeProxy()->mapFromSource(view.treeModel()->indexForPath({"model_state_dict"}));
    QVERIFY(view.treeView()->isExpanded(sd));
}

void TestDocumentView::findShortcutFocusesFilter()
{
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.resize(1000, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    view.treeView()->setFocus();
    view.treeFilter()->setText(QStringLiteral("old"));
    QTest::keySequence(view.treeView(), QKeySequence::Find);
    QTRY_VERIFY(view.treeFilter()->hasFocus());
    QCOMPARE(view.treeFilter()->selectedText(), QStringLiteral("old"));
}

// Ctrl+F from a tab with a filter of its own goes to that filter (the tensor table's, the modules'),
// not to the structure tree's; from a tab without one (Metadata), and from the tree itself, to the
// tree's.
void TestDocumentView::findGoesToTheShownViewsFilter()
{
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.resize(1280, 760);
    view.show();
    view.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&view));
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));

    view.viewTabs()->setCurrentIndex(DocumentView::TensorsTab);
    view.tableFilter()->setText(QStringLiteral("fc"));
    view.tableView()->setFocus();
    QTRY_VERIFY(view.tableView()->hasFocus());
    QTest::keySequence(view.tableView(), QKeySequence::Find);
    QTRY_VERIFY(view.tableFilter()->hasFocus());
    QCOMPARE(view.tableFilter()->selectedText(), QStringLiteral("fc"));  // typing replaces it

    view.showView(DocumentView::ModulesTab);
    auto *modules = view.moduleView()->findChild<QTreeView *>(QStringLiteral("moduleTree"));
    QVERIFY(modules);
    modules->setFocus();
    QTRY_VERIFY(modules->hasFocus());
    QTest::keySequence(modules, QKeySequence::Find);
    QTRY_VERIFY(view.moduleView()->filter()->hasFocus());

    // The keyboard in the structure tree: its own filter, whatever tab is shown on the right.
    view.treeView()->setFocus();
    QTRY_VERIFY(view.treeView()->hasFocus());
    QTest::keySequence(view.treeView(), QKeySequence::Find);
    QTRY_VERIFY(view.treeFilter()->hasFocus());

    // A tab without a filter (Metadata): the tree's, the one filter there is.
    view.viewTabs()->setCurrentIndex(DocumentView::MetadataTab);
    view.viewTabs()->tabBar()->setFocus();
    QTRY_VERIFY(view.viewTabs()->tabBar()->hasFocus());
    QTest::keySequence(view.viewTabs()->tabBar(), QKeySequence::Find);
    QTRY_VERIFY(view.treeFilter()->hasFocus());
}

void TestDocumentView::statisticsArrive()
{
    // After a load the table's statistics are computed in the background (the compute module is
    // loaded there) and agree with PyTorch's sums from the fixture generator.
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    QSignalSpy finished(&view, &DocumentView::statisticsFinished);
    view.open(fixture("views.pth"));
    QVERIFY(loaded.wait(20000));
    QVERIFY(finished.count() > 0 || finished.wait(60000));
    QCOMPARE(finished.last().at(0).toBool(), true);
    QVERIFY(!view.statisticsRunning());
    const QJsonArray tensors = expectedJson().value("views.pth").toObject().value("tensors").toArray();
    auto *model = view.tableModel();
    QCOMPARE(model->rowCount(), tensors.size());
    for (int r = 0; r < model->rowCount(); ++r) {
        const auto e = tensors[r].toObject();
        const QModelIndex mean = model->index(r, TensorTableModel::MeanColumn);
        QVERIFY(mean.data(TensorTableModel::HasStatisticsRole).toBool());
        const qint64 numel = e.value("numel").toInteger();
        if (numel == 0)
            continue;
        QVERIFY2(std::abs(mean.data(TensorTableModel::SortRole).toDouble() - e.value("sum").toDouble() / double(numel)) < 1e-9,
                 qPrintable(e.value("name").toString()));
    }
}

void TestDocumentView::statisticsJobStopsWhenCancelled()
{
    const auto doc = std::make_shared<const Document>(readDocument(fixture("views.pth").toStdString()));
    {
        QPromise<RowStatistics> promise;
        promise.start();
        computeStatistics(promise, doc, &doc->stateDict);
        promise.finish();
        QCOMPARE(promise.future().resultCount(), static_cast<int>(doc->stateDict.size()));
    }
    {
        QPromise<RowStatistics> promise;
        promise.start();
        promise.future().cancel();
        computeStatistics(promise, doc, &doc->stateDict);
        promise.finish();
        QCOMPARE(promise.future().resultCount(), 0);
    }
}

void TestDocumentView::dangerBanner_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("named");  // "" when no banner is expected
    QTest::newRow("clean") << "training_checkpoint.pth" << "";
    QTest::newRow("os.system") << "os_system.pth" << "posix.system";
    QTest::newRow("nested pickle") << "nested_pickle.pth" << "pickle.loads";
}

void TestDocumentView::dangerBanner()
{
    QFETCH(QString, file);
    QFETCH(QString, named);
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture(qPrintable(file)));
    QVERIFY(loaded.wait(20000));
    auto *banner = view.findChild<QLabel *>(QStringLiteral("danger"));
    QVERIFY(banner);
    QCOMPARE(banner->isVisibleTo(&view), !named.isEmpty());
    if (!named.isEmpty())
        QVERIFY2(banner->text().contains(named), qPrintable(banner->text()));
}

void TestDocumentView::newerOpenWins_data()
{
    QTest::addColumn<QString>("first");
    QTest::addColumn<QString>("second");
    QTest::addColumn<bool>("secondLoads");
    QTest::newRow("good then good") << fixture("full_model.pth") << fixture("views.pth") << true;
    QTest::newRow("bad then good") << fixture("not_a_checkpoint.pth") << fixture("views.pth") << true;
    QTest::newRow("good then bad") << fixture("training_checkpoint.pth") << fixture("truncated.pth") << false;
    QTest::newRow("same file twice") << fixture("views.pth") << fixture("views.pth") << true;
}

// Two open() calls in a row: only the second one's result reaches the view, once.
void TestDocumentView::newerOpenWins()
{
    QFETCH(QString, first);
    QFETCH(QString, second);
    QFETCH(bool, secondLoads);
    DocumentView view;
    const auto testers = attachTesters(view);
    QSignalSpy loaded(&view, &DocumentView::loaded);
    QSignalSpy failed(&view, &DocumentView::failed);

    view.open(first);
    view.open(second);
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count() + failed.count(), 1, 20000);
    QTest::qWait(300);  // give the stale job time to finish and (wrongly) report
    QCOMPARE(loaded.count() + failed.count(), 1);
    QCOMPARE(loaded.count(), secondLoads ? 1 : 0);
    QCOMPARE(view.path(), second);
    if (secondLoads) {
        QCOMPARE(QString::fromStdString(view.document()->path), second);
        QCOMPARE(view.tableModel()->rowCount(), 7);  // views.pth
    } else {
        QVERIFY(view.errorText().contains(QStringLiteral("truncated.pth")));
    }
}

void TestDocumentView::errorPage_data()
{
    QTest::addColumn<QString>("path");
    QTest::addColumn<QString>("reason");
    QTest::newRow("html page") << fixture("not_a_checkpoint.pth") << "HTML";
    QTest::newRow("truncated zip") << fixture("truncated.pth") << "truncated";
    QTest::newRow("deep nesting") << fixture("deep_nesting.pth") << "nesting";
    QTest::newRow("missing file") << QStringLiteral(CKPT_FIXTURES_DIR "/no_such_file.pth") << "no such file";
    // A folder of many checkpoints: which one to open is the user's to say.
    QTest::newRow("folder") << QStringLiteral(CKPT_FIXTURES_DIR) << "name the one to open";
}

// A file that cannot be read gives a page that names the file and the reason, in selectable text.
void TestDocumentView::errorPage()
{
    QFETCH(QString, path);
    QFETCH(QString, reason);
    DocumentView view;
    const auto testers = attachTesters(view);
    view.resize(800, 600);
    view.show();
    QSignalSpy failed(&view, &DocumentView::failed);
    view.open(path);
    QVERIFY(failed.wait(20000));
    QCOMPARE(view.state(), DocumentView::State::Failed);
    const QString message = failed.first().first().toString();
    const QString fileName = QFileInfo(path).fileName();
    QVERIFY2(message.contains(fileName), qPrintable(message));
    QVERIFY2(message.contains(reason, Qt::CaseInsensitive), qPrintable(message));
    QCOMPARE(view.errorText(), message);
    QCOMPARE(view.errorLabel()->text(), message);
    QVERIFY(view.errorLabel()->isVisible());
    QVERIFY(view.errorLabel()->textInteractionFlags() & Qt::TextSelectableByMouse);
    QVERIFY(!view.treeView()->isVisible());
    QCOMPARE(view.tableModel()->rowCount(), 0);
    QVERIFY(!view.document());
}

void TestDocumentView::filters()
{
    DocumentView view;
    const auto testers = attachTesters(view);
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));

    view.treeFilter()->setText(QStringLiteral("fc1"));
    QTRY_COMPARE(view.treeProxy()->rowCount(), 1);  // applied after a pause in typing
    const QModelIndex sd = view.treeProxy()->index(0, 0);
    QCOMPARE(sd.data().toString(), QStringLiteral("model_state_dict"));
    QCOMPARE(view.treeProxy()->index(0, 0, sd).data().toString(), QStringLiteral("fc1.weight"));
    QVERIFY(view.treeView()->isExpanded(sd));  // matches are shown, not folded away
    view.treeFilter()->clear();
    QTRY_COMPARE(view.treeProxy()->rowCount(), 6);

    view.tableFilter()->setText(QStringLiteral("BIAS"));
    QCOMPARE(view.tableProxy()->rowCount(), 2);
    view.tableFilter()->clear();
    QCOMPARE(view.tableProxy()->rowCount(), 4);

    // Sorting by a numeric column through the view's proxy.
    view.tableView()->sortByColumn(TensorTableModel::NumelColumn, Qt::DescendingOrder);
    QCOMPARE(view.tableProxy()->index(0, 0).data().toString(), QStringLiteral("fc1.weight"));
    QCOMPARE(view.tableProxy()->index(3, 0).data().toString(), QStringLiteral("fc2.bias"));
}

// While the table's filter hides rows its caption says how many of how many are listed, and the
// detail pane shows the one highlighted row: the tensor it showed when that is still listed, else
// the first listed row (highlighted, with the tree following), never a row the table does not mark.
void TestDocumentView::tableFilterKeepsDetailOnMarkedRow()
{
    DocumentView view;
    const auto testers = attachTesters(view);
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    const int total = view.tableModel()->rowCount();
    QVERIFY(total > 2);
    QCOMPARE(view.tableCaption()->text(), QStringLiteral("Tensors in model_state_dict (%1)").arg(total));

    auto marked = [&view] {
        QStringList names;
        for (const QModelIndex &i : view.tableView()->selectionModel()->selectedRows(TensorTableModel::NameColumn))
            names << i.data().toString();
        return names;
    };
    // The detail shows exactly the one highlighted row, which is the table's current row and the tree's.
    auto checkDetailIsMarked = [&](const QString &want) {
        QCOMPARE(marked().join(QLatin1Char(',')), want);
        QCOMPARE(view.detailView()->tensorName(), want);
        QCOMPARE(view.tableView()->currentIndex().siblingAtColumn(TensorTableModel::NameColumn).data().toString(), want);
        QCOMPARE(view.treeView()->currentIndex().data(DocumentTreeModel::PathRole).toStringList(),
                 QStringList({QStringLiteral("model_state_dict"), want}));
    };

    QVERIFY(view.selectTensor(QStringLiteral("fc2.weight")));
    checkDetailIsMarked(QStringLiteral("fc2.weight"));
    if (QTest::currentTestFailed())
        return;

    // fc2.weight filtered out: the first listed row takes over, highlighted.
    view.tableFilter()->setText(QStringLiteral("bias"));
    const int shown = view.tableProxy()->rowCount();
    QVERIFY(shown > 0 && shown < total);
    QCOMPARE(view.tableCaption()->text(), QStringLiteral("Tensors in model_state_dict (%1 of %2)").arg(shown).arg(total));
    checkDetailIsMarked(view.tableProxy()->index(0, TensorTableModel::NameColumn).data().toString());
    if (QTest::currentTestFailed())
        return;

    // Still listed under another filter: it stays.
    QVERIFY(view.selectTensor(QStringLiteral("fc2.bias")));
    view.tableFilter()->setText(QStringLiteral("fc2"));
    checkDetailIsMarked(QStringLiteral("fc2.bias"));
    if (QTest::currentTestFailed())
        return;

    // Nothing listed: nothing marked, the detail keeps its tensor.
    view.tableFilter()->setText(QStringLiteral("no such tensor"));
    QCOMPARE(view.tableCaption()->text(), QStringLiteral("Tensors in model_state_dict (0 of %1)").arg(total));
    QVERIFY(marked().isEmpty());
    QCOMPARE(view.detailView()->tensorName(), QStringLiteral("fc2.bias"));

    view.tableFilter()->clear();
    QCOMPARE(view.tableCaption()->text(), QStringLiteral("Tensors in model_state_dict (%1)").arg(total));
}

void TestDocumentView::tableSelectsTreeRow()
{
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    view.tableView()->setCurrentIndex(view.tableProxy()->index(2, 0));  // fc2.weight
    const QModelIndex current = view.treeView()->currentIndex();
    QCOMPARE(current.data(DocumentTreeModel::PathRole).toStringList(),
             QStringList({"model_state_dict", "fc2.weight"}));
}

// The other direction: a state-dict tensor picked in the tree is the table's one highlighted row;
// a tensor the table does not list (optimizer state) leaves no row highlighted there.
void TestDocumentView::treeSelectsTableRow()
{
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    auto selectedNames = [&view] {
        QStringList names;
        for (const QModelIndex &i : view.tableView()->selectionModel()->selectedRows(TensorTableModel::NameColumn))
            names << i.data().toString();
        return names;
    };
    // The first row picked (through the selection model: selectRow follows the keyboard modifiers).
    view.tableView()->selectionModel()->setCurrentIndex(view.tableProxy()->index(0, 0),
                                                        QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    QCOMPARE(selectedNames(), QStringList{view.tableProxy()->index(0, 0).data().toString()});
    const QModelIndex bias = view.treeModel()->indexForPath({"model_state_dict", "fc1.bias"});
    QVERIFY(bias.isValid());
    view.treeView()->setCurrentIndex(view.treeProxy()->mapFromSource(bias));
    QCOMPARE(selectedNames(), QStringList{QStringLiteral("fc1.bias")});
    QCOMPARE(view.tableView()->currentIndex().siblingAtColumn(TensorTableModel::NameColumn).data().toString(),
             QStringLiteral("fc1.bias"));
    // No echo back: the tree keeps the row the user picked.
    QCOMPARE(view.treeView()->currentIndex().data(DocumentTreeModel::PathRole).toStringList(),
             QStringList({"model_state_dict", "fc1.bias"}));
    // Sorted differently, the table still finds the row.
    view.tableView()->sortByColumn(TensorTableModel::NumelColumn, Qt::DescendingOrder);
    const QModelIndex w2 = view.treeModel()->indexForPath({"model_state_dict", "fc2.weight"});
    view.treeView()->setCurrentIndex(view.treeProxy()->mapFromSource(w2));
    QCOMPARE(selectedNames(), QStringList{QStringLiteral("fc2.weight")});
    const QModelIndex state = view.treeModel()->indexForPath({"optimizer_state_dict", "state", "0", "exp_avg"});
    QVERIFY(state.isValid());
    view.treeView()->setCurrentIndex(view.treeProxy()->mapFromSource(state));
    QVERIFY(selectedNames().isEmpty());
    QCOMPARE(view.treeView()->currentIndex().data(DocumentTreeModel::PathRole).toStringList(),
             QStringList({"optimizer_state_dict", "state", "0", "exp_avg"}));
}

// A file holding a 200,000-element list: read and built off the GUI thread, the event loop keeps
// turning, and the tree lists 10,000 rows plus one "… 190000 more".
void TestDocumentView::hugeListStaysResponsive()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath(QStringLiteral("huge_list.pkl"));
    {
        QByteArray p("\x80\x02](", 4); // PROTO 2, EMPTY_LIST, MARK
        for (int i = 0; i < 200000; ++i)
            p.append('K').append(char(i & 0x7f)); // BININT1
        p.append("e.");                           // APPENDS, STOP
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(p);
    }
    DocumentView view;
    const auto testers = attachTesters(view);
    view.resize(1000, 700);
    view.show();
    QSignalSpy loaded(&view, &DocumentView::loaded);

    // The GUI thread's own CPU time between two turns of its event loop: what it spends on the
    // file, whatever else the machine runs (a wall clock would count time other processes took).
    auto guiThreadMs = [] {
        timespec t{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return qint64(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
    };
    qint64 last = guiThreadMs();
    qint64 worstGap = 0;
    int turns = 0;
    QTimer tick;
    tick.setInterval(5);
    connect(&tick, &QTimer::timeout, &tick, [&] {
        const qint64 now = guiThreadMs();
        worstGap = std::max(worstGap, now - last);
        last = now;
        ++turns;
    });
    tick.start();
    view.open(path);
    QVERIFY(loaded.wait(30000));
    const int turnsAtLoad = turns;
    QTRY_VERIFY(turns > turnsAtLoad);  // the turn after the tree was filled is measured too
    tick.stop();
    QVERIFY2(worstGap < 1000, qPrintable(QStringLiteral("event loop stalled for %1 ms of GUI work").arg(worstGap)));
    QCOMPARE(view.treeModel()->rowCount(), 10001);
    QCOMPARE(view.treeProxy()->index(10000, 0).data().toString(), QStringLiteral("\u2026 190000 more"));
}

void TestDocumentView::inspectionTabs()
{
    DocumentView view;
    view.resize(1000, 700);
    view.show();
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    QTabWidget *tabs = view.viewTabs();
    QCOMPARE(tabs->count(), 6);
    QCOMPARE(tabs->widget(DocumentView::ModulesTab), static_cast<QWidget *>(view.moduleView()));
    QCOMPARE(tabs->widget(DocumentView::SecurityTab), static_cast<QWidget *>(view.securityView()));
    // Each view shows the loaded document.
    QVERIFY(view.moduleView()->model()->rowCount() > 0);
    QVERIFY(view.optimizerView()->summary()->text().contains(QStringLiteral("Adam")));
    QVERIFY(view.metadataView()->model()->rowCount() > 0);
    QVERIFY(view.securityView()->verdict()->text().contains(QStringLiteral("No dangerous global")));
    QCOMPARE(tabs->tabText(DocumentView::OptimizerTab), QStringLiteral("Optimizer"));
    // Alt+2 shows the modules; a tensor picked there becomes the table's current row.
    view.activateWindow();
    QTest::keyClick(&view, Qt::Key_2, Qt::AltModifier);
    QCOMPARE(tabs->currentIndex(), int(DocumentView::ModulesTab));
    const QModelIndex fc2 = view.moduleView()->proxy()->mapFromSource(
        view.moduleView()->model()->indexOfPath(QStringLiteral("fc2.weight")));
    view.moduleView()->view()->setCurrentIndex(fc2);
    QCOMPARE(view.tableView()->currentIndex().data(TensorTableModel::TensorNameRole).toString(), QStringLiteral("fc2.weight"));

    // A dangerous file marks the Security tab; a file without optimizer says so on its tab.
    view.open(fixture("os_system.pth"));
    QVERIFY(loaded.wait(20000));
    QVERIFY(tabs->tabText(DocumentView::SecurityTab).contains(QChar(0x26a0)));
    view.open(fixture("state_dict.pth"));
    QVERIFY(loaded.wait(20000));
    QCOMPARE(tabs->tabText(DocumentView::OptimizerTab), QStringLiteral("Optimizer (none)"));
    QVERIFY(!tabs->tabText(DocumentView::SecurityTab).contains(QChar(0x26a0)));

    // The Predict tab works out the architecture when it is shown, not while the file opens.
    tabs->setCurrentIndex(DocumentView::TensorsTab);
    view.open(fixture("predict_package.pth"));
    QVERIFY(loaded.wait(20000));
    QVERIFY(!view.predictionView()->architecture().has_value());
    tabs->setCurrentIndex(DocumentView::PredictTab);
    QVERIFY2(view.predictionView()->architecture().has_value(), qPrintable(view.predictionView()->architectureError()));
    QCOMPARE(view.predictionView()->architecture()->source, Architecture::Source::InferredMlp);
    // Opened while Predict is the current tab: given at once.
    view.open(fixture("predict_state_dict.pth"));
    QVERIFY(loaded.wait(20000));
    QVERIFY(view.predictionView()->architecture().has_value());
}

// The structure pane keeps Value on screen: at the default split of a 1280-pixel window the
// columns before it used to reach past the pane (Value started at 331 px of 305).
void TestDocumentView::structureKeepsValueInView()
{
    DocumentView view;
    view.resize(1280, 740);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.structureSplitter()->setSizes({313, 967});  // the split of a 1280-pixel window (a 305 px viewport)
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    QTreeView *tree = view.treeView();
    QHeaderView *h = tree->header();
    const int room = tree->fontMetrics().horizontalAdvance(QStringLiteral("[50, 10] float32"));  // shape and dtype
    auto layout = [&] {
        QString out = QStringLiteral("viewport %1:").arg(tree->viewport()->width());
        for (int c = 0; c < h->count(); ++c)
            out += QStringLiteral(" %1=%2@%3%4")
                       .arg(tree->model()->headerData(c, Qt::Horizontal).toString())
                       .arg(h->sectionSize(c))
                       .arg(h->sectionViewportPosition(c))
                       .arg(tree->isColumnHidden(c) ? QStringLiteral("(hidden)") : QString());
        return out;
    };
    auto valueFits = [&] {
        return !tree->isColumnHidden(DocumentTreeModel::ValueColumn) &&
               h->sectionViewportPosition(DocumentTreeModel::ValueColumn) + room <= tree->viewport()->width();
    };
    QTRY_VERIFY2(valueFits(), qPrintable(layout()));
    QVERIFY2(!tree->isColumnHidden(DocumentTreeModel::KeyColumn) && !tree->isColumnHidden(DocumentTreeModel::TypeColumn),
             qPrintable(layout()));
    QVERIFY2(h->sectionSize(DocumentTreeModel::KeyColumn) >= 80, qPrintable(layout()));
    // A key too long for its column is elided; its tooltip names it in full.
    const QModelIndex model = view.treeProxy()->index(1, DocumentTreeModel::KeyColumn);
    QCOMPARE(model.data().toString(), QStringLiteral("model_state_dict"));
    QVERIFY(view.treeProxy()->index(0, DocumentTreeModel::KeyColumn, model).data(Qt::ToolTipRole).toString()
                .startsWith(QStringLiteral("model_state_dict/fc1.weight")));

    // As narrow as the pane goes: Key and Type give way down to a readable width; Value still
    // starts on screen with room for a shape.
    view.structureSplitter()->setSizes({1, 1279});
    const int shapeRoom = tree->fontMetrics().horizontalAdvance(QStringLiteral("[50, 10]"));
    QTRY_VERIFY2(h->sectionViewportPosition(DocumentTreeModel::ValueColumn) + shapeRoom <= tree->viewport()->width(),
                 qPrintable(layout()));
    // A wide pane shows every column again.
    view.resize(1800, 740);
    view.structureSplitter()->setSizes({900, 900});
    QTRY_VERIFY2(!tree->isColumnHidden(DocumentTreeModel::ShapeColumn) &&
                     !tree->isColumnHidden(DocumentTreeModel::DTypeColumn) && valueFits(),
                 qPrintable(layout()));
    // A column the user drags keeps its width when the pane changes.
    h->resizeSection(DocumentTreeModel::KeyColumn, 250);
    view.structureSplitter()->setSizes({800, 1000});
    QTest::qWait(50);
    QCOMPARE(h->sectionSize(DocumentTreeModel::KeyColumn), 250);
}

void TestDocumentView::longKeysReadable_data()
{
    QTest::addColumn<QString>("name");
    QTest::addColumn<bool>("mostWhole");  // three in four keys or more whole in the tree
    QTest::newRow("hf decoder") << QStringLiteral("hf_keys") << true;
    QTest::newRow("allennlp encoder") << QStringLiteral("allennlp_keys") << false;
}

// Keys as long as real checkpoints have them, at the default window size (the document view of a
// 1280x800 window): most are shown whole in the structure tree (the Predict tab's side-by-side
// form and results bound the pane: a decoder's two longest keys are a few pixels too wide there),
// every key the tensor table has room for is whole there, and a key that cannot fit keeps both
// ends (its distinguishing end). Value keeps its room for "[50, 10] float32". The keys are
// the ones torch's state_dict() gave (tests/fixtures/guiviews_fixtures.py).
void TestDocumentView::longKeysReadable()
{
    QFETCH(QString, name);
    QFETCH(bool, mostWhole);
    const QJsonObject section = test::expectedListing().value(QStringLiteral("__guiviews__")).toObject().value(name).toObject();
    const QStringList keys = section.value(QStringLiteral("keys")).toVariant().toStringList();
    const QString longest = section.value(QStringLiteral("longest")).toString();
    QVERIFY(keys.contains(longest));
    QSettings().clear();  // the default layout, as at a first start
    DocumentView view;
    view.resize(1280, 740);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture(qPrintable(section.value(QStringLiteral("file")).toString())));
    QVERIFY(loaded.wait(20000));
    QTest::qWait(50);  // anything the view does after the first show
    QTreeView *tree = view.treeView();
    QTableView *table = view.tableView();
    QHeaderView *th = tree->header();
    QHeaderView *hh = table->horizontalHeader();
    const QString layout = QStringLiteral("split %1/%2, key %3 of %4, name %5 of %6")
                               .arg(view.structureSplitter()->sizes().value(0))
                               .arg(view.structureSplitter()->sizes().value(1))
                               .arg(th->sectionSize(DocumentTreeModel::KeyColumn))
                               .arg(tree->viewport()->width())
                               .arg(hh->sectionSize(TensorTableModel::NameColumn))
                               .arg(table->viewport()->width());

    // Value starts on screen with room for a tensor's shape and dtype.
    const int valueRoom = tree->fontMetrics().horizontalAdvance(QStringLiteral("[50, 10] float32"));
    QVERIFY2(th->sectionViewportPosition(DocumentTreeModel::ValueColumn) + valueRoom <= tree->viewport()->width(),
             qPrintable(layout));

    // What DType … Grad leave of the table is the names'.
    int others = 0;
    for (int c = TensorTableModel::DTypeColumn; c <= TensorTableModel::RequiresGradColumn; ++c)
        others += hh->sectionSize(c);
    const int margin = 2 * (table->style()->pixelMetric(QStyle::PM_FocusFrameHMargin, nullptr, table) + 1);
    const int nameRoom = table->viewport()->width() - others;

    QSet<QString> treeTexts, tableTexts;
    for (const QString &key : keys) {
        const QModelIndex t = view.treeProxy()->mapFromSource(view.treeModel()->indexForPath({key}));
        QVERIFY2(t.isValid(), qPrintable(key));
        const QString inTree = shownText(tree, t);
        int row = -1;
        for (int r = 0; r < view.tableProxy()->rowCount(); ++r)
            if (view.tableProxy()->index(r, 0).data(TensorTableModel::TensorNameRole).toString() == key)
                row = r;
        QVERIFY2(row >= 0, qPrintable(key));
        const QString inTable = shownText(table, view.tableProxy()->index(row, TensorTableModel::NameColumn));
        const QString where = QStringLiteral("%1: tree '%2', table '%3' (%4)").arg(key, inTree, inTable, layout);
        QVERIFY2(keepsBothEnds(inTree, key) && keepsBothEnds(inTable, key), qPrintable(where));
        if (table->fontMetrics().horizontalAdvance(key) + margin <= nameRoom)
            QVERIFY2(inTable == key, qPrintable(where));
        treeTexts.insert(inTree);
        tableTexts.insert(inTable);
    }
    // Every row still tells its key from the others.
    QCOMPARE(treeTexts.size(), keys.size());
    QCOMPARE(tableTexts.size(), keys.size());
    QVERIFY2(shownText(tree, view.treeProxy()->mapFromSource(view.treeModel()->indexForPath({longest}))) != longest,
                 qPrintable(QStringLiteral("the longest key was meant not to fit: make it longer (%1)").arg(layout)));
    // A decoder's keys are whole in the tree but for the longest: the pane widened for them.
    int wholeInTree = 0;
    for (const QString &t : treeTexts)
        wholeInTree += keys.contains(t);
    if (mostWhole)
        QVERIFY2(wholeInTree * 4 >= keys.size() * 3, qPrintable(QStringLiteral("%1 of %2 whole (%3)").arg(wholeInTree).arg(keys.size()).arg(layout)));

    // The Predict tab keeps its width beside the widened pane: nothing of it is scrolled out of sight.
    view.viewTabs()->setCurrentIndex(view.viewTabs()->count() - 1);
    QTest::qWait(50);
    auto *predict = qobject_cast<QScrollArea *>(view.viewTabs()->currentWidget());
    QVERIFY(predict);
    QVERIFY2(predict->horizontalScrollBar()->maximum() == 0,
             qPrintable(QStringLiteral("Predict scrolls by %1 pixels (%2)").arg(predict->horizontalScrollBar()->maximum()).arg(layout)));
}

// A file of short keys keeps the split and the columns it had: the structure pane widens only for
// keys that need it.
void TestDocumentView::shortKeysKeepTheLayout()
{
    QSettings().clear();
    DocumentView view;
    view.resize(1280, 740);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    const QList<int> before = view.structureSplitter()->sizes();
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    QTest::qWait(50);
    QCOMPARE(view.structureSplitter()->sizes(), before);
    // Its names are whole, as before.
    for (int r = 0; r < view.tableProxy()->rowCount(); ++r) {
        const QModelIndex name = view.tableProxy()->index(r, TensorTableModel::NameColumn);
        QCOMPARE(shownText(view.tableView(), name), name.data().toString());
    }
    // And a long-key file opened after it in the same view widens the pane; the short one again
    // gives the width back.
    view.open(fixture("guiviews/hf_keys.pth"));
    QVERIFY(loaded.wait(20000));
    QVERIFY(view.structureSplitter()->sizes().value(0) > before.value(0));
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    QCOMPARE(view.structureSplitter()->sizes(), before);
}

// A structure pane the user placed keeps its width for every file, in this view and the next
// (QSettings); the width the view gave long keys is not saved as the user's.
void TestDocumentView::chosenStructureWidthWins()
{
    QSettings().clear();
    QList<int> fitted, chosen;
    {
        DocumentView view;
        view.resize(1280, 740);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        const QList<int> before = view.structureSplitter()->sizes();
        QSignalSpy loaded(&view, &DocumentView::loaded);
        view.open(fixture("guiviews/hf_keys.pth"));
        QVERIFY(loaded.wait(20000));
        fitted = view.structureSplitter()->sizes();
        QVERIFY(fitted.value(0) > before.value(0));
    }
    {
        // Not saved as the user's: the next view starts from the default and fits again.
        DocumentView view;
        view.resize(1280, 740);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QVERIFY(view.structureSplitter()->sizes().value(0) < fitted.value(0));
        QSignalSpy loaded(&view, &DocumentView::loaded);
        view.open(fixture("guiviews/hf_keys.pth"));
        QVERIFY(loaded.wait(20000));
        QCOMPARE(view.structureSplitter()->sizes(), fitted);
        // The user drags the pane narrower (as QSplitterHandle does: sizes, then the signal).
        view.structureSplitter()->setSizes({260, fitted.value(0) + fitted.value(1) - 260});
        chosen = view.structureSplitter()->sizes();
        Q_EMIT view.structureSplitter()->splitterMoved(chosen.value(0), 1);
        view.open(fixture("guiviews/allennlp_keys.pth"));
        QVERIFY(loaded.wait(20000));
        QCOMPARE(view.structureSplitter()->sizes(), chosen);
    }
    DocumentView next;
    next.resize(1280, 740);
    next.show();
    QVERIFY(QTest::qWaitForWindowExposed(&next));
    QSignalSpy loaded(&next, &DocumentView::loaded);
    next.open(fixture("guiviews/hf_keys.pth"));
    QVERIFY(loaded.wait(20000));
    QCOMPARE(next.structureSplitter()->sizes(), chosen);
}

// The header counts the tensors the table lists and says where they are; a shard index's size is
// its shards', not the small JSON file's.
void TestDocumentView::headerSaysWhereTensorsAre()
{
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    auto *details = view.findChild<QLabel *>(QStringLiteral("details"));
    QVERIFY(details);

    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    const QJsonObject expected = expectedJson().value("training_checkpoint.pth").toObject();
    const qsizetype modelTensors = expected.value("tensors").toArray().size();
    QStringList path;
    for (const QJsonValue &step : expected.value("state_dict_path").toArray())
        path << step.toString();
    // Adam's state in torch 1.13 keeps step, exp_avg and exp_avg_sq of each parameter as tensors.
    qsizetype optimizerTensors = 0;
    const QJsonObject state = expectedJson().value("__optimizer_state__").toObject().value("training_checkpoint.pth").toObject();
    for (const QJsonValue &perParameter : state)
        optimizerTensors += perParameter.toObject().size();
    QVERIFY(optimizerTensors > 0);
    const QString said = QStringLiteral("%1 tensors in %2 (%3 in the file)")
                             .arg(modelTensors)
                             .arg(path.join(QLatin1Char('/')))
                             .arg(modelTensors + optimizerTensors);
    QVERIFY2(details->text().contains(said), qPrintable(details->text() + QStringLiteral(" lacks ") + said));
    QVERIFY(view.summary().contains(said));

    for (const char *index : {"sharded/pytorch_model.bin.index.json", "sharded/model.safetensors.index.json"}) {
        view.open(fixture(index));
        QVERIFY(loaded.wait(20000));
        // The shards the index names, measured on disk.
        QFile json(fixture(index));
        QVERIFY(json.open(QIODevice::ReadOnly));
        QSet<QString> shards;
        for (const QJsonValue &shard : QJsonDocument::fromJson(json.readAll()).object().value("weight_map").toObject())
            shards << shard.toString();
        qint64 bytes = 0;
        for (const QString &shard : std::as_const(shards))
            bytes += QFileInfo(QFileInfo(fixture(index)).dir().filePath(shard)).size();
        const QString size = QStringLiteral("%1 of %2 shards").arg(valuetext::bytes(bytes)).arg(shards.size());
        QVERIFY2(details->text().contains(size), qPrintable(details->text() + QStringLiteral(" lacks ") + size));
        QVERIFY2(!details->text().contains(QRegularExpression(QStringLiteral("\\bfile \\d"))), qPrintable(details->text()));
    }
}

void TestDocumentView::securityShowsTheCall_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("global");
    QTest::addColumn<QString>("call");
    const QJsonObject hostile = expectedJson().value("__hostile__").toObject();
    for (const char *name : {"os_system.pth", "os_system_legacy.pth"}) {
        // The generator pickles os.system('touch ' + shlex.quote(marker)); the marker's path needs no quoting.
        const QString marker = hostile.value(QLatin1String(name)).toObject().value("marker").toString();
        QVERIFY(!marker.isEmpty());
        QTest::newRow(name) << fixture(name) << "posix.system"
                            << QStringLiteral("posix.system('touch %1') at payload").arg(marker);
    }
    const QString corpus = QStringLiteral(CKPT_CORPUS_DIR "/ADVERSARIAL_rsac_infected_test_model.bin");
    if (QFileInfo::exists(corpus))  // its manifest: create_venv holds venv.main(['exploit', '--upgrade', '--upgrade-deps'])
        QTest::newRow("corpus venv.main") << corpus << "venv.main"
                                          << "venv.main(['exploit', '--upgrade', '--upgrade-deps']) at create_venv";
}

// The security table shows what a dangerous global would be called with (the command it runs),
// and every reason in full in its tooltip.
void TestDocumentView::securityShowsTheCall()
{
    QFETCH(QString, file);
    QFETCH(QString, global);
    QFETCH(QString, call);
    DocumentView view;
    view.resize(1280, 740);
    view.show();
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(file);
    QVERIFY(loaded.wait(20000));
    const QStandardItemModel *model = view.securityView()->model();
    int row = -1;
    for (int r = 0; r < model->rowCount(); ++r)
        if (model->item(r, SecurityView::NameColumn)->text() == global)
            row = r;
    QVERIFY(row >= 0);
    QCOMPARE(model->item(row, SecurityView::CallColumn)->text(), call);
    QVERIFY(model->item(row, SecurityView::CallColumn)->toolTip().contains(call));
    for (int r = 0; r < model->rowCount(); ++r) {
        const QStandardItem *why = model->item(r, SecurityView::ReasonColumn);
        QVERIFY(!why->text().isEmpty());
        QCOMPARE(why->toolTip(), why->text());
        if (r != row)
            QVERIFY(model->item(r, SecurityView::CallColumn)->text().isEmpty());  // only dangerous globals' calls
    }
    // The reason is not cut off: it wraps within its column.
    QVERIFY(view.securityView()->view()->wordWrap());
}

// Edit → Copy with the keyboard elsewhere copies the table's selection as the table shows it: its
// visible columns in their visual order, rows in the order shown; the same text the window's copy
// of any other list or table gives (itemviewcopy::selectionText).
void TestDocumentView::selectedTextIsWhatTheTableShows()
{
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.resize(1000, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.open(fixture("training_checkpoint.pth"));
    QVERIFY(loaded.wait(20000));
    QTableView *table = view.tableView();
    QAbstractItemModel *model = table->model();
    QVERIFY(model->columnCount() > TensorTableModel::NumelColumn);
    table->setColumnHidden(TensorTableModel::DTypeColumn, true);
    table->horizontalHeader()->moveSection(table->horizontalHeader()->visualIndex(TensorTableModel::NumelColumn), 0);
    // Selected bottom row first.
    table->selectionModel()->select(model->index(2, 0),
                                    QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    table->selectionModel()->select(model->index(0, 0), QItemSelectionModel::Select | QItemSelectionModel::Rows);
    view.tableFilter()->setFocus(Qt::OtherFocusReason);  // neither the tree nor the table has the keyboard

    auto shown = [&](int row) {
        std::vector<std::pair<int, QString>> cells;
        for (int c = 0; c < model->columnCount(); ++c)
            if (!table->isColumnHidden(c))
                cells.emplace_back(table->horizontalHeader()->visualIndex(c), model->index(row, c).data().toString());
        std::sort(cells.begin(), cells.end());
        QStringList texts;
        for (const auto &cell : cells)
            texts << cell.second;
        return texts.join(QLatin1Char('\t'));
    };
    const QString copied = view.selectedText();
    QCOMPARE(copied, shown(0) + QLatin1Char('\n') + shown(2));
    QVERIFY2(copied.startsWith(model->index(0, TensorTableModel::NumelColumn).data().toString() + QLatin1Char('\t')),
             qPrintable(copied));
    QVERIFY2(!copied.contains(QStringLiteral("float32")), qPrintable(copied));  // the hidden dtype column
}

QTEST_MAIN(TestDocumentView)
#include "tst_documentview.moc"
