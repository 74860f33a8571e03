// The main window under bad input: hostile and broken files open in their own tabs with an error
// that names them, beside good files that stay open and intact; a file truncated on disk while
// its tab is open does not kill the process (SIGBUS) - what reads its data reports that the file
// changed, and reading it again gives an error in that tab.
#include "computeloader.h"
#include "document.h"
#include "documentview.h"
#include "mainwindow.h"
#include "statisticsjob.h"

#include <QLabel>
#include <QTabWidget>
#include <QtConcurrent>
#include <QtTest>

#include <unistd.h>

using namespace ckpt;

namespace {
QString fixture(const char *name)
{
    return QStringLiteral(CKPT_FIXTURES_DIR "/") + QLatin1String(name);
}

std::vector<RowStatistics> statisticsOf(const std::shared_ptr<const Document> &doc)
{
    // What the tensor table runs after each load (views/statisticsjob), here on demand.
    auto future = QtConcurrent::run(computeStatistics, doc, &doc->stateDict);
    future.waitForFinished();
    std::vector<RowStatistics> out;
    for (const auto &r : future.results())
        out.push_back(r);
    return out;
}
} // namespace

class TestBadInput : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void badFilesBesideGoodOnes();
};

void TestBadInput::badFilesBesideGoodOnes()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString good = dir.filePath("good.pth");
    const QString victim = dir.filePath("victim.pth");
    for (const auto &copy : {good, victim})
        QVERIFY(QFile::copy(QStringLiteral(CKPT_EXAMPLES_DIR "/simple_nn_checkpoint.pth"), copy));
    const QStringList broken = {fixture("truncated.pth"), fixture("not_a_checkpoint.pth"), fixture("deep_nesting.pth")};

    MainWindow w;
    w.resize(1280, 800);
    w.show();
    w.openFiles(QStringList{good} + broken + QStringList{victim});
    QCOMPARE(w.viewCount(), 5);
    DocumentView *goodView = w.viewAt(0);
    DocumentView *victimView = w.viewAt(4);
    QTRY_COMPARE_WITH_TIMEOUT(goodView->state(), DocumentView::State::Loaded, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(victimView->state(), DocumentView::State::Loaded, 20000);
    for (int i = 1; i <= broken.size(); ++i) {
        DocumentView *v = w.viewAt(i);
        QTRY_COMPARE_WITH_TIMEOUT(v->state(), DocumentView::State::Failed, 20000);
        QVERIFY2(v->errorText().startsWith(broken[i - 1] + ": "), qPrintable(v->errorText()));
        QVERIFY(v->errorLabel()->text().contains(QFileInfo(broken[i - 1]).fileName()));
    }
    QTRY_VERIFY_WITH_TIMEOUT(!goodView->statisticsRunning() && !victimView->statisticsRunning(), 60000);

    // Truncated under the open tab: everything that reads its data now gets zeros from the guard
    // instead of SIGBUS, and says so instead of handing out numbers made of them.
    const auto victimDoc = victimView->document();
    QVERIFY(victimDoc && !victimDoc->stateDict.empty());
    QVERIFY(::truncate(QFile::encodeName(victim).constData(), 0) == 0);
    const QString changed = QStringLiteral("the file ") + victim + QStringLiteral(" changed or was truncated while open");
    const auto rows = statisticsOf(victimDoc);
    QCOMPARE(rows.size(), victimDoc->stateDict.size());
    for (const auto &r : rows)
        QVERIFY2(r.error == changed, qPrintable(r.error));
    QVERIFY(documentTruncated(*victimDoc));
    const auto &first = victimDoc->stateDict.front().ref();
    try {
        (void)ComputeLoader::api().values(first, 0, 4);
        QFAIL("values of a truncated file were handed out");
    } catch (const std::exception &e) {
        QCOMPARE(QString::fromStdString(e.what()), changed);
    }
    try {
        (void)ComputeLoader::api().exportBytes(first, ComputeApi::ExportFormat::Npy);
        QFAIL("a truncated file's tensor was exported");
    } catch (const std::exception &e) {
        QCOMPARE(QString::fromStdString(e.what()), changed);
    }
    // The victim's tab says its file changed on disk, with a link to read it again.
    QTRY_VERIFY_WITH_TIMEOUT(victimView->changedBanner()->isVisibleTo(victimView), 5000);
    QVERIFY(victimView->changedBanner()->text().contains(QFileInfo(victim).fileName()));
    QVERIFY(!goodView->changedBanner()->isVisibleTo(goodView));
    // The window repaints the victim's tab (its tree and table read from the document) and lives.
    w.tabs()->setCurrentIndex(4);
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.grab();

    // The other tabs are untouched: the good file's numbers are still its own.
    QCOMPARE(w.viewCount(), 5);
    QCOMPARE(goodView->state(), DocumentView::State::Loaded);
    QVERIFY(!documentTruncated(*goodView->document()));
    for (const auto &r : statisticsOf(goodView->document())) {
        QVERIFY2(r.error.isEmpty(), qPrintable(r.error));
        QVERIFY(r.stats.count > 0);
        QVERIFY(r.stats.zeroCount < r.stats.count);  // real weights, not a page of zeros
    }

    // Reading the victim again: an error in its own tab, naming it.
    victimView->open(victim);
    QTRY_COMPARE_WITH_TIMEOUT(victimView->state(), DocumentView::State::Failed, 20000);
    QVERIFY2(victimView->errorText().startsWith(victim + ": "), qPrintable(victimView->errorText()));
    QCOMPARE(goodView->state(), DocumentView::State::Loaded);
}

QTEST_MAIN(TestBadInput)
#include "tst_badinput.moc"
