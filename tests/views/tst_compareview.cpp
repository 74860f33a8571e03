// Compare and series views, offscreen, against PyTorch's figures for the same files
// (expected.json "__compare__", written by the fixture generator): per-tensor change, the
// "changed only" filter, histograms of both files and of the difference as torch.histc counts
// them, a run's norms and drifts in epoch order, and cancel.
#include "comparison.h"
#include "comparisonmodel.h"
#include "compareview.h"
#include "histogramchart.h"
#include "seriesview.h"
#include "testdata.h"
#include "valuetext.h"

#include <QAbstractItemModelTester>
#include <QAreaSeries>
#include <QValueAxis>
#include <QLineSeries>
#include <QChart>
#include <QChartView>
#include <QHash>
#include <QCheckBox>
#include <QItemSelectionModel>
#include <QSet>
#include <QColor>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QTableView>
#include <QTest>
#include <QTreeView>

#include <cmath>
#include <functional>
#include <limits>

using namespace ckpt;

namespace {

QJsonObject compareSection() { return test::expectedListing().value(QStringLiteral("__compare__")).toObject(); }

bool near(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b)); }

QList<qint64> countsOf(const QJsonValue &v)
{
    QList<qint64> out;
    for (const auto &c : v.toObject().value(QStringLiteral("counts")).toArray())
        out << c.toInteger();
    return out;
}

QList<qint64> countsOf(const Histogram &h) { return QList<qint64>(h.counts.begin(), h.counts.end()); }

// Each tensor row of the view against PyTorch's figures for it (expected.json's "tensors").
void checkTensorRows(CompareView &view, const QJsonObject &tensors)
{
    for (auto it = tensors.begin(); it != tensors.end(); ++it) {
        const QModelIndex row = view.model()->indexOfPath(it.key());
        QVERIFY2(row.isValid(), qPrintable(it.key()));
        const QJsonObject want = it.value().toObject();
        QCOMPARE(row.data(ComparisonModel::StatusRole).toString(), want.value("status").toString());
        QVERIFY2(near(row.siblingAtColumn(ComparisonModel::MaxAbsColumn).data(ComparisonModel::SortRole).toDouble(),
                      want.value("max_abs_diff").toDouble()), qPrintable(it.key()));
        if (!want.value("relative_l2").isNull())
            QVERIFY2(near(row.data(ComparisonModel::MagnitudeRole).toDouble(), want.value("relative_l2").toDouble()),
                     qPrintable(it.key()));
        if (!want.value("cosine").isNull())
            QVERIFY2(near(row.siblingAtColumn(ComparisonModel::CosineColumn).data(ComparisonModel::SortRole).toDouble(),
                          want.value("cosine").toDouble()), qPrintable(it.key()));
        // Rows whose values moved carry a colour; identical ones and equal values in another dtype none.
        const QJsonValue rel = want.value("relative_l2");
        const bool moved = want.value("status").toString() != QLatin1String("identical") && (rel.isNull() || rel.toDouble() != 0);
        QCOMPARE(row.data(Qt::BackgroundRole).isValid(), moved);
    }
}

} // namespace

class TestCompareView : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void cosineKeepsItsGapToOne();
    void identicalTensorsHaveCosineOne();
    void compareMatchesTorch();
    void changedOnlyFilter();
    void histogramsMatchTorch();
    void chartsSayWhatToSelect();
    void histogramColoursFollowThePalette();
    void histogramTicksReadApart();
    void histogramEdgesAtTheEndsOfFloat64();
    void prefixedFilesAlign();
    void unreadableFileIsReported();
    void cancelLeavesNothingRunning();
    void seriesMatchesTorch();
    void seriesListsEveryTensor();
    void seriesShowsDivergence();
    void integerTensorsExactly();
    void toleranceFieldsCompareAgain();
    void moduleRowsRollUpTolerance_data();
    void moduleRowsRollUpTolerance();
    void divergedRowsSayItAndComeFirst();
    void moduleFiguresAsCkptDiff_data();
    void moduleFiguresAsCkptDiff();
    void seriesSaysSelectionIsPlotted();
};

void TestCompareView::compareMatchesTorch()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(1).toObject();  // atol 1e-6
    QVERIFY2(!pair.isEmpty(), "regenerate the fixtures");
    CompareView view;
    QAbstractItemModelTester tester(view.model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester proxyTester(view.proxy(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()),
                 pair.value("atol").toDouble(), pair.value("rtol").toDouble());
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);
    QVERIFY(view.summary()->text().contains(QStringLiteral("Weights differ")));
    // Side by side: each file with its kind, tensor count and epoch.
    QVERIFY2(view.sideA()->text().contains(QStringLiteral("base.pth")) && view.sideA()->text().contains(QStringLiteral("epoch 1")) &&
                 view.sideA()->text().contains(QStringLiteral("8 tensors")), qPrintable(view.sideA()->text()));
    QVERIFY2(view.sideB()->text().contains(QStringLiteral("finetuned.pth")) && view.sideB()->text().contains(QStringLiteral("epoch 5")) &&
                 view.sideB()->text().contains(QStringLiteral("8 tensors")), qPrintable(view.sideB()->text()));

    checkTensorRows(view, pair.value(QStringLiteral("tensors")).toObject());
    if (QTest::currentTestFailed())
        return;
    // Module rows: PyTorch's per-module sums.
    const QJsonObject modules = pair.value(QStringLiteral("modules")).toObject();
    for (auto it = modules.begin(); it != modules.end(); ++it) {
        const QModelIndex row = view.model()->indexOfPath(it.key());
        QVERIFY2(row.isValid(), qPrintable(it.key()));
        const QJsonObject want = it.value().toObject();
        if (!want.value("relative_l2").isNull())
            QVERIFY2(near(row.data(ComparisonModel::MagnitudeRole).toDouble(), want.value("relative_l2").toDouble()),
                     qPrintable(it.key()));
    }
    for (const auto &name : pair.value(QStringLiteral("removed")).toArray())
        QCOMPARE(view.model()->indexOfPath(name.toString()).data(ComparisonModel::StatusRole).toString(), QStringLiteral("removed"));
    for (const auto &name : pair.value(QStringLiteral("added")).toArray())
        QCOMPARE(view.model()->indexOfPath(name.toString()).data(ComparisonModel::StatusRole).toString(), QStringLiteral("added"));
}

void TestCompareView::changedOnlyFilter()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(0).toObject();
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()));
    QVERIFY(done.wait(60000));
    const QModelIndex identical = view.model()->indexOfPath(QStringLiteral("encoder.0.weight"));
    QCOMPARE(identical.data(ComparisonModel::StatusRole).toString(), QStringLiteral("identical"));
    QVERIFY(view.proxy()->mapFromSource(identical).isValid());
    view.changedOnly()->setChecked(true);
    QVERIFY(!view.proxy()->mapFromSource(identical).isValid());
    QVERIFY(!view.proxy()->mapFromSource(view.model()->indexOfPath(QStringLiteral("encoder.0"))).isValid());
    QVERIFY(view.proxy()->mapFromSource(view.model()->indexOfPath(QStringLiteral("head.weight"))).isValid());
    QVERIFY(view.proxy()->mapFromSource(view.model()->indexOfPath(QStringLiteral("aux.weight"))).isValid());
    view.filter()->setText(QStringLiteral("bias"));
    QVERIFY(view.proxy()->mapFromSource(view.model()->indexOfPath(QStringLiteral("head.bias"))).isValid());
    QVERIFY(!view.proxy()->mapFromSource(view.model()->indexOfPath(QStringLiteral("head.weight"))).isValid());
}

void TestCompareView::histogramsMatchTorch()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(0).toObject();
    const QJsonObject histograms = pair.value(QStringLiteral("histograms")).toObject();
    QVERIFY(!histograms.isEmpty());
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()));
    QVERIFY(done.wait(60000));
    for (auto it = histograms.begin(); it != histograms.end(); ++it) {
        QSignalSpy ready(&view, &CompareView::histogramsReady);
        QVERIFY(view.selectPath(it.key()));
        QVERIFY(ready.wait(30000));
        const QJsonObject want = it.value().toObject();
        const auto &values = view.valuesChart()->curves();
        QCOMPARE(values.size(), std::size_t(2));
        QCOMPARE(countsOf(values[0].histogram), countsOf(want.value("a")));
        QCOMPARE(countsOf(values[1].histogram), countsOf(want.value("b")));
        const auto &diff = view.differenceChart()->curves();
        QCOMPARE(diff.size(), std::size_t(1));
        QCOMPARE(countsOf(diff[0].histogram), countsOf(want.value("diff")));
        QVERIFY(near(diff[0].histogram.low, want.value("diff").toObject().value("low").toDouble()));
        QVERIFY(near(diff[0].histogram.high, want.value("diff").toObject().value("high").toDouble()));
        QVERIFY(view.figures()->text().contains(QStringLiteral("relative L2")));
    }
    // A removed tensor shows its one histogram, and no difference.
    QSignalSpy ready(&view, &CompareView::histogramsReady);
    QVERIFY(view.selectPath(QStringLiteral("aux.weight")));
    QVERIFY(ready.wait(30000));
    QCOMPARE(view.valuesChart()->curves().size(), std::size_t(1));
    QVERIFY(view.differenceChart()->curves().empty());
}

// Before a tensor is picked the two charts say what they will show, in the palette's colours.
void TestCompareView::chartsSayWhatToSelect()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(0).toObject();
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()));
    QVERIFY(done.wait(60000));
    for (HistogramChart *chart : {view.valuesChart(), view.differenceChart()}) {
        QVERIFY(chart->curves().empty());
        QVERIFY2(chart->message().startsWith(QStringLiteral("Select a tensor")), qPrintable(chart->message()));
        QCOMPARE(chart->chart()->title(), chart->message());
        QCOMPARE(chart->chart()->backgroundBrush().color(), chart->palette().color(QPalette::Window));
    }
    QSignalSpy ready(&view, &CompareView::histogramsReady);
    const QString path = pair.value(QStringLiteral("histograms")).toObject().begin().key();
    QVERIFY(view.selectPath(path));
    QVERIFY(ready.wait(30000));
    QVERIFY(view.valuesChart()->message().isEmpty());
    QCOMPARE(view.valuesChart()->chart()->backgroundBrush().color(), view.valuesChart()->palette().color(QPalette::Base));
}

// The histogram bars stand out from the chart in a light and in a dark palette: the highlight
// colour is stepped away from the background when it is too close (a dark theme's selection blue).
void TestCompareView::histogramColoursFollowThePalette()
{
    HistogramChart chart;
    Histogram h;
    h.low = 0;
    h.high = 1;
    h.counts = {1, 3, 2};
    chart.setCurves({{QStringLiteral("counts"), h, QColor()}});
    auto barColour = [&chart] {
        const auto series = chart.chart()->series();
        return series.isEmpty() ? QColor() : static_cast<QAreaSeries *>(series.first())->brush().color();
    };
    for (const bool dark : {false, true}) {
        QPalette p = chart.palette();
        p.setColor(QPalette::Base, dark ? QColor(0x1e, 0x1e, 0x1e) : Qt::white);
        p.setColor(QPalette::Window, dark ? QColor(0x2b, 0x2b, 0x2b) : QColor(0xef, 0xef, 0xef));
        p.setColor(QPalette::Highlight, dark ? QColor(0x3d, 0x6f, 0xb3) : QColor(0x30, 0x8c, 0xc6));
        chart.setPalette(p);  // the chart is redrawn in the new colours
        const QColor bar = barColour();
        QVERIFY(bar.isValid());
        QVERIFY2(std::abs(bar.lightness() - p.color(QPalette::Base).lightness()) >= 100,
                 qPrintable(QStringLiteral("%1 on %2").arg(bar.name(), p.color(QPalette::Base).name())));
        QCOMPARE(chart.chart()->backgroundBrush().color(), p.color(QPalette::Base));
        // Still the highlight's hue: the theme's colour, not a fixed one.
        QVERIFY(std::abs(bar.hslHue() - p.color(QPalette::Highlight).hslHue()) <= 6);
    }
}

// A narrow range far from zero (differences of 0.00999999 … 0.01000001) gets tick labels that
// read apart, not six times "0.01".
void TestCompareView::histogramTicksReadApart()
{
    HistogramChart chart;
    Histogram h;
    h.low = 0.00999999;
    h.high = 0.01000001;
    h.counts = {1, 3, 2, 5};
    chart.setCurves({{QStringLiteral("difference"), h, QColor()}});
    const auto axes = chart.chart()->axes(Qt::Horizontal);
    QCOMPARE(axes.size(), 1);
    auto *x = qobject_cast<QValueAxis *>(axes.first());
    QVERIFY(x);
    QStringList labels;
    for (int i = 0; i < x->tickCount(); ++i) {
        const double v = x->min() + (x->max() - x->min()) * i / (x->tickCount() - 1);
        labels << QString::asprintf(qPrintable(x->labelFormat()), v);
    }
    QCOMPARE(QSet<QString>(labels.begin(), labels.end()).size(), labels.size());
}

// Bins over a range past float64 (its width overflows) and a constant past 2^53 (v + 1 is v) are
// drawn where their values are: every edge finite, in order, from the range's low to its high.
void TestCompareView::histogramEdgesAtTheEndsOfFloat64()
{
    const double max = std::numeric_limits<double>::max();
    HistogramChart chart;
    for (const auto &[low, high] : {std::pair{-max, max}, std::pair{0x1p60, 0x1p60}, std::pair{max, max}}) {
        Histogram h;
        h.low = low;
        h.high = high;
        h.counts = {1, 0, 2, 1};
        chart.setCurves({{QStringLiteral("counts"), h, QColor()}});
        const auto series = chart.chart()->series();
        QCOMPARE(series.size(), 1);
        const auto points = static_cast<QAreaSeries *>(series.first())->upperSeries()->points();
        QCOMPARE(points.size(), 8);
        const QString where = QStringLiteral("[%1, %2]").arg(low).arg(high);
        for (int i = 0; i < points.size(); ++i) {
            QVERIFY2(std::isfinite(points[i].x()), qPrintable(where));
            if (i > 0)
                QVERIFY2(points[i].x() >= points[i - 1].x(), qPrintable(where));
        }
        QVERIFY2(points.last().x() > points.first().x(), qPrintable(where));
        if (high > low)
            QVERIFY(points.first().x() == low && points.last().x() == high);
    }
}

void TestCompareView::prefixedFilesAlign()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(2).toObject();  // module. prefix
    QVERIFY(pair.value("equal").toBool());
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()));
    QVERIFY(done.wait(60000));
    QVERIFY(view.summary()->text().contains(QStringLiteral("Weights equal")));
    QVERIFY(view.summary()->text().contains(QStringLiteral("module.")));
    view.changedOnly()->setChecked(true);
    QCOMPARE(view.proxy()->rowCount(), 0);
}

void TestCompareView::unreadableFileIsReported()
{
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(QStringLiteral("state_dict.pth")), test::fixturePath(QStringLiteral("not_a_checkpoint.pth")));
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), false);
    QVERIFY(view.summary()->text().contains(QStringLiteral("not_a_checkpoint.pth")));
    QCOMPARE(view.model()->rowCount(), 0);
}

void TestCompareView::cancelLeavesNothingRunning()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(0).toObject();
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()));
    QVERIFY(view.isRunning());
    view.cancel();
    QVERIFY(!view.isRunning());
    QCOMPARE(done.size(), 1);
    QCOMPARE(done.first().first().toBool(), false);
    QTest::qWait(200);  // the abandoned job's end changes nothing
    QCOMPARE(view.model()->rowCount(), 0);
    QCOMPARE(done.size(), 1);
}

// The checkpoints of a run the generator wrote ({"files": [...]} of expected.json), as paths.
static QStringList runFiles(const QJsonObject &run)
{
    QStringList files;
    for (const auto &f : run.value("files").toArray())
        files << test::fixturePath(f.toString());
    return files;
}

void TestCompareView::seriesMatchesTorch()
{
    const QJsonObject series = compareSection().value(QStringLiteral("series")).toObject();
    SeriesView view;
    QSignalSpy done(&view, &SeriesView::finished);
    view.setFiles(runFiles(series));
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);
    QStandardItemModel *m = view.model();
    const QJsonArray epochs = series.value("epochs").toArray();
    QCOMPARE(m->columnCount(), 1 + epochs.size());
    for (int c = 0; c < epochs.size(); ++c)
        QCOMPARE(m->horizontalHeaderItem(c + 1)->text(), QStringLiteral("epoch %1").arg(epochs[c].toInt()));
    const QJsonObject layers = series.value("layers").toObject();
    QCOMPARE(m->rowCount(), layers.size());
    struct Metric {
        SeriesView::Metric metric;
        const char *key;
    };
    for (const Metric &metric : {Metric{SeriesView::Metric::Norm, "norm"}, Metric{SeriesView::Metric::DriftFromFirst, "drift_from_first"},
                                 Metric{SeriesView::Metric::DriftFromPrevious, "drift_from_previous"}}) {
        view.setMetric(metric.metric);
        for (int r = 0; r < m->rowCount(); ++r) {
            const QJsonArray want = layers.value(m->item(r, 0)->text()).toObject().value(QLatin1String(metric.key)).toArray();
            QCOMPARE(want.size(), epochs.size());
            for (int c = 0; c < want.size(); ++c)
                QVERIFY2(near(m->item(r, c + 1)->data(Qt::UserRole).toDouble(), want[c].toDouble()),
                         qPrintable(QStringLiteral("%1 %2 #%3").arg(m->item(r, 0)->text(), metric.key).arg(c)));
        }
        // Every tensor is drawn (fewer than the default eight).
        QCOMPARE(view.chart()->chart()->series().size(), layers.size());
    }
}

// A weight that went to inf, then NaN: the figures are torch's (written 'inf' and 'nan'), the
// diverged tensor sorts first, and the chart draws only finite points.
void TestCompareView::seriesShowsDivergence()
{
    const QJsonObject div = compareSection().value(QStringLiteral("series")).toObject().value(QStringLiteral("diverging")).toObject();
    QVERIFY2(!div.isEmpty(), "regenerate the fixtures");
    SeriesView view;
    QSignalSpy done(&view, &SeriesView::finished);
    view.setFiles(runFiles(div));
    QVERIFY(done.wait(60000));
    view.setMetric(SeriesView::Metric::Norm);
    QStandardItemModel *m = view.model();
    const QJsonObject norms = div.value("norm").toObject();
    for (int r = 0; r < m->rowCount(); ++r) {
        const QString name = m->item(r, 0)->text();
        const QJsonArray want = norms.value(name).toArray();
        QCOMPARE(want.size(), 3);
        for (int c = 0; c < 3; ++c) {
            const QString torch = want[c].toString();  // Python's repr: 'inf', 'nan' or a number
            if (torch == QStringLiteral("inf") || torch == QStringLiteral("nan"))
                QCOMPARE(m->item(r, c + 1)->text(), torch);
            else
                QVERIFY(near(m->item(r, c + 1)->data(Qt::UserRole).toDouble(), torch.toDouble()));
        }
    }
    const QModelIndexList selected = view.table()->selectionModel()->selectedRows();
    QVERIFY(!selected.isEmpty());
    // Sorted by the last checkpoint, the diverged tensor (nan, inf) comes first in the table; the
    // chart, which has no point to draw for it there, draws only finite points.
    view.table()->sortByColumn(m->columnCount() - 1, Qt::DescendingOrder);
    QCOMPARE(m->item(0, 0)->text(), div.value("diverged").toString());
    for (auto *series : view.chart()->chart()->series())
        for (const QPointF &p : static_cast<QLineSeries *>(series)->points())
            QVERIFY(std::isfinite(p.y()));

    // Under the chart, the drawn tensor whose line breaks says so, at each checkpoint where torch's
    // norm is nan or inf (epoch k here: the files record epochs 0, 1, 2), and at no other. Another
    // drawn alone: no note. The table sorted since: the note follows the row, not its old place.
    QLabel *note = view.nonFiniteNote();
    const auto drawAlone = [&](const QString &name) {
        for (int r = 0; r < m->rowCount(); ++r)
            if (m->item(r, 0)->text() == name)
                view.table()->selectRow(r);
    };
    const QString diverged = div.value("diverged").toString();
    drawAlone(diverged);
    QVERIFY(note->isVisibleTo(&view));
    const QString text = note->text();
    const QJsonArray torchNorms = norms.value(diverged).toArray();
    for (int c = 0; c < torchNorms.size(); ++c) {
        const bool nonFinite = torchNorms[c].toString() == QLatin1String("inf") || torchNorms[c].toString() == QLatin1String("nan");
        QVERIFY2(text.contains(QStringLiteral("epoch %1 (").arg(c)) == nonFinite, qPrintable(text));
    }
    QVERIFY2(text.contains(diverged + QStringLiteral(": NaN or Inf values at epoch")), qPrintable(text));
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS")) {
        view.resize(1000, 700);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QTest::qWait(50);
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/series-nonfinite.png"));
    }
    for (int r = 0; r < m->rowCount(); ++r)
        if (m->item(r, 0)->text() != diverged)
            drawAlone(m->item(r, 0)->text());
    QVERIFY(!note->isVisibleTo(&view));
}

// A run whose first checkpoint lacks a tensor and where another changes shape: every tensor is a
// row, the norm is each checkpoint's own, and a figure that cannot be given says why.
void TestCompareView::seriesListsEveryTensor()
{
    const QJsonObject grow = compareSection().value(QStringLiteral("series")).toObject().value(QStringLiteral("growing")).toObject();
    QVERIFY2(!grow.isEmpty(), "regenerate the fixtures");
    SeriesView view;
    QSignalSpy done(&view, &SeriesView::finished);
    view.setFiles(runFiles(grow));
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);
    QStandardItemModel *m = view.model();
    QCOMPARE(m->rowCount(), 2);
    QVERIFY2(view.summary()->text().contains(QStringLiteral("3 checkpoints, 2 tensors")) &&
                 view.summary()->text().contains(QStringLiteral("absent from some checkpoints")),
             qPrintable(view.summary()->text()));
    for (const char *key : {"norm", "drift_from_previous"}) {
        view.setMetric(QLatin1String(key) == QLatin1String("norm") ? SeriesView::Metric::Norm : SeriesView::Metric::DriftFromPrevious);
        const QJsonObject want = grow.value(QLatin1String(key)).toObject();
        for (int r = 0; r < m->rowCount(); ++r) {
            const QString name = m->item(r, 0)->text();
            const QJsonArray values = want.value(name).toArray();
            QVERIFY2(values.size() == 3, qPrintable(name));
            for (int c = 0; c < 3; ++c) {
                const QStandardItem *item = m->item(r, c + 1);
                const QString where = QStringLiteral("%1 %2 #%3: %4").arg(name, QLatin1String(key)).arg(c).arg(item->text());
                if (values[c].isNull())
                    QVERIFY2(item->text() == QStringLiteral("absent") || item->text() == QStringLiteral("not comparable"),
                             qPrintable(where));
                else
                    QVERIFY2(near(item->data(Qt::UserRole).toDouble(), values[c].toDouble()), qPrintable(where));
            }
        }
    }
    // w's drift from the previous between epochs 0 and 1 is not comparable: the shape changed.
    for (int r = 0; r < m->rowCount(); ++r)
        if (m->item(r, 0)->text() == QStringLiteral("w"))
            QCOMPARE(m->item(r, 2)->toolTip(), QStringLiteral("shape changed"));
}

// Integer tensors compared on their integers: a counter past 2^53 that moved by one has changed
// (in float64 both round to the same value), and each status and figure is PyTorch's.
void TestCompareView::integerTensorsExactly()
{
    QJsonObject pair;
    for (const auto &p : compareSection().value(QStringLiteral("pairs")).toArray())
        if (p.toObject().value("b").toString().endsWith(QLatin1String("counts_b.pth")) && p.toObject().value("atol").toDouble() == 0)
            pair = p.toObject();
    QVERIFY2(!pair.isEmpty(), "regenerate the fixtures");
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()), 0, 0);
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);
    const QJsonObject tensors = pair.value(QStringLiteral("tensors")).toObject();
    QCOMPARE(tensors.value("tracker.num_batches").toObject().value("status").toString(), QStringLiteral("different"));
    checkTensorRows(view, tensors);
}

// Typing a tolerance and pressing Enter compares again: the rows become PyTorch's for that
// tolerance (the pair with atol 1e-3 and rtol 1e-3: float32 against its float16 copy), and the
// selected tensor stays selected.
void TestCompareView::toleranceFieldsCompareAgain()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(3).toObject();
    QCOMPARE(pair.value("atol").toDouble(), 1e-3);
    QCOMPARE(pair.value("rtol").toDouble(), 1e-3);
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()));
    QVERIFY(done.wait(60000));
    QCOMPARE(view.atolEdit()->text(), QStringLiteral("0"));
    QCOMPARE(view.rtolEdit()->text(), QStringLiteral("0"));
    const QString exact = view.summary()->text();
    QVERIFY(view.selectPath(QStringLiteral("head.weight")));

    // Typing is checked: a minus sign is not taken.
    view.atolEdit()->clear();
    QTest::keyClicks(view.atolEdit(), QStringLiteral("-1e-3"));
    QCOMPARE(view.atolEdit()->text(), QStringLiteral("1e-3"));
    done.clear();
    QTest::keyClick(view.atolEdit(), Qt::Key_Return);
    QVERIFY(done.wait(60000));
    view.rtolEdit()->clear();
    QTest::keyClicks(view.rtolEdit(), QStringLiteral("0.001"));
    done.clear();
    QTest::keyClick(view.rtolEdit(), Qt::Key_Return);
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);

    checkTensorRows(view, pair.value(QStringLiteral("tensors")).toObject());
    if (QTest::currentTestFailed())
        return;
    int close = 0;
    const QJsonObject tensors = pair.value(QStringLiteral("tensors")).toObject();
    for (const auto &t : tensors)
        close += t.toObject().value("status").toString() == QLatin1String("close");
    QVERIFY(close > 0);
    const QString within = QStringLiteral(" %1 within tolerance").arg(close);
    QVERIFY2(view.summary()->text().contains(within), qPrintable(view.summary()->text()));
    QVERIFY2(!exact.contains(within), qPrintable(exact));
    const QModelIndex current = view.proxy()->mapToSource(view.tree()->currentIndex());
    QCOMPARE(current.data(ComparisonModel::PathRole).toString(), QStringLiteral("head.weight"));

    // Enter with nothing changed does not compare again.
    done.clear();
    QTest::keyClick(view.rtolEdit(), Qt::Key_Return);
    QTest::qWait(100);
    QVERIFY(!view.isRunning());
    QCOMPARE(done.size(), 0);
}

void TestCompareView::moduleRowsRollUpTolerance_data()
{
    QTest::addColumn<int>("pair");
    QTest::addColumn<bool>("changedOnlyFirst");
    const QJsonArray pairs = compareSection().value(QStringLiteral("pairs")).toArray();
    for (int i = 0; i < pairs.size(); ++i) {
        const QJsonObject p = pairs.at(i).toObject();
        for (bool changedOnly : {false, true})
            QTest::addRow("%d %s-%s atol %g%s", i, qPrintable(p.value("a").toString()), qPrintable(p.value("b").toString()),
                          p.value("atol").toDouble(), changedOnly ? " changed only" : "")
                << i << changedOnly;
    }
}

// A module row says the worst change under it, from PyTorch's status of each tensor: identical
// when all are, within tolerance when all are identical or within, else changed (a tensor added or
// removed is a change); its colour follows. And no row's Change text is elided, however deep.
void TestCompareView::moduleRowsRollUpTolerance()
{
    QFETCH(int, pair);
    const QJsonObject p = compareSection().value(QStringLiteral("pairs")).toArray().at(pair).toObject();
    if (!p.value(QStringLiteral("map")).toArray().isEmpty())
        QSKIP("PyTorch's figures are for renamed tensors (--map); the view compares names as they are");
    QFETCH(bool, changedOnlyFirst);
    CompareView view;
    view.resize(1200, 700);
    view.show();
    // Rows hidden while the columns are sized (changed only) must fit when they are shown.
    view.changedOnly()->setChecked(changedOnlyFirst);
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(p.value("a").toString()), test::fixturePath(p.value("b").toString()),
                 p.value("atol").toDouble(), p.value("rtol").toDouble());
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);

    // Each tensor path with its rank (0 identical, 1 within tolerance, 2 anything else) and whether
    // its values moved (as checkTensorRows: those rows carry a colour).
    struct Want {
        int rank;
        bool moved;
        qint64 mismatches = 0;  // NaN/Inf mismatches: a module with any says "diverged", as ckpt diff
    };
    QHash<QString, Want> want;
    const QJsonObject tensors = p.value(QStringLiteral("tensors")).toObject();
    for (auto it = tensors.begin(); it != tensors.end(); ++it) {
        const QString status = it.value().toObject().value("status").toString();
        const QJsonValue rel = it.value().toObject().value("relative_l2");
        want.insert(it.key(), {status == QLatin1String("identical") ? 0 : status == QLatin1String("close") ? 1 : 2,
                               status != QLatin1String("identical") && (!rel.isDouble() || rel.toDouble() != 0),
                               it.value().toObject().value("non_finite_mismatches").toInteger()});
    }
    for (const char *side : {"added", "removed"})
        for (const auto &name : p.value(QLatin1String(side)).toArray())
            want.insert(name.toString(), {2, true});
    const QStringList words{QStringLiteral("identical"), QStringLiteral("within tolerance"), QStringLiteral("changed")};

    int modules = 0;
    bool sawWithin = false;
    std::function<void(const QModelIndex &)> walk = [&](const QModelIndex &parent) {
        for (int r = 0; r < view.model()->rowCount(parent); ++r) {
            const QModelIndex row = view.model()->index(r, 0, parent);
            walk(row);
            if (row.data(ComparisonModel::StatusRole).toString() != QLatin1String("module"))
                continue;
            const QString path = row.data(ComparisonModel::PathRole).toString();
            int worst = -1;
            bool moved = false;
            qint64 mismatches = 0;
            for (auto it = want.constBegin(); it != want.constEnd(); ++it)
                if (it.key().startsWith(path + QLatin1Char('.'))) {
                    worst = std::max(worst, it.value().rank);
                    moved = moved || it.value().moved;
                    mismatches += it.value().mismatches;
                }
            QVERIFY2(worst >= 0, qPrintable(path));
            ++modules;
            sawWithin = sawWithin || worst == 1;
            QCOMPARE(row.siblingAtColumn(ComparisonModel::ChangeColumn).data().toString(),
                     mismatches == 0   ? words[worst]
                     : mismatches == 1 ? QStringLiteral("diverged: 1 NaN/Inf mismatch")
                                       : QStringLiteral("diverged: %1 NaN/Inf mismatches").arg(mismatches));
            QVERIFY2(row.data(Qt::BackgroundRole).isValid() == moved, qPrintable(path));
        }
    };
    walk({});
    QVERIFY(modules > 0);
    if (pair == 1)
        QVERIFY2(sawWithin, "pair 1 (atol 1e-6) has modules whose tensors are all within tolerance");

    // Every row, opened or not, fits its Change text.
    view.changedOnly()->setChecked(false);
    view.tree()->expandAll();
    std::function<void(const QModelIndex &)> fits = [&](const QModelIndex &parent) {
        for (int r = 0; r < view.proxy()->rowCount(parent); ++r) {
            const QModelIndex change = view.proxy()->index(r, ComparisonModel::ChangeColumn, parent);
            QVERIFY2(view.tree()->columnWidth(ComparisonModel::ChangeColumn) >= view.tree()->sizeHintForIndex(change).width(),
                     qPrintable(change.data().toString()));
            fits(change.siblingAtColumn(0));
        }
    };
    fits({});
}

// 0.9999998 is not 1: the column and `ckpt diff` say how far from it (one function serves both).
void TestCompareView::cosineKeepsItsGapToOne()
{
    QCOMPARE(QString::fromStdString(cosineText(0.99998)), QStringLiteral("0.99998"));
    QCOMPARE(QString::fromStdString(cosineText(0.9999998)), QStringLiteral("1 - 2e-07"));
    QCOMPARE(QString::fromStdString(cosineText(1.0)), QStringLiteral("1"));
    QCOMPARE(QString::fromStdString(cosineText(1.0000000000000002)), QStringLiteral("1"));  // rounding past 1
    QCOMPARE(QString::fromStdString(cosineText(1.0 - 8.7e-14)), QStringLiteral("1"));  // below the sums' rounding
    QCOMPARE(QString::fromStdString(cosineText(1.0 - 3e-12)), QStringLiteral("1 - 3e-12"));
    QCOMPARE(QString::fromStdString(cosineText(-0.5)), QStringLiteral("-0.5"));
    QCOMPARE(QString::fromStdString(cosineText(std::nan(""))), QStringLiteral("nan"));
}

// A tensor whose NaN or infinity moved (compare/base.pth's stats.running [1, nan, inf, 2] against
// [1, nan, 5, 2.5]) reads small over its finite positions (relative L2 0.22): its row and its
// module's say "diverged" with torch's count of NaN/Inf mismatches, as `ckpt diff` does, colour
// like the table's NaN/Inf rows and sort first; the rest by relative L2, most changed first. Its
// figures give each file's norm as torch does (nan, inf).
// A file against itself: float64's rounding gives some tensors 1 - 2.2e-16 (even 1 + 2.2e-16); the
// view shows what is true of equal values, exactly 1, in the column and in its sort value.
void TestCompareView::identicalTensorsHaveCosineOne()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(1).toObject();
    QVERIFY2(!pair.isEmpty(), "regenerate the fixtures");
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    const QString a = test::fixturePath(pair.value("a").toString());
    view.compare(a, a, 0.0, 0.0);
    QVERIFY(done.wait(60000));
    int checked = 0;
    const QJsonObject tensors = pair.value(QStringLiteral("tensors")).toObject();
    for (auto it = tensors.begin(); it != tensors.end(); ++it) {
        const QModelIndex row = view.model()->indexOfPath(it.key());
        if (!row.isValid() || row.data(ComparisonModel::StatusRole).toString() != QLatin1String("identical"))
            continue;
        const QModelIndex cosine = row.siblingAtColumn(ComparisonModel::CosineColumn);
        if (cosine.data().toString().isEmpty())
            continue;  // a tensor without figures (an integer counter)
        QCOMPARE(cosine.data().toString(), QStringLiteral("1"));
        QCOMPARE(cosine.data(ComparisonModel::SortRole).toDouble(), 1.0);
        ++checked;
    }
    QVERIFY(checked > 0);
}

void TestCompareView::divergedRowsSayItAndComeFirst()
{
    const QJsonObject pair = compareSection().value(QStringLiteral("pairs")).toArray().at(0).toObject();
    const QJsonObject norms = test::expectedListing().value(QStringLiteral("__guiviews__")).toObject()
                                  .value(QStringLiteral("compare_norms")).toObject();
    QVERIFY2(!pair.isEmpty() && !norms.isEmpty(), "regenerate the fixtures");
    CompareView view;
    view.resize(1100, 700);
    view.show();
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(pair.value("a").toString()), test::fixturePath(pair.value("b").toString()));
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);

    QSet<QString> divergedModules;
    int diverged = 0;
    const QJsonObject tensors = pair.value(QStringLiteral("tensors")).toObject();
    for (auto it = tensors.begin(); it != tensors.end(); ++it) {
        const qint64 mismatches = it.value().toObject().value(QStringLiteral("non_finite_mismatches")).toInteger();
        const QModelIndex row = view.model()->indexOfPath(it.key());
        QCOMPARE(row.data(ComparisonModel::NonFiniteMismatchRole).toLongLong(), mismatches);
        const QString change = row.siblingAtColumn(ComparisonModel::ChangeColumn).data().toString();
        if (mismatches == 0) {
            QVERIFY2(!change.contains(QLatin1String("diverged")), qPrintable(it.key() + QLatin1String(": ") + change));
            continue;
        }
        ++diverged;
        const QString want = mismatches == 1 ? QStringLiteral("diverged: 1 NaN/Inf mismatch")
                                             : QStringLiteral("diverged: %1 NaN/Inf mismatches").arg(mismatches);
        QCOMPARE(change, want);
        QCOMPARE(row.data(Qt::BackgroundRole).value<QColor>(), valuetext::nonFiniteBackground());
        QVERIFY(row.data(Qt::ToolTipRole).toString().contains(QLatin1String("NaN or Inf")));
        // Its module says so too (torch's module figures count the same mismatch).
        const QString module = it.key().section(QLatin1Char('.'), 0, -2);
        QVERIFY(pair.value(QStringLiteral("modules")).toObject().value(module).toObject()
                    .value(QStringLiteral("non_finite_mismatches")).toInteger() >= mismatches);
        QVERIFY2(view.model()->indexOfPath(module).siblingAtColumn(ComparisonModel::ChangeColumn).data().toString()
                     .startsWith(QLatin1String("diverged")), qPrintable(module));
        divergedModules.insert(it.key().section(QLatin1Char('.'), 0, 0));
        // The figures: the mismatch said apart, each file's norm as torch gives it.
        QVERIFY(view.selectPath(it.key()));
        const QString figures = view.figures()->text();
        const QJsonArray n = norms.value(it.key()).toArray();
        auto normText = [](const QJsonValue &v) { return v.isString() ? v.toString() : QString::number(v.toDouble(), 'g', 6); };
        QVERIFY2(figures.contains(QStringLiteral("||a|| %1").arg(normText(n.at(0)))) &&
                     figures.contains(QStringLiteral("||b|| %1").arg(normText(n.at(1)))) &&
                     figures.contains(want.section(QLatin1String(": "), 1)),
                 qPrintable(figures));
    }
    QVERIFY2(diverged > 0, "the fixture has a tensor whose NaN or Inf moved");
    QVERIFY2(view.summary()->text().contains(QStringLiteral("%1 diverged").arg(diverged)), qPrintable(view.summary()->text()));

    // Order, top level as shown: the diverged modules first, then by relative L2 (largest first;
    // added, removed and reshaped count as infinite).
    const int rows = view.proxy()->rowCount();
    QVERIFY(rows > divergedModules.size());
    double previous = std::numeric_limits<double>::infinity();
    for (int r = 0; r < rows; ++r) {
        const QModelIndex i = view.proxy()->index(r, 0);
        const QString path = i.data(ComparisonModel::PathRole).toString();
        QCOMPARE(divergedModules.contains(path), r < divergedModules.size());
        if (r < divergedModules.size())
            continue;
        const double m = i.data(ComparisonModel::MagnitudeRole).toDouble();
        // A module whose only change is a tensor added or removed has no figure: it ranks as the
        // structural changes do (infinite).
        const double key = std::isnan(m) ? (i.data(ComparisonModel::ChangedRole).toBool() ? std::numeric_limits<double>::infinity() : 0.0) : m;
        QVERIFY2(key <= previous, qPrintable(path));
        previous = key;
    }
    // The summary is shown whole, not cut by the bar under it.
    QTest::qWait(50);
    QVERIFY2(view.summary()->height() >= view.summary()->heightForWidth(view.summary()->width()),
             qPrintable(QStringLiteral("%1 < %2").arg(view.summary()->height()).arg(view.summary()->heightForWidth(view.summary()->width()))));
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS")) {
        QVERIFY(view.selectPath(QStringLiteral("stats.running")));
        QTest::qWait(200);
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/compare-diverged.png"));
    }
}

// Which tensors the chart draws is decided by the table's selection: a line above the table says so
// and how many are selected.
void TestCompareView::seriesSaysSelectionIsPlotted()
{
    const QJsonObject s = compareSection().value(QStringLiteral("series")).toObject();
    QStringList files;
    for (const auto &f : s.value(QStringLiteral("files")).toArray())
        files << test::fixturePath(f.toString());
    QVERIFY(!files.isEmpty());
    SeriesView view;
    view.resize(900, 600);
    view.show();
    QSignalSpy done(&view, &SeriesView::finished);
    view.setFiles(files);
    QVERIFY(done.wait(60000));
    const int rows = view.model()->rowCount();
    QVERIFY(rows > 1);
    const int selected = static_cast<int>(view.table()->selectionModel()->selectedRows().size());
    QVERIFY(view.hint()->isVisible());
    QVERIFY2(view.hint()->text().contains(QStringLiteral("draws the selected rows (%1 of %2").arg(selected).arg(rows)),
             qPrintable(view.hint()->text()));
    view.table()->selectRow(0);
    QVERIFY2(view.hint()->text().contains(QStringLiteral("(1 of %1").arg(rows)), qPrintable(view.hint()->text()));
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/series-hint.png"));
}

void TestCompareView::moduleFiguresAsCkptDiff_data()
{
    QTest::addColumn<int>("pair");
    const QJsonArray pairs = compareSection().value(QStringLiteral("pairs")).toArray();
    for (int i = 0; i < pairs.size(); ++i) {
        const QJsonObject p = pairs.at(i).toObject();
        if (p.value(QStringLiteral("map")).toArray().isEmpty())  // renamed tensors: the view compares names as they are
            QTest::addRow("%d %s-%s", i, qPrintable(p.value("a").toString()), qPrintable(p.value("b").toString())) << i;
    }
}

// A module row's figures are ckpt diff's for that module, PyTorch's sums over its floating tensors:
// an integer counter beside them (BatchNorm's num_batches_tracked going from 0 to 50) is left out,
// as it would swamp the weights' relative change and the order by it. A module of integer tensors
// only is measured by them.
void TestCompareView::moduleFiguresAsCkptDiff()
{
    QFETCH(int, pair);
    const QJsonObject p = compareSection().value(QStringLiteral("pairs")).toArray().at(pair).toObject();
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(test::fixturePath(p.value("a").toString()), test::fixturePath(p.value("b").toString()),
                 p.value("atol").toDouble(), p.value("rtol").toDouble());
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);
    const QString prefix = QString::fromStdString(view.model()->comparison()->prefixA);
    const QJsonObject modules = p.value(QStringLiteral("modules")).toObject();
    int checked = 0;
    for (auto it = modules.begin(); it != modules.end(); ++it) {
        QString path = it.key();
        if (!prefix.isEmpty() && path.startsWith(prefix))
            path = path.mid(prefix.size());
        const QModelIndex row = view.model()->indexOfPath(path);
        if (path.isEmpty() || !row.isValid())
            continue;  // the top level has no row of its own
        const QJsonObject want = it.value().toObject();
        QVERIFY2(near(row.siblingAtColumn(ComparisonModel::MaxAbsColumn).data(ComparisonModel::SortRole).toDouble(),
                      want.value("max_abs_diff").toDouble()), qPrintable(path));
        if (!want.value("relative_l2").isNull())
            QVERIFY2(near(row.data(ComparisonModel::MagnitudeRole).toDouble(), want.value("relative_l2").toDouble()),
                     qPrintable(QStringLiteral("%1: %2, torch %3").arg(path).arg(row.data(ComparisonModel::MagnitudeRole).toDouble())
                                    .arg(want.value("relative_l2").toDouble())));
        QCOMPARE(row.data(ComparisonModel::NonFiniteMismatchRole).toLongLong(), want.value("non_finite_mismatches").toInteger());
        ++checked;
    }
    QVERIFY(checked > 0 || modules.size() <= 1);
}

QTEST_MAIN(TestCompareView)
#include "tst_compareview.moc"
