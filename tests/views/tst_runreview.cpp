// The Run chart and the Compare view's summary on files torch writes (tests/views/run_review_inputs.py):
// the chart draws at first the floating tensors that drifted most with a finite drift (not a counter,
// not a tensor with nothing to draw), breaks a line at a gap rather than bridging it, has no "drift
// from the previous" point at the first checkpoint; a file that cannot be read is left out and named;
// a file without an epoch keeps its place and the summary says so; the Compare view names the
// metadata values and optimizer hyper-parameters that changed.
#include "compareview.h"
#include "pythoninputs.h"
#include "seriesview.h"

#include <QChart>
#include <QChartView>
#include <QFileInfo>
#include <QItemSelectionModel>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLegend>
#include <QLegendMarker>
#include <QLineSeries>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>

using namespace ckpt;

namespace {

QStringList strings(const QJsonValue &v)
{
    QStringList out;
    for (const auto &s : v.toArray())
        out << s.toString();
    return out;
}

// The chart's line segments of one tensor: their x values, in drawing order.
QList<QList<int>> segmentsOf(QChart *chart, const QString &name)
{
    QList<QList<int>> out;
    for (QAbstractSeries *s : chart->series()) {
        auto *line = qobject_cast<QLineSeries *>(s);
        if (!line || line->name() != name)
            continue;
        QList<int> xs;
        for (const QPointF &p : line->points())
            xs << static_cast<int>(std::lround(p.x()));
        out << xs;
    }
    return out;
}

int visibleLegendEntries(QChart *chart, const QString &name)
{
    int n = 0;
    for (QLegendMarker *m : chart->legend()->markers())
        n += m->isVisible() && m->label() == name;
    return n;
}

void saveShot(QWidget &w, const QString &name)
{
    if (qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
        return;
    QTest::qWait(200);  // the layout settles (a summary grown by a line) before the grab
    w.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QLatin1Char('/') + name);
}

} // namespace

class TestRunReview : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void chartDrawsWeightsThatDrifted();
    void lineBreaksAtAGap();
    void noPreviousAtTheFirst();
    void unreadableFileLeftOut();
    void fileWithoutEpochKeepsItsPlace();
    void compareSaysValuesAndOptimizer();

private:
    QTemporaryDir m_dir;
    QJsonObject m_expected;
    bool load(SeriesView &view, const QStringList &files)
    {
        view.resize(1100, 700);
        view.show();
        QSignalSpy done(&view, &SeriesView::finished);
        view.setFiles(files);
        return done.wait(120000) && done.first().first().toBool();
    }
};

void TestRunReview::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/run_review_inputs.py"), m_dir.path(), error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
}

void TestRunReview::chartDrawsWeightsThatDrifted()
{
    SeriesView view;
    QVERIFY(load(view, strings(m_expected.value("run"))));
    QStringList selected;
    for (const QModelIndex &r : view.table()->selectionModel()->selectedRows())
        selected << r.data().toString();
    QStringList want = strings(m_expected.value("selection"));
    selected.sort();
    want.sort();
    QCOMPARE(selected, want);  // torch's eight largest finite drifts among floating tensors
    QVERIFY(!selected.contains(m_expected.value("counter").toString()));
    for (const QString &n : strings(m_expected.value("nothing_to_draw")))
        QVERIFY2(!selected.contains(n), qPrintable(n));
    // Every selected tensor has a line to draw.
    for (const QString &n : std::as_const(selected))
        QVERIFY2(!segmentsOf(view.chart()->chart(), n).isEmpty(), qPrintable(n));
    saveShot(view, QStringLiteral("run-drift-from-first.png"));
}

void TestRunReview::lineBreaksAtAGap()
{
    SeriesView view;
    QVERIFY(load(view, strings(m_expected.value("run"))));
    const QJsonObject runs = m_expected.value("runs").toObject();
    for (auto it = runs.begin(); it != runs.end(); ++it) {
        QList<QList<int>> want;
        for (const auto &seg : it.value().toArray()) {
            QList<int> xs;
            for (const auto &x : seg.toArray())
                xs << x.toInt();
            want << xs;
        }
        QCOMPARE(segmentsOf(view.chart()->chart(), it.key()), want);  // torch's runs of finite drifts
        QCOMPARE(visibleLegendEntries(view.chart()->chart(), it.key()), 1);
    }
}

void TestRunReview::noPreviousAtTheFirst()
{
    SeriesView view;
    QVERIFY(load(view, strings(m_expected.value("run"))));
    view.setMetric(SeriesView::Metric::DriftFromPrevious);
    int drawn = 0;
    for (QAbstractSeries *s : view.chart()->chart()->series())
        for (const QPointF &p : static_cast<QLineSeries *>(s)->points()) {
            ++drawn;
            QVERIFY2(std::lround(p.x()) != 0, qPrintable(static_cast<QLineSeries *>(s)->name()));
        }
    QVERIFY(drawn > 0);
    saveShot(view, QStringLiteral("run-drift-from-previous.png"));
}

void TestRunReview::unreadableFileLeftOut()
{
    SeriesView view;
    QStringList files = strings(m_expected.value("run"));
    const QStringList bad = strings(m_expected.value("unreadable"));
    files.insert(2, bad[0]);
    files << bad[1];
    QVERIFY(load(view, files));
    QCOMPARE(view.model()->columnCount(), 1 + m_expected.value("run").toArray().size());
    QVERIFY(view.model()->rowCount() > 0);
    for (const QString &f : bad)
        QVERIFY2(view.summary()->text().contains(QStringLiteral("Left out, cannot be read: ")) &&
                     view.summary()->text().contains(f),
                 qPrintable(view.summary()->text()));
    QVERIFY(!view.chart()->chart()->series().isEmpty());
    saveShot(view, QStringLiteral("run-left-out.png"));
}

void TestRunReview::fileWithoutEpochKeepsItsPlace()
{
    SeriesView view;
    const QJsonObject order = m_expected.value("order").toObject();
    QVERIFY(load(view, strings(order.value("given"))));
    const QStringList want = strings(order.value("ordered"));
    QCOMPARE(view.model()->columnCount(), 1 + want.size());
    for (int c = 0; c < want.size(); ++c)
        QCOMPARE(view.model()->horizontalHeaderItem(c + 1)->toolTip(), QFileInfo(want[c]).absoluteFilePath());
    QVERIFY2(view.summary()->text().contains(QStringLiteral("no epoch")) &&
                 view.summary()->text().contains(QStringLiteral("final.pth")),
             qPrintable(view.summary()->text()));
}

void TestRunReview::compareSaysValuesAndOptimizer()
{
    const QJsonObject opt = m_expected.value("optimizer").toObject();
    CompareView view;
    view.resize(1100, 700);
    view.show();
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(opt.value("a").toString(), opt.value("b").toString(), 0, 0);
    QVERIFY(done.wait(60000));
    const QString text = view.summary()->text();
    QVERIFY2(text.contains(QStringLiteral("epoch: 1 \u2192 2")), qPrintable(text));
    const QStringList changes = strings(opt.value("changes"));
    QVERIFY(!changes.isEmpty());
    for (const QString &c : changes)
        QVERIFY2(text.contains(c.toHtmlEscaped()), qPrintable(c + QStringLiteral(" in ") + text));
    saveShot(view, QStringLiteral("compare-optimizer.png"));
    // Equal optimizers say so.
    QSignalSpy again(&view, &CompareView::finished);
    view.compare(opt.value("a").toString(), opt.value("a").toString(), 0, 0);
    QVERIFY(again.wait(60000));
    QVERIFY2(view.summary()->text().contains(QStringLiteral("optimizer: unchanged")), qPrintable(view.summary()->text()));
}

QTEST_MAIN(TestRunReview)
#include "tst_runreview.moc"
