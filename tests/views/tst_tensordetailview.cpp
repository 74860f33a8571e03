// The tensor detail pane inside the document view: selection from the table and the tree, values
// and slices, the histogram, export (judged by numpy and PyTorch), a 4096 x 4096 matrix that
// scrolls without being read whole, a missing compute module, and the remembered layout. The
// numbers come from expected.json ("__detail__"), written by PyTorch in generate_fixtures.py.
#include "document.h"
#include "dtype.h"
#include "documenttreemodel.h"
#include "documentview.h"
#include "histogramchart.h"
#include "tensordetailview.h"
#include "tensortablemodel.h"
#include "tensorvaluesmodel.h"
#include "isolatedsettings.h"
#include "testdata.h"
#include "valuetext.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QAbstractAxis>
#include <QAreaSeries>
#include <QChart>
#include <QChartView>
#include <QCheckBox>
#include <QFileDialog>
#include <QGraphicsScene>
#include <QGraphicsTextItem>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QProcess>
#include <QRegularExpression>
#include <QPushButton>
#include <QScrollBar>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableView>
#include <QTextDocument>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QTreeView>
#include <QValueAxis>

#include <algorithm>
#include <cmath>
#include <stdexcept>

using namespace ckpt;

namespace {

QString fixture(const char *name)
{
    return test::fixturePath(QLatin1String(name));
}

QJsonObject detailTensor(const QString &file, const QString &name)
{
    return test::expectedListing()
        .value("__detail__")
        .toObject()
        .value("files")
        .toObject()
        .value(file)
        .toObject()
        .value(name)
        .toObject();
}

// Opens `file` in `view` and waits for it.
bool openAndWait(DocumentView &view, const QString &file)
{
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(file);
    return loaded.wait(30000);
}

// Makes the table's current row the tensor called `name`.
bool selectInTable(DocumentView &view, const QString &name)
{
    for (int r = 0; r < view.tableProxy()->rowCount(); ++r) {
        const QModelIndex i = view.tableProxy()->index(r, TensorTableModel::NameColumn);
        if (i.data().toString() == name) {
            view.tableView()->setCurrentIndex(i);
            return true;
        }
    }
    return false;
}

// Waits until every cell the grid shows has its value.
bool visibleCellsArrive(QTableView *grid)
{
    auto *m = grid->model();
    return QTest::qWaitFor(
        [&] {
            const int r0 = std::max(0, grid->rowAt(0)), c0 = std::max(0, grid->columnAt(0));
            int r1 = grid->rowAt(grid->viewport()->height() - 1), c1 = grid->columnAt(grid->viewport()->width() - 1);
            r1 = r1 < 0 ? m->rowCount() - 1 : r1;
            c1 = c1 < 0 ? m->columnCount() - 1 : c1;
            for (int r = r0; r <= r1; ++r)
                for (int c = c0; c <= c1; ++c)
                    if (!m->index(r, c).data(TensorValuesModel::IsFetchedRole).toBool()) {
                        (void)m->index(r, c).data();
                        return false;
                    }
            return true;
        },
        30000);
}

// The count axis's labels as drawn: the visible text items left of the plot, bottom to top.
QStringList countAxisLabels(const HistogramChart &view)
{
    const QRectF plot = view.chart()->plotArea();
    QList<QPair<qreal, QString>> found;
    for (QGraphicsItem *item : view.scene()->items()) {
        const auto *text = dynamic_cast<QGraphicsTextItem *>(item);
        if (!text || !text->isVisible() || text->toPlainText().isEmpty())
            continue;
        const QRectF r = text->sceneBoundingRect();
        if (r.right() <= plot.left() + 1)
            found.append({-r.center().y(), text->toPlainText()});
    }
    std::sort(found.begin(), found.end());
    QStringList labels;
    for (const auto &[y, t] : found)
        labels << t;
    return labels;
}

// What the linear count axis should read at each of its ticks, bottom to top.
QStringList countAxisTicks(const HistogramChart &view)
{
    const auto *axis = qobject_cast<QValueAxis *>(view.chart()->axes(Qt::Vertical).value(0));
    if (!axis || axis->tickCount() < 2)
        return {QStringLiteral("(no linear count axis)")};
    QStringList ticks;
    for (int i = 0; i < axis->tickCount(); ++i)
        ticks << QString::number(qRound64(axis->min() + (axis->max() - axis->min()) * i / (axis->tickCount() - 1)));
    return ticks;
}

} // namespace

class TestTensorDetailView : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void layout();
    void tableSelectionShowsTensor();
    void treeSelectionShowsTensor();
    void sliceSpinnersChangeValues();
    void histogramMatchesTorch_data();
    void histogramMatchesTorch();
    void logCountAxis();
    void countLabelsReadableInThePane();
    void countLabelsReadableAtEverySize_data();
    void countLabelsReadableAtEverySize();
    void exportJudgedByNumpy();
    void exportButtonAsksForAFile();
    void exportNeverWritesTheInput();
    void metaTensorSaysSo();
    void computeModuleMissing();
    void smallFiguresAreShown();
    void histogramFollowsThePalette();
    void largeTensorScrollsLazily();
    void cancellingStatisticsLeavesDetail();
    void layoutRemembered();
    void statisticsAtTheEdges_data();
    void statisticsAtTheEdges();
    void statisticsNotesSayWhatIsLeftOut();
};

void TestTensorDetailView::initTestCase()
{
    test::isolateSettings(QStringLiteral("Checkpoint Studio Tests"), QStringLiteral("tst_tensordetailview"));
    QSettings().clear();
}

void TestTensorDetailView::layout()
{
    DocumentView view;
    QTabWidget *tabs = view.viewTabs();
    QVERIFY(tabs);
    QCOMPARE(tabs->objectName(), QStringLiteral("views"));
    QCOMPARE(tabs->count(), 6);  // Tensors, Modules, Optimizer, Metadata, Security, Predict
    QCOMPARE(tabs->tabText(0), QStringLiteral("Tensors"));
    auto *split = qobject_cast<QSplitter *>(tabs->widget(0));
    QVERIFY(split);
    QCOMPARE(split->orientation(), Qt::Vertical);
    QVERIFY(split->widget(0)->isAncestorOf(view.tableView()));
    QCOMPARE(split->widget(1), view.detailView());
}

void TestTensorDetailView::tableSelectionShowsTensor()
{
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture("detail.pth")));
    TensorDetailView *detail = view.detailView();
    const auto tester = std::make_unique<QAbstractItemModelTester>(
        detail->valuesModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(detail->tensorName(), view.tableProxy()->index(0, 0).data().toString()); // the first one at once
    QVERIFY(selectInTable(view, QStringLiteral("matrix")));
    QCOMPARE(detail->tensorName(), QStringLiteral("matrix"));
    const QJsonObject e = detailTensor("detail.pth", "matrix");
    const QJsonArray values = e.value("values").toArray();
    auto *title = detail->findChild<QLabel *>(QStringLiteral("detailTitle"));
    QCOMPARE(title->text(), QStringLiteral("matrix"));
    const QString info = detail->findChild<QLabel *>(QStringLiteral("detailInfo"))->text();
    QVERIFY2(info.contains(e.value("dtype").toString()) && info.contains(QStringLiteral("[6, 7]")), qPrintable(info));
    QVERIFY(visibleCellsArrive(detail->valuesView()));
    auto *m = detail->valuesModel();
    QCOMPARE(m->rowCount(), 6);
    QCOMPARE(m->columnCount(), 7);
    for (int r = 0; r < 6; ++r)
        for (int c = 0; c < 7; ++c)
            if (m->index(r, c).data(TensorValuesModel::IsFetchedRole).toBool())
                QCOMPARE(m->index(r, c).data(TensorValuesModel::ValueRole).toDouble(), values[r * 7 + c].toDouble());
    // Statistics: the table's, or the pane's own; either way PyTorch's.
    QTRY_VERIFY_WITH_TIMEOUT(detail->statistics().has_value(), 30000);
    const QJsonObject st = e.value("stats").toObject();
    QVERIFY(std::abs(detail->statistics()->l2 - st.value("l2").toDouble()) < 1e-9 * st.value("l2").toDouble());
    QVERIFY(std::abs(detail->statistics()->mean - st.value("mean").toDouble()) < 1e-9);

    // The element count in English for every size, a scalar's one included ("1 element").
    for (const char *name : {"matrix", "vec", "scalar"}) {
        QVERIFY(selectInTable(view, QLatin1String(name)));
        qint64 numel = 1;
        for (const auto &d : detailTensor("detail.pth", QLatin1String(name)).value("shape").toArray())
            numel *= d.toInteger();
        const QString text = detail->findChild<QLabel *>(QStringLiteral("detailInfo"))->text();
        const QString want = numel == 1 ? QStringLiteral(" 1 element \u00b7") : QStringLiteral(" %1 elements \u00b7").arg(numel);
        QVERIFY2(text.contains(want), qPrintable(text));
    }
}

void TestTensorDetailView::treeSelectionShowsTensor()
{
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture("training_checkpoint.pth")));
    // An optimizer state tensor: in the tree, not in the table.
    const QStringList path{"optimizer_state_dict", "state", "0", "exp_avg"};
    const QModelIndex source = view.treeModel()->indexForPath(path);
    QVERIFY(source.isValid());
    view.treeView()->setCurrentIndex(view.treeProxy()->mapFromSource(source));
    TensorDetailView *detail = view.detailView();
    QCOMPARE(detail->tensorName(), path.join('/'));
    QVERIFY(visibleCellsArrive(detail->valuesView()));
    QTRY_VERIFY_WITH_TIMEOUT(detail->statistics().has_value(), 30000);
    // A state-dict tensor picked in the tree is the table's row too.
    const QModelIndex fc2 = view.treeModel()->indexForPath({"model_state_dict", "fc2.bias"});
    view.treeView()->setCurrentIndex(view.treeProxy()->mapFromSource(fc2));
    QCOMPARE(detail->tensorName(), QStringLiteral("model_state_dict/fc2.bias"));
    const QJsonArray torch =
        test::expectedListing().value("training_checkpoint.pth").toObject().value("tensors").toArray();
    QJsonArray want;
    for (const auto &t : torch)
        if (t.toObject().value("name").toString() == "fc2.bias")
            want = t.toObject().value("values").toArray();
    QVERIFY(!want.isEmpty());
    QVERIFY(visibleCellsArrive(detail->valuesView()));
    for (int r = 0; r < want.size(); ++r)
        QCOMPARE(detail->valuesModel()->index(r, 0).data(TensorValuesModel::ValueRole).toDouble(), want[r].toDouble());
}

void TestTensorDetailView::sliceSpinnersChangeValues()
{
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture("detail.pth")));
    QVERIFY(selectInTable(view, QStringLiteral("hyper")));
    TensorDetailView *detail = view.detailView();
    const QJsonArray values = detailTensor("detail.pth", "hyper").value("values").toArray();
    const QList<QSpinBox *> spins = detail->sliceSpinBoxes();
    QCOMPARE(spins.size(), 2); // [2, 3, 4, 5]: two leading dimensions
    QCOMPARE(spins[0]->maximum(), 1);
    QCOMPARE(spins[1]->maximum(), 2);
    QVERIFY(visibleCellsArrive(detail->valuesView()));
    auto *m = detail->valuesModel();
    QCOMPARE(m->index(0, 0).data(TensorValuesModel::ValueRole).toDouble(), values[0].toDouble());
    spins[0]->setValue(1);
    spins[1]->setValue(2);
    QVERIFY(visibleCellsArrive(detail->valuesView()));
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 5; ++c)
            QCOMPARE(m->index(r, c).data(TensorValuesModel::ValueRole).toDouble(),
                     values[((1 * 3 + 2) * 4 + r) * 5 + c].toDouble());
    // 2-D and 1-D tensors have no slice to pick.
    QVERIFY(selectInTable(view, QStringLiteral("vec")));
    QVERIFY(detail->sliceSpinBoxes().isEmpty());
    QCOMPARE(detail->valuesModel()->columnCount(), 1);
}

void TestTensorDetailView::histogramMatchesTorch_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("name");
    QTest::newRow("matrix") << "detail.pth"
                            << "matrix";
    QTest::newRow("cube") << "detail.pth"
                          << "cube";
    QTest::newRow("vec (NaN, Inf, zeros)") << "detail.pth"
                                           << "vec";
    QTest::newRow("ints") << "detail.pth"
                          << "ints";
    QTest::newRow("half") << "detail.pth"
                          << "half";
    QTest::newRow("complex") << "detail.pth"
                             << "cplx";
    QTest::newRow("quantized") << "special_tensors.pth"
                               << "q";
    QTest::newRow("sparse") << "special_tensors.pth"
                            << "sp";
    QTest::newRow("fc1.weight") << "state_dict.pth"
                                << "fc1.weight";
}

// The pane's histogram has torch.histc's counts over the finite values, min to max, 64 bins.
void TestTensorDetailView::histogramMatchesTorch()
{
    QFETCH(QString, file);
    QFETCH(QString, name);
    const QJsonObject want = detailTensor(file, name).value("histogram").toObject();
    QVERIFY(!want.isEmpty());
    QCOMPARE(want.value("bins").toInt(), TensorDetailView::kHistogramBins);
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture(qPrintable(file))));
    QVERIFY(selectInTable(view, name));
    TensorDetailView *detail = view.detailView();
    QTRY_VERIFY_WITH_TIMEOUT(detail->histogram().has_value(), 30000);
    const Histogram &h = *detail->histogram();
    QList<qint64> got(h.counts.begin(), h.counts.end());
    QList<qint64> expected;
    for (const auto &c : want.value("counts").toArray())
        expected << c.toInteger();
    QCOMPARE(got, expected);
    QVERIFY(std::abs(h.low - want.value("low").toDouble()) <= 1e-12 * std::max(1.0, std::abs(h.low)));
    QVERIFY(std::abs(h.high - want.value("high").toDouble()) <= 1e-12 * std::max(1.0, std::abs(h.high)));
    // The chart draws those counts: one step per bin.
    const auto series = detail->histogramView()->chart()->series();
    QCOMPARE(series.size(), 1);
    auto *area = qobject_cast<QAreaSeries *>(series.first());
    QVERIFY(area);
    const QList<QPointF> points = area->upperSeries()->points();
    QCOMPARE(points.size(), 2 * expected.size());
    for (int i = 0; i < expected.size(); ++i)
        QCOMPARE(qint64(points[2 * i].y()), expected[i]);
}

void TestTensorDetailView::logCountAxis()
{
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture("detail.pth")));
    QVERIFY(selectInTable(view, QStringLiteral("vec")));
    TensorDetailView *detail = view.detailView();
    QTRY_VERIFY_WITH_TIMEOUT(detail->histogram().has_value(), 30000);
    detail->logCountsBox()->setChecked(false);
    QChart *chart = detail->histogramView()->chart();
    QVERIFY(!qobject_cast<QLogValueAxis *>(chart->axes(Qt::Vertical).value(0)));
    detail->logCountsBox()->setChecked(true);
    auto *log = qobject_cast<QLogValueAxis *>(chart->axes(Qt::Vertical).value(0));
    QVERIFY(log);
    QVERIFY(log->min() > 0); // empty bins sit on a floor above zero
    const auto *area = qobject_cast<QAreaSeries *>(chart->series().value(0));
    QVERIFY(area);
    for (const QPointF &p : area->upperSeries()->points())
        QVERIFY(p.y() >= log->min());
    detail->logCountsBox()->setChecked(false);
    QVERIFY(!qobject_cast<QLogValueAxis *>(chart->axes(Qt::Vertical).value(0)));
}

// The detail pane's short chart (the window's dtypes.png screenshot): float16's 12 values fall in
// a few bins, up to 8 in one; every tick of the count axis has its label whole, none elided to "...".
void TestTensorDetailView::countLabelsReadableInThePane()
{
    DocumentView view;
    view.resize(1280, 760);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(openAndWait(view, fixture("dtypes.pth")));
    QVERIFY(selectInTable(view, QStringLiteral("float16")));
    TensorDetailView *detail = view.detailView();
    QTRY_VERIFY_WITH_TIMEOUT(detail->histogram().has_value() && detail->tensorName() == QStringLiteral("float16"), 30000);
    detail->logCountsBox()->setChecked(false);
    const HistogramChart &chart = *detail->histogramView();
    const auto &counts = detail->histogram()->counts;
    const qint64 top = *std::max_element(counts.begin(), counts.end());
    QVERIFY2(top > 2 && top <= 8, qPrintable(QString::number(top)));  // the case that had a tick per count
    QVERIFY2(chart.height() < 200, qPrintable(QString::number(chart.height())));  // on a short chart
    QTRY_COMPARE(countAxisLabels(chart), countAxisTicks(chart));
    QVERIFY(countAxisLabels(chart).size() >= 2);
}

void TestTensorDetailView::countLabelsReadableAtEverySize_data()
{
    QTest::addColumn<int>("height");
    QTest::addColumn<QList<qint64>>("counts");
    const QList<std::pair<const char *, QList<qint64>>> sets{
        {"one", {1}}, {"up to 8", {1, 3, 8, 2}}, {"thousands", {1000, 5000, 12345, 0}}};
    for (const int height : {160, 200, 300, 500, 900})
        for (const auto &[name, counts] : sets)
            QTest::addRow("%s, %d px", name, height) << height << counts;
}

// Whatever the chart's height, the count axis has whole-count ticks, each label readable; a tall
// chart with small counts keeps a tick per count.
void TestTensorDetailView::countLabelsReadableAtEverySize()
{
    QFETCH(int, height);
    QFETCH(QList<qint64>, counts);
    HistogramChart chart;
    chart.resize(400, height);
    Histogram h;
    h.low = -1;
    h.high = 1;
    h.counts.assign(counts.begin(), counts.end());
    chart.setCurves({{QStringLiteral("counts"), h, QColor()}});
    chart.show();
    QVERIFY(QTest::qWaitForWindowExposed(&chart));
    QTRY_COMPARE(countAxisLabels(chart), countAxisTicks(chart));
    const QStringList labels = countAxisLabels(chart);
    QVERIFY(labels.size() >= 2);
    const qint64 top = *std::max_element(counts.begin(), counts.end());
    QVERIFY(labels.last().toLongLong() > top);  // room above the tallest bin
    if (height >= 500 && top <= 8)
        QCOMPARE(labels.size(), int(top) + 2);  // 0, 1, ..., top + 1
}

// Files the pane writes, read back by numpy and compared with torch.load's tensors.
void TestTensorDetailView::exportJudgedByNumpy()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture("detail.pth")));
    TensorDetailView *detail = view.detailView();
    QStringList args{QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/check_export.py"), fixture("detail.pth")};
    const struct {
        const char *name;
        ComputeApi::ExportFormat format;
    } cases[] = {{"matrix", ComputeApi::ExportFormat::Npy}, {"hyper", ComputeApi::ExportFormat::Npy},
                 {"vec", ComputeApi::ExportFormat::Npy},    {"ints", ComputeApi::ExportFormat::Npy},
                 {"flags", ComputeApi::ExportFormat::Npy},  {"cplx", ComputeApi::ExportFormat::Npy},
                 {"half", ComputeApi::ExportFormat::Npy},   {"transposed", ComputeApi::ExportFormat::Npy},
                 {"scalar", ComputeApi::ExportFormat::Npy}, {"matrix", ComputeApi::ExportFormat::Csv},
                 {"cube", ComputeApi::ExportFormat::Csv},   {"ints", ComputeApi::ExportFormat::Csv}};
    for (const auto &c : cases) {
        QVERIFY(selectInTable(view, QLatin1String(c.name)));
        const bool npy = c.format == ComputeApi::ExportFormat::Npy;
        const QString path =
            dir.filePath(QLatin1String(c.name) + (npy ? QStringLiteral(".npy") : QStringLiteral(".csv")));
        QSignalSpy done(detail, &TensorDetailView::exportFinished);
        detail->exportTo(path, c.format);
        QVERIFY(done.wait(30000));
        QVERIFY2(done.first().at(0).toBool(), qPrintable(done.first().at(1).toString()));
        QVERIFY(detail->messageText().contains(QFileInfo(path).fileName()));
        args << QLatin1String(c.name) << path;
    }
    QProcess python;
    python.start(QStringLiteral(CKPT_PYTHON), args);
    QVERIFY(python.waitForFinished(120000));
    const QString out = QString::fromUtf8(python.readAllStandardOutput() + python.readAllStandardError());
    QVERIFY2(python.exitStatus() == QProcess::NormalExit && python.exitCode() == 0, qPrintable(out));
    QCOMPARE(out.count(QStringLiteral("ok ")), int(std::size(cases)));
}

// The Export button asks for a file name (a Qt file dialog offscreen), then writes it.
void TestTensorDetailView::exportButtonAsksForAFile()
{
    QTemporaryDir dir;
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture("detail.pth")));
    QVERIFY(selectInTable(view, QStringLiteral("cube")));
    TensorDetailView *detail = view.detailView();
    const QString path = dir.filePath(QStringLiteral("picked.npy"));
    bool sawDialog = false;
    // Type the name into the dialog's file name box once it is up, then press Save.
    QTimer poll;
    poll.setInterval(100);
    connect(&poll, &QTimer::timeout, this, [&] {
        auto *dialog = qobject_cast<QFileDialog *>(QApplication::activeModalWidget());
        auto *edit = dialog ? dialog->findChild<QLineEdit *>(QStringLiteral("fileNameEdit")) : nullptr;
        if (!edit || !dialog->isVisible())
            return;
        poll.stop();
        sawDialog = true;
        edit->setText(path);
        QMetaObject::invokeMethod(dialog, "accept", Qt::QueuedConnection);
    });
    poll.start();
    QSignalSpy done(detail, &TensorDetailView::exportFinished);
    detail->findChild<QPushButton *>(QStringLiteral("exportNpy"))->click();
    QVERIFY(sawDialog);
    QVERIFY(done.wait(30000));
    QVERIFY2(done.first().at(0).toBool(), qPrintable(done.first().at(1).toString()));
    QVERIFY2(done.first().at(1).toString().contains(path), qPrintable(done.first().at(1).toString()));
    QProcess python;
    python.setProcessChannelMode(QProcess::MergedChannels);
    python.start(QStringLiteral(CKPT_PYTHON),
                 {QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/check_export.py"), fixture("detail.pth"), "cube", path});
    QVERIFY(python.waitForFinished(120000));
    QVERIFY2(python.exitCode() == 0, python.readAll().constData());
}

void TestTensorDetailView::exportNeverWritesTheInput()
{
    QTemporaryDir dir;
    const QString copy = dir.filePath(QStringLiteral("detail.pth"));
    QVERIFY(QFile::copy(fixture("detail.pth"), copy));
    QFile f(copy);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray before = f.readAll();
    f.close();
    DocumentView view;
    QVERIFY(openAndWait(view, copy));
    TensorDetailView *detail = view.detailView();
    QSignalSpy done(detail, &TensorDetailView::exportFinished);
    detail->exportTo(copy, ComputeApi::ExportFormat::Npy);
    QVERIFY(done.wait(30000));
    QVERIFY(!done.first().at(0).toBool());
    QVERIFY2(detail->messageText().contains(QStringLiteral("input")), qPrintable(detail->messageText()));
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll(), before);
    // A folder that does not exist: the error names it.
    QSignalSpy again(detail, &TensorDetailView::exportFinished);
    detail->exportTo(dir.filePath(QStringLiteral("no-such-dir/x.csv")), ComputeApi::ExportFormat::Csv);
    QVERIFY(again.wait(30000));
    QVERIFY(!again.first().at(0).toBool());
    QVERIFY2(detail->messageText().contains(QStringLiteral("no-such-dir")), qPrintable(detail->messageText()));
}

void TestTensorDetailView::metaTensorSaysSo()
{
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture("special_tensors.pth")));
    QVERIFY(selectInTable(view, QStringLiteral("meta")));
    TensorDetailView *detail = view.detailView();
    QVERIFY2(detail->messageText().contains(QStringLiteral("meta")), qPrintable(detail->messageText()));
    QVERIFY(!detail->valuesView()->isVisible());
    QVERIFY(!detail->findChild<QPushButton *>(QStringLiteral("exportNpy"))->isEnabled());
    QVERIFY(!detail->isComputing());
    // Quantized: the stored integers are one tick away.
    QVERIFY(selectInTable(view, QStringLiteral("q")));
    auto *raw = detail->findChild<QCheckBox *>(QStringLiteral("rawValues"));
    QVERIFY(raw->isVisible());
    raw->setChecked(true);
    QVERIFY(detail->valuesModel()->rawValues());
}

// Without the compute module the pane says why instead of crashing.
void TestTensorDetailView::computeModuleMissing()
{
    const QString reason = QStringLiteral("cannot load libckpt_compute.so: no such file");
    TensorDetailView detail;
    detail.setComputeProvider([reason]() -> ComputeApi & { throw std::runtime_error(reason.toStdString()); });
    detail.resize(900, 400);
    detail.show();
    const auto doc = test::readFixture(QStringLiteral("detail.pth"));
    detail.setTensor(doc, QStringLiteral("matrix"), &doc->stateDict[1].ref());
    QTRY_VERIFY_WITH_TIMEOUT(detail.messageText().contains(reason), 20000);
    QTRY_VERIFY_WITH_TIMEOUT(!detail.isComputing(), 20000);
    QVERIFY(!detail.statistics().has_value());
    QVERIFY(detail.findChild<QLabel *>(QStringLiteral("detailStatistics"))->text().contains(reason));
    QSignalSpy done(&detail, &TensorDetailView::exportFinished);
    QTemporaryDir dir;
    detail.exportTo(dir.filePath(QStringLiteral("x.npy")), ComputeApi::ExportFormat::Npy);
    QVERIFY(done.wait(20000));
    QVERIFY(!done.first().at(0).toBool());
    QVERIFY(detail.messageText().contains(reason));
}

// Figures that start with '<' ("< 0.1 %" zeros) reach the statistics table as text, not as a tag
// that swallows them; a tensor name that looks like markup is shown as written.
void TestTensorDetailView::smallFiguresAreShown()
{
    TensorDetailView detail;
    detail.setComputeProvider([]() -> ComputeApi & { throw std::runtime_error("no compute in this test"); });
    detail.resize(900, 400);
    detail.show();
    const auto doc = test::readFixture(QStringLiteral("detail.pth"));
    TensorStats known;
    known.count = 100000;
    known.zeroCount = 3;  // 0.003 %: below what percent() shows as a number
    known.min = -1.5;
    known.max = 2.5;
    known.mean = 0.25;
    known.std = 1.0;
    known.l2 = 316.0;
    const QString name = QStringLiteral("<b>matrix</b>");
    detail.setTensor(doc, name, &doc->stateDict[1].ref(), &known);
    const QString zeros = valuetext::percent(3.0 / 100000.0);
    QVERIFY2(zeros.startsWith(QLatin1Char('<')), qPrintable(zeros));  // the case this test is about
    auto *stats = detail.findChild<QLabel *>(QStringLiteral("detailStatistics"));
    QTextDocument shown;
    shown.setHtml(stats->text());
    const QString plain = shown.toPlainText();
    QVERIFY2(plain.contains(zeros), qPrintable(plain));
    QVERIFY2(plain.contains(QStringLiteral("zeros")) && plain.contains(QStringLiteral("NaN / Inf")), qPrintable(plain));
    auto *title = detail.findChild<QLabel *>(QStringLiteral("detailTitle"));
    QCOMPARE(title->text(), name);
    QCOMPARE(title->textFormat(), Qt::PlainText);
}

// A theme change (a new application palette) redraws the histogram in the new colours at once,
// not when another tensor is selected.
void TestTensorDetailView::histogramFollowsThePalette()
{
    const QPalette before = QApplication::palette();
    DocumentView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(openAndWait(view, fixture("detail.pth")));
    TensorDetailView *detail = view.detailView();
    QTRY_VERIFY_WITH_TIMEOUT(detail->histogram().has_value(), 30000);
    QChart *chart = detail->histogramView()->chart();
    QCOMPARE(chart->backgroundBrush().color(), detail->palette().color(QPalette::Base));
    QPalette dark = before;
    const QColor base(0x1e, 0x1f, 0x22), text(0xe6, 0xe6, 0xe6), highlight(0x3d, 0x6f, 0xb3);
    dark.setColor(QPalette::Base, base);
    dark.setColor(QPalette::Window, base);
    dark.setColor(QPalette::WindowText, text);
    dark.setColor(QPalette::Highlight, highlight);
    QVERIFY(before.color(QPalette::Base) != base && before.color(QPalette::Highlight) != highlight);
    QApplication::setPalette(dark);
    QTRY_COMPARE(chart->backgroundBrush().color(), base);
    QCOMPARE(detail->histogramView()->chart(), chart);  // the same chart, recoloured
    const auto *area = qobject_cast<QAreaSeries *>(chart->series().value(0));
    QVERIFY(area);
    // The curve too: the highlight's hue, lightened until it stands out from the dark background
    // (the selection blue itself is too dark to read there).
    const QColor bar = area->brush().color();
    QVERIFY2(std::abs(bar.hslHue() - highlight.hslHue()) <= 6, qPrintable(bar.name()));
    QVERIFY2(std::abs(bar.lightness() - base.lightness()) >= 100, qPrintable(bar.name()));
    for (QAbstractAxis *axis : chart->axes())
        QCOMPARE(axis->labelsColor(), text);
    QApplication::setPalette(before);
    QTRY_COMPARE(chart->backgroundBrush().color(), before.color(QPalette::Base));
}

// 16 million elements: the grid shows its corner and its far end after scrolling, and reads
// only blocks around what it shows.
void TestTensorDetailView::largeTensorScrollsLazily()
{
    const QJsonObject large = test::expectedListing().value("__detail__").toObject().value("large.pth").toObject();
    TensorDetailView detail;
    detail.resize(1000, 600);
    detail.show();
    QVERIFY(QTest::qWaitForWindowExposed(&detail));
    const auto doc = test::readFixture(QStringLiteral("large.pth"));
    detail.setTensor(doc, QStringLiteral("large"), &doc->stateDict[0].ref());
    QTableView *grid = detail.valuesView();
    auto *m = detail.valuesModel();
    const qint64 numel = qint64(m->rowCount()) * m->columnCount();
    QCOMPARE(numel, qint64(4096) * 4096);
    QVERIFY(visibleCellsArrive(grid));
    const QJsonArray first = large.value("picks").toArray()[0].toArray();
    QCOMPARE(m->index(0, 0).data(TensorValuesModel::ValueRole).toDouble(), first[1].toDouble());
    for (int step = 0; step < 20; ++step) { // scroll down and right through the middle
        grid->verticalScrollBar()->setValue(grid->verticalScrollBar()->maximum() * step / 20);
        grid->horizontalScrollBar()->setValue(grid->horizontalScrollBar()->maximum() * step / 20);
        QCoreApplication::processEvents();
    }
    grid->scrollToBottom();
    grid->horizontalScrollBar()->setValue(grid->horizontalScrollBar()->maximum());
    QVERIFY(visibleCellsArrive(grid));
    const QJsonArray last = large.value("picks").toArray().last().toArray();
    QCOMPARE(m->index(4095, 4095).data(TensorValuesModel::ValueRole).toDouble(), last[1].toDouble());
    QVERIFY2(m->fetchedElements() < numel / 100, qPrintable(QString::number(m->fetchedElements())));
}

// Cancelling the table's statistics stops them at once; the detail pane still gets its own,
// and they are PyTorch's (a 4096 x 4096 matrix keeps the job busy long enough to cancel it).
void TestTensorDetailView::cancellingStatisticsLeavesDetail()
{
    DocumentView view;
    QSignalSpy finished(&view, &DocumentView::statisticsFinished);
    QVERIFY(openAndWait(view, fixture("large.pth")));
    QVERIFY(view.statisticsRunning());
    view.cancelStatistics();
    QVERIFY(!view.statisticsRunning());
    QCOMPARE(finished.count(), 1);
    QCOMPARE(finished.first().at(0).toBool(), false);
    QVERIFY(
        !view.tableModel()->index(0, TensorTableModel::MeanColumn).data(TensorTableModel::HasStatisticsRole).toBool());
    TensorDetailView *detail = view.detailView();
    QCOMPARE(detail->tensorName(), QStringLiteral("large"));
    QTRY_VERIFY_WITH_TIMEOUT(detail->statistics().has_value(), 60000);
    const QJsonObject st =
        test::expectedListing().value("__detail__").toObject().value("large.pth").toObject().value("stats").toObject();
    QVERIFY(std::abs(detail->statistics()->std - st.value("std").toDouble()) < 1e-9);
    QVERIFY(std::abs(detail->statistics()->l2 - st.value("l2").toDouble()) < 1e-9 * st.value("l2").toDouble());
    QTest::qWait(200);
    QCOMPARE(finished.count(), 1); // the cancelled job reports nothing more

    // The table says its "…" cells were left by a cancel (not still computing), and computes them
    // again on request.
    auto *stopped = view.findChild<QLabel *>(QStringLiteral("statisticsStopped"));
    QVERIFY(stopped);
    QVERIFY(!stopped->isHidden());
    QVERIFY2(stopped->text().contains(QStringLiteral("cancelled")), qPrintable(stopped->text()));
    Q_EMIT stopped->linkActivated(QStringLiteral("again"));
    QVERIFY(view.statisticsRunning());
    QVERIFY(stopped->isHidden());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 120000);
    QCOMPARE(finished.last().at(0).toBool(), true);
    QVERIFY(view.tableModel()->index(0, TensorTableModel::MeanColumn).data(TensorTableModel::HasStatisticsRole).toBool());
    QVERIFY(stopped->isHidden());
}

// Splitter positions and the current tab carry over to the next document view.
void TestTensorDetailView::layoutRemembered()
{
    QSettings().clear();
    QList<int> outer, inner;
    {
        DocumentView view;
        view.viewTabs()->addTab(new QLabel(QStringLiteral("later")), QStringLiteral("Modules")); // as the lead will
        view.resize(1200, 800);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.structureSplitter()->setSizes({300, 900});
        view.tensorSplitter()->setSizes({500, 250});
        outer = view.structureSplitter()->sizes();
        inner = view.tensorSplitter()->sizes();
        view.viewTabs()->setCurrentIndex(1);
    }
    DocumentView next;
    next.viewTabs()->addTab(new QLabel(QStringLiteral("later")), QStringLiteral("Modules"));
    next.resize(1200, 800);
    next.show();
    QVERIFY(QTest::qWaitForWindowExposed(&next));
    QCOMPARE(next.viewTabs()->currentIndex(), 1);
    QCOMPARE(next.structureSplitter()->sizes(), outer);
    QCOMPARE(next.tensorSplitter()->sizes(), inner);
}


void TestTensorDetailView::statisticsAtTheEdges_data()
{
    QTest::addColumn<QString>("name");
    const QJsonObject stats = test::expectedListing().value("__extremes__").toObject().value("stats").toObject();
    QVERIFY(!stats.isEmpty());
    for (auto it = stats.begin(); it != stats.end(); ++it)
        QTest::newRow(qPrintable(it.key())) << it.key();
}

// The statistics table says what torch says (tests/fixtures/stats_extremes.py): a finite figure
// of a tensor near 1e300 as a number, an infinite one "inf" or "-inf", a NaN one "nan" (the mean
// of inf and -inf, the std of one value), never a dash that reads as "nothing there"; the dash
// only where there are no values (empty, NaN only), whose L2 norm is 0, as torch's.
void TestTensorDetailView::statisticsAtTheEdges()
{
    QFETCH(QString, name);
    const QJsonObject want = test::expectedListing().value("__extremes__").toObject().value("stats").toObject()
                                 .value(name).toObject().value("exact").toObject();
    static const auto doc = test::readFixture(QStringLiteral("extremes/stats.pth"));
    const TensorRef *ref = nullptr;
    for (const auto &t : doc->stateDict)
        if (QString::fromStdString(t.name) == name)
            ref = &t.ref();
    QVERIFY(ref);
    TensorDetailView detail;
    detail.resize(900, 400);
    detail.show();
    detail.setTensor(doc, name, ref);
    QTRY_VERIFY_WITH_TIMEOUT(detail.statistics().has_value(), 30000);
    // The table's cells, label and figure by turns: min, max, mean, std, L2, zeros, NaN / Inf. The
    // figures here are over the values that are not NaN: where there are NaN values, torch's (the
    // first table) are nan, and these are the second table's, "without the NaN values".
    const QString html = detail.findChild<QLabel *>(QStringLiteral("detailStatistics"))->text();
    const bool nans = want.value("nan").toInteger() > 0;
    QList<QMap<QString, QString>> tables;
    static const QRegularExpression table(QStringLiteral("<table[^>]*>(.*?)</table>"));
    for (auto t = table.globalMatch(html); t.hasNext();) {
        QMap<QString, QString> shown;
        QStringList cells;
        static const QRegularExpression cell(QStringLiteral("<td[^>]*>(.*?)</td>"));
        for (auto m = cell.globalMatch(t.next().captured(1)); m.hasNext();) {
            QTextDocument d;
            d.setHtml(m.next().captured(1));
            cells << d.toPlainText().replace(QChar(0xa0), QLatin1Char(' ')).trimmed();
        }
        for (int i = 0; i + 1 < cells.size(); i += 2)
            shown.insert(cells[i], cells[i + 1]);
        tables << shown;
    }
    QCOMPARE(tables.size(), nans ? 2 : 1);
    if (nans)
        for (const char *label : {"min", "max", "mean", "std", "L2"})
            QVERIFY2(tables[0].value(QLatin1String(label)) == QLatin1String("nan"), qPrintable(html));
    const QMap<QString, QString> shown = tables.last();
    const qint64 values = want.value("count").toInteger() - want.value("nan").toInteger();
    for (const char *key : {"min", "max", "mean", "std", "l2"}) {
        const QString label = QLatin1String(key) == QLatin1String("l2") ? QStringLiteral("L2") : QLatin1String(key);
        QVERIFY2(shown.contains(label), qPrintable(html));
        const QString got = shown.value(label);
        const QJsonValue w = want.value(QLatin1String(key));
        const QString where = QStringLiteral("%1: %2 shown as '%3', torch %4")
                                  .arg(name, label, got, w.isString() ? w.toString() : QString::number(w.toDouble(), 'g', 17));
        static const QRegularExpression integer(QStringLiteral("^-?[0-9]+$"));
        if (w.toString() == QLatin1String("nan")) {
            QVERIFY2(got == (values == 0 ? QStringLiteral("\u2013") : QStringLiteral("nan")), qPrintable(where));
        } else if (w.toString().endsWith(QLatin1String("inf"))) {
            QVERIFY2(got == w.toString(), qPrintable(where));
        } else if (integer.match(w.toString()).hasMatch()) {
            QVERIFY2(got == w.toString(), qPrintable(where));  // an integer tensor's extremes exactly
        } else {
            // A number ("-0.0" comes as text: JSON readers drop its sign), to the 10 significant
            // digits shown: its text as the pane writes torch's figure, or within those digits
            // (10 digits of 1.7976931348623157e308 round past float64, so they do not parse back).
            const double v = w.isString() ? w.toString().toDouble() : w.toDouble();
            bool ok = false;
            const double g = got.toDouble(&ok);
            QVERIFY2(got == valuetext::elementText(v, DType::Float64) ||
                         (ok && std::abs(g - v) <= 5e-10 * std::abs(v) && std::signbit(g) == std::signbit(v)),
                     qPrintable(where));
        }
    }
}

// The statistics are torch's (torch.mean's nan where a tensor holds a NaN), then, labelled apart,
// those without the NaN values (torch.nanmean, min/max over the others); a note says how many NaN
// values make torch's nan, and that a complex tensor's are over its real and imaginary parts
// together (torch.view_as_real). The numbers shown are torch's (guiviews/stats.pth, expected.json
// "__guiviews__").
void TestTensorDetailView::statisticsNotesSayWhatIsLeftOut()
{
    const QJsonObject section = test::expectedListing().value("__guiviews__").toObject().value("stats").toObject();
    QVERIFY2(!section.isEmpty(), "regenerate the fixtures");
    const auto doc = test::readFixture(section.value("file").toString());
    const QJsonObject tensors = section.value("tensors").toObject();
    QCOMPARE(static_cast<qsizetype>(doc->stateDict.size()), tensors.size());
    for (const auto &t : doc->stateDict) {
        const QString name = QString::fromStdString(t.name);
        const QJsonObject want = tensors.value(name).toObject();
        TensorDetailView detail;
        detail.resize(900, 420);
        detail.show();
        detail.setTensor(doc, name, &t.ref());
        QTRY_VERIFY_WITH_TIMEOUT(detail.statistics().has_value(), 30000);
        const auto *label = detail.findChild<QLabel *>(QStringLiteral("detailStatistics"));
        QTextDocument d;
        d.setHtml(label->text());
        const QString text = d.toPlainText().replace(QChar(0xa0), QLatin1Char(' '));
        const qint64 nans = want.value("nan").toInteger();
        QCOMPARE(text.contains(QStringLiteral("torch gives nan: the tensor holds %1 NaN values").arg(nans)), nans > 0);
        QCOMPARE(text.contains(QStringLiteral("Without the %1 NaN values:").arg(nans)), nans > 0);
        QCOMPARE(text.contains(QStringLiteral("complex: over real and imaginary parts together")),
                 want.value("complex").toBool());
        QVERIFY(label->toolTip().contains(QLatin1String("As torch gives them")));
        // Each table's cells, label and figure by turns.
        QList<QMap<QString, QString>> tables;
        static const QRegularExpression table(QStringLiteral("<table[^>]*>(.*?)</table>"));
        static const QRegularExpression cell(QStringLiteral("<td[^>]*>(.*?)</td>"));
        for (auto tm = table.globalMatch(label->text()); tm.hasNext();) {
            QMap<QString, QString> shown;
            QStringList cells;
            for (auto m = cell.globalMatch(tm.next().captured(1)); m.hasNext();) {
                QTextDocument c;
                c.setHtml(m.next().captured(1));
                cells << c.toPlainText().replace(QChar(0xa0), QLatin1Char(' ')).trimmed();
            }
            for (int i = 0; i + 1 < cells.size(); i += 2)
                shown.insert(cells[i], cells[i + 1]);
            tables << shown;
        }
        QCOMPARE(tables.size(), nans > 0 ? 2 : 1);
        auto expect = [&](const QMap<QString, QString> &shown, const char *key, const char *json) {
            const QJsonValue w = want.value(QLatin1String(json));
            const QString expected = w.isString() ? w.toString() : valuetext::statisticText(w.toDouble(), *detail.statistics(), 10);
            QVERIFY2(shown.value(QLatin1String(key)) == expected,
                     qPrintable(QStringLiteral("%1 %2: shown %3, torch %4").arg(name, QLatin1String(key), shown.value(QLatin1String(key)), expected)));
        };
        expect(tables[0], "mean", "torch_mean");  // torch.mean: nan as soon as one value is NaN
        if (nans > 0) {
            expect(tables[1], "mean", "nanmean");
            expect(tables[1], "min", "min");
            expect(tables[1], "max", "max");
            QCOMPARE(tables[0].value("min"), QStringLiteral("nan"));
            QCOMPARE(tables[0].value("max"), QStringLiteral("nan"));
        } else {
            expect(tables[0], "min", "min");
            expect(tables[0], "max", "max");
        }
        if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
            detail.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/detail-%1.png").arg(name));
    }
}

QTEST_MAIN(TestTensorDetailView)
#include "tst_tensordetailview.moc"
