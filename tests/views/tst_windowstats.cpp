// The window's statistics are torch's, as `ckpt tensors --stats` writes them, on files real torch
// 1.13 writes for this test (window_stats_inputs.py, with torch's own figures in expected.json):
// the Tensors table and the detail pane show torch's min/max/mean/std/L2 (nan where a tensor holds
// a NaN) and, labelled apart, the figures without the NaN values; nan sorts after every number as
// torch.sort puts it; the optimizer state's figures are torch's too; histograms say how many NaN
// and infinite values they leave out and draw nothing from a range that is not finite. A values
// job of a tensor no longer shown stops between chunks.
#include "computeloader.h"
#include "document.h"
#include "histogramchart.h"
#include "optimizerstatemodel.h"
#include "optimizerview.h"
#include "pythoninputs.h"
#include "tensordetailview.h"
#include "tensortablemodel.h"
#include "tensorvaluesmodel.h"
#include "valuetext.h"

#include <QChart>
#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTemporaryDir>
#include <QTest>
#include <QTextDocument>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

using namespace ckpt;

namespace {

// A number from expected.json: NaN and infinities are strings there, a figure torch has none of null.
double jsonNumber(const QJsonValue &v)
{
    if (v.isString()) {
        const QString s = v.toString();
        return s == QLatin1String("nan") ? std::nan("") : s == QLatin1String("inf") ? INFINITY : -INFINITY;
    }
    return v.isDouble() ? v.toDouble() : std::nan("");
}

bool close(double got, double want)
{
    if (std::isnan(want))
        return std::isnan(got);
    if (std::isinf(want))
        return got == want;
    return std::abs(got - want) <= 1e-9 * std::max(1.0, std::abs(want));
}

constexpr const char *kFigures[] = {"min", "max", "mean", "std", "l2"};

double figureOf(const StatFigures &f, const QString &key)
{
    return key == "min" ? f.min : key == "max" ? f.max : key == "mean" ? f.mean : key == "std" ? f.std : f.l2;
}

// The label, value cells of each <table> in `html`, one map per table, as plain text.
QList<QMap<QString, QString>> tablesOf(const QString &html)
{
    QList<QMap<QString, QString>> tables;
    static const QRegularExpression table(QStringLiteral("<table[^>]*>(.*?)</table>"),
                                          QRegularExpression::DotMatchesEverythingOption);
    static const QRegularExpression cell(QStringLiteral("<td[^>]*>(.*?)</td>"));
    for (auto t = table.globalMatch(html); t.hasNext();) {
        QStringList cells;
        for (auto m = cell.globalMatch(t.next().captured(1)); m.hasNext();) {
            QTextDocument c;
            c.setHtml(m.next().captured(1));
            cells << c.toPlainText().replace(QChar(0xa0), QLatin1Char(' ')).trimmed();
        }
        QMap<QString, QString> map;
        for (int i = 0; i + 1 < cells.size(); i += 2)
            if (!cells[i].isEmpty())
                map.insert(cells[i], cells[i + 1]);
        tables << map;
    }
    return tables;
}

// A compute stand-in whose values() works through `chunks` chunks of 5 ms, asking its cancel check
// before each, and records how far it got.
class ChunkedValues final : public ComputeApi {
public:
    static constexpr int kChunks = 400;  // 2 s when nothing stops it
    mutable std::atomic<int> started{0}, chunks{0}, cancelled{0}, finished{0};

    std::string torchVersion() const override { return "stand-in"; }
    TensorStats statistics(const TensorRef &) const override { return {}; }
    TensorStats statistics(const TensorRef &, const CancelCheck &) const override { return {}; }
    Histogram histogram(const TensorRef &, int) const override { return {}; }
    Histogram histogram(const TensorRef &, int, const CancelCheck &) const override { return {}; }
    Histogram differenceHistogram(const TensorRef &, const TensorRef &, int) const override { return {}; }
    Histogram differenceHistogram(const TensorRef &, const TensorRef &, int, const CancelCheck &) const override
    {
        return {};
    }
    std::vector<double> values(const TensorRef &t, std::int64_t first, std::int64_t count, bool raw) const override
    {
        return values(t, first, count, raw, {});
    }
    std::vector<double> values(const TensorRef &, std::int64_t, std::int64_t count, bool,
                               const CancelCheck &check) const override
    {
        ++started;
        for (int i = 0; i < kChunks; ++i) {
            if (check && check()) {
                ++cancelled;
                throw std::runtime_error("cancelled");
            }
            ++chunks;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ++finished;
        return std::vector<double>(static_cast<std::size_t>(count), 0.0);
    }
    std::vector<std::int64_t> integers(const TensorRef &, std::int64_t, std::int64_t count) const override
    {
        return std::vector<std::int64_t>(static_cast<std::size_t>(count), 0);
    }
    std::string exportBytes(const TensorRef &, ExportFormat) const override { return {}; }
    TensorDiff difference(const TensorRef &, const TensorRef &, double, double) const override { return {}; }
    std::vector<DeviceInfo> devices() const override { return {}; }
    std::unique_ptr<Predictor> predictor(const Document &, const Architecture &) const override
    {
        throw std::runtime_error("not in this test");
    }
};

} // namespace

class TestWindowStats : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void tableShowsTorchFigures();
    void tableSortsNanAfterEveryNumber_data();
    void tableSortsNanAfterEveryNumber();
    void detailShowsTorchFiguresThenWithoutNan();
    void histogramSaysWhatItLeavesOut();
    void histogramOfNoFiniteRangeDrawsNothing();
    void optimizerStateFiguresAreTorchs();
    void permutedValuesAreTorchsOrder();
    void closedValuesJobStops();

private:
    void fill(TensorTableModel &model);
    QTemporaryDir m_dir;
    QJsonObject m_expected;
    std::shared_ptr<const Document> m_doc;
};

void TestWindowStats::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/window_stats_inputs.py"),
                                         m_dir.path(), error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
    m_doc = std::make_shared<const Document>(readDocument(m_dir.filePath(QStringLiteral("stats.pth")).toStdString()));
}

void TestWindowStats::fill(TensorTableModel &model)
{
    model.setDocument(m_doc);
    for (int r = 0; r < model.rowCount(); ++r)
        model.setStatistics(r, ComputeLoader::api().statistics(model.tensors()[static_cast<std::size_t>(r)].ref()));
}

// Each statistics column holds torch's figure (nan where torch gives nan), shown as the CLI writes
// it; a tensor with NaN values says its figures without them in the cell's tooltip.
void TestWindowStats::tableShowsTorchFigures()
{
    TensorTableModel model;
    fill(model);
    const QJsonObject tensors = m_expected.value("tensors").toObject();
    QCOMPARE(model.rowCount(), tensors.size());
    const int columns[] = {TensorTableModel::MinColumn, TensorTableModel::MaxColumn, TensorTableModel::MeanColumn,
                           TensorTableModel::StdColumn, TensorTableModel::L2Column};
    for (int r = 0; r < model.rowCount(); ++r) {
        const QString name = model.index(r, TensorTableModel::NameColumn).data().toString();
        const QJsonObject want = tensors.value(name).toObject();
        QVERIFY2(!want.isEmpty(), qPrintable(name));
        const QJsonObject torch = want.value("torch").toObject();
        const TensorStats *s = model.statistics(r);
        QVERIFY(s);
        for (int i = 0; i < 5; ++i) {
            const QString key = QLatin1String(kFigures[i]);
            const QModelIndex cell = model.index(r, columns[i]);
            const QVariant sort = cell.data(TensorTableModel::SortRole);
            const double got = sort.isValid() ? sort.toDouble() : std::nan("");
            const double w = jsonNumber(torch.value(key));
            const QString where = name + QLatin1Char(' ') + key;
            // An empty tensor has no min or max in torch (an error): the table's is no number either.
            QVERIFY2(close(got, w), qPrintable(QStringLiteral("%1: %2 != torch %3").arg(where).arg(got).arg(w)));
            const QString shown = cell.data(Qt::DisplayRole).toString();
            if (std::isnan(w))  // a dash only where there are no elements to have a figure
                QVERIFY2(shown == (want.value("count").toInt() == 0 ? QStringLiteral("\u2013") : QStringLiteral("nan")),
                         qPrintable(where + ": " + shown));
            else if (std::isinf(w))
                QCOMPARE(shown, QLatin1String(w > 0 ? "inf" : "-inf"));
            else
                QVERIFY2(close(shown.toDouble(), w) || std::abs(shown.toDouble() - w) <= 1e-4 * std::abs(w),
                         qPrintable(where + ": " + shown));
            const QString tip = cell.data(Qt::ToolTipRole).toString();
            const qint64 nans = want.value("nan").toInteger();
            QCOMPARE(tip.contains(QLatin1String("Without the")), nans > 0);
            if (nans > 0) {
                // The figures without the NaN values, as torch gives them over the other values.
                const QJsonObject without = want.value("without_nan").toObject();
                QVERIFY2(close(figureOf(s->withoutNan(), key), jsonNumber(without.value(key))),
                         qPrintable(where + " without NaN"));
                const QString text = valuetext::withoutNanText(*s, 5);
                QVERIFY2(tip.contains(text), qPrintable(tip));
            }
        }
        QCOMPARE(model.index(r, TensorTableModel::NonFiniteColumn).data(TensorTableModel::SortRole).toLongLong(),
                 want.value("nan").toInteger() + want.value("inf").toInteger());
    }
    const QString header = model.headerData(TensorTableModel::MeanColumn, Qt::Horizontal, Qt::ToolTipRole).toString();
    QVERIFY2(header.contains(QLatin1String("As torch gives them")), qPrintable(header));
}

void TestWindowStats::tableSortsNanAfterEveryNumber_data()
{
    QTest::addColumn<int>("column");
    QTest::addColumn<QString>("key");
    QTest::newRow("mean") << int(TensorTableModel::MeanColumn) << "mean_order";
    QTest::newRow("min") << int(TensorTableModel::MinColumn) << "min_order";
}

// Sorted by a statistics column, the rows come in the order torch.sort (stable) puts their
// figures: nan after +inf ascending, first descending; the rows around a nan keep their order.
void TestWindowStats::tableSortsNanAfterEveryNumber()
{
    QFETCH(int, column);
    QFETCH(QString, key);
    TensorTableModel model;
    fill(model);
    QSortFilterProxyModel proxy;
    proxy.setSortRole(TensorTableModel::SortRole);
    proxy.setSourceModel(&model);
    const QJsonObject orders = m_expected.value(key).toObject();
    for (const auto &[order, name] : {std::pair{Qt::AscendingOrder, "ascending"}, std::pair{Qt::DescendingOrder, "descending"}}) {
        proxy.sort(column, order);
        QStringList got;
        for (int r = 0; r < proxy.rowCount(); ++r)
            got << proxy.index(r, TensorTableModel::NameColumn).data().toString();
        QStringList want;
        for (const auto &v : orders.value(QLatin1String(name)).toArray())
            want << v.toString();
        QVERIFY2(got == want, qPrintable(QStringLiteral("%1 %2: %3\ntorch.sort: %4")
                                             .arg(key, QLatin1String(name), got.join(", "), want.join(", "))));
    }
}

// The detail pane: torch's figures first, as `ckpt show` writes them, then (only where there are
// NaN values) a table headed "Without the N NaN values" with the figures over the other values.
void TestWindowStats::detailShowsTorchFiguresThenWithoutNan()
{
    const QJsonObject tensors = m_expected.value("tensors").toObject();
    const QString outDir = qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS");
    for (const auto &t : m_doc->stateDict) {
        const QString name = QString::fromStdString(t.name);
        const QJsonObject want = tensors.value(name).toObject();
        TensorDetailView detail;
        detail.resize(900, 460);
        detail.show();
        detail.setTensor(m_doc, name, &t.ref());
        QTRY_VERIFY_WITH_TIMEOUT(detail.statistics().has_value(), 30000);
        const auto *label = detail.findChild<QLabel *>(QStringLiteral("detailStatistics"));
        const auto tables = tablesOf(label->text());
        const qint64 nans = want.value("nan").toInteger();
        QCOMPARE(tables.size(), nans > 0 ? 2 : 1);
        const TensorStats &s = *detail.statistics();
        for (int part = 0; part < tables.size(); ++part) {
            const QJsonObject figures = want.value(part == 0 ? "torch" : "without_nan").toObject();
            for (const char *k : kFigures) {
                const QString key = QLatin1String(k);
                const QString caption = key == QLatin1String("l2") ? QStringLiteral("L2") : key;
                const double w = jsonNumber(figures.value(key));
                const bool integers = s.exact && (key == "min" || key == "max");
                QString expected = part == 0 ? valuetext::torchStatisticText(w, s, 10) : valuetext::statisticText(w, s, 10);
                if (integers)
                    expected = QString::number(static_cast<qlonglong>(w));
                QVERIFY2(tables[part].value(caption) == expected,
                         qPrintable(QStringLiteral("%1 %2 (%3): shown %4, torch %5")
                                        .arg(name, key, QLatin1String(part ? "without NaN" : "torch"), tables[part].value(caption), expected)));
            }
        }
        QTextDocument d;
        d.setHtml(label->text());
        const QString text = d.toPlainText();
        QCOMPARE(text.contains(nans == 1 ? QStringLiteral("Without the NaN value:")
                                         : QStringLiteral("Without the %1 NaN values:").arg(nans)),
                 nans > 0);
        if (!outDir.isEmpty())
            detail.grab().save(outDir + QStringLiteral("/windowstats-%1.png").arg(name));
    }
}

// The pane's histogram counts the finite values and says how many NaN and infinite ones it left
// out (torch: (~torch.isfinite(t)).sum()); with none finite, it says that and draws nothing.
void TestWindowStats::histogramSaysWhatItLeavesOut()
{
    const QJsonObject tensors = m_expected.value("tensors").toObject();
    for (const auto &t : m_doc->stateDict) {
        const QString name = QString::fromStdString(t.name);
        const qint64 nonFinite = tensors.value(name).toObject().value("nonfinite").toInteger();
        TensorDetailView detail;
        detail.resize(900, 460);
        detail.show();
        detail.setTensor(m_doc, name, &t.ref());
        QTRY_VERIFY_WITH_TIMEOUT(detail.histogram().has_value() || !detail.isComputing(), 30000);
        if (!detail.histogram())
            continue;  // no histogram for this type (bool): nothing to say of it
        QCOMPARE(qint64(detail.histogram()->nonFinite), nonFinite);
        const QString title = detail.histogramView()->chart()->title();
        if (nonFinite == 0)
            QVERIFY2(!title.contains(QLatin1String("left out")), qPrintable(name + ": " + title));
        else
            QVERIFY2(title.contains(nonFinite == 1 ? QStringLiteral("1 NaN or infinite value left out")
                                                   : QStringLiteral("%1 NaN or infinite values left out").arg(nonFinite)),
                     qPrintable(name + ": " + title));
        std::int64_t counted = 0;
        for (auto n : detail.histogram()->counts)
            counted += n;
        QCOMPARE(counted + nonFinite, tensors.value(name).toObject().value("count").toInteger());
    }
}

// A histogram whose range is not finite (NaN or infinite ends) is not drawn: no axis from nan to
// nan, no crash; the chart says there are no finite values and how many it left out.
void TestWindowStats::histogramOfNoFiniteRangeDrawsNothing()
{
    HistogramChart chart;
    chart.resize(400, 300);
    chart.show();
    for (const auto &[low, high] : {std::pair{std::nan(""), std::nan("")}, std::pair{-std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()},
                                    std::pair{0.0, std::nan("")}, std::pair{2.0, 1.0}}) {
        Histogram h;
        h.low = low;
        h.high = high;
        h.counts = {3, 0, 1};
        h.nonFinite = 5;
        chart.setCurves({{QStringLiteral("counts"), h, QColor()}});
        QVERIFY(chart.chart()->series().isEmpty());
        QVERIFY(chart.chart()->axes().isEmpty());
        QCOMPARE(chart.chart()->title(), QStringLiteral("No finite values (5 NaN or infinite values left out)"));
        chart.setLogCounts(!chart.logCounts());
        QVERIFY(chart.chart()->series().isEmpty());
        QVERIFY(!chart.grab().isNull());
    }
}

// The optimizer state's norms are torch.linalg.norm's (nan where the state holds a NaN, inf with
// an infinity); the figures without the NaN values are given beside them; the column sorts nan last.
void TestWindowStats::optimizerStateFiguresAreTorchs()
{
    OptimizerView view;
    QSignalSpy finished(&view, &OptimizerView::statisticsFinished);
    view.setDocument(std::make_shared<const Document>(readDocument(m_dir.filePath("adam_nan.pth").toStdString())));
    QVERIFY(finished.wait(60000) || !finished.isEmpty());
    OptimizerStateModel *m = view.stateModel();
    const QJsonObject state = m_expected.value("adam_state").toObject();
    QCOMPARE(m->rowCount(), state.size());
    const QStringList keys = m->stateKeys();
    int nanCells = 0;
    for (int r = 0; r < m->rowCount(); ++r) {
        const QString id = m->index(r, OptimizerStateModel::IdColumn).data().toString();
        const QJsonObject want = state.value(id).toObject();
        QVERIFY2(!want.isEmpty(), qPrintable(id));
        for (int k = 0; k < keys.size(); ++k) {
            if (!want.contains(keys[k]))
                continue;
            const QJsonObject w = want.value(keys[k]).toObject();
            const QModelIndex cell = m->index(r, OptimizerStateModel::FirstStateColumn + k);
            const QVariantMap stats = cell.data(OptimizerStateModel::StatisticsRole).toMap();
            const QString where = id + "/" + keys[k];
            for (const char *f : kFigures)
                QVERIFY2(close(stats.value(QLatin1String(f)).toDouble(), jsonNumber(w.value("torch").toObject().value(QLatin1String(f)))),
                         qPrintable(QStringLiteral("%1 %2: %3").arg(where, QLatin1String(f)).arg(stats.value(QLatin1String(f)).toDouble())));
            QCOMPARE(stats.value("nan").toLongLong(), w.value("nan").toInteger());
            QCOMPARE(stats.contains("without_nan"), w.contains("without_nan"));
            if (w.contains("without_nan")) {
                ++nanCells;
                const QVariantMap without = stats.value("without_nan").toMap();
                for (const char *f : kFigures)
                    QVERIFY2(close(without.value(QLatin1String(f)).toDouble(),
                                   jsonNumber(w.value("without_nan").toObject().value(QLatin1String(f)))),
                             qPrintable(where + " without NaN " + f));
                QCOMPARE(cell.data(Qt::DisplayRole).toString(), QStringLiteral("nan"));
                QVERIFY(cell.data(Qt::ToolTipRole).toString().contains(QLatin1String("Without the NaN value:")));
            }
        }
    }
    QCOMPARE(nanCells, 1);
    // Sorted by exp_avg's norm: the nan last ascending, first descending.
    const int column = OptimizerStateModel::FirstStateColumn + static_cast<int>(keys.indexOf("exp_avg"));
    QSortFilterProxyModel *proxy = view.stateProxy();
    for (const auto order : {Qt::AscendingOrder, Qt::DescendingOrder}) {
        proxy->sort(column, order);
        QStringList shown;
        for (int r = 0; r < proxy->rowCount(); ++r)
            shown << proxy->index(r, column).data().toString();
        QCOMPARE(shown.indexOf("nan"), order == Qt::AscendingOrder ? proxy->rowCount() - 1 : 0);
        for (int r = 1; r < shown.size(); ++r)
            if (shown[r] != "nan" && shown[r - 1] != "nan")
                QVERIFY(order == Qt::AscendingOrder ? shown[r - 1].toDouble() <= shown[r].toDouble()
                                                    : shown[r - 1].toDouble() >= shown[r].toDouble());
    }
}

// A tensor saved permuted (strides of a non-contiguous view): its values, read a range at a time,
// are torch's row-major order (flatten().tolist()) wherever the ranges fall.
void TestWindowStats::permutedValuesAreTorchsOrder()
{
    const QJsonArray flat = m_expected.value("flat").toArray();
    const NamedTensor *permuted = nullptr;
    for (const auto &t : m_doc->stateDict)
        if (t.name == "permuted")
            permuted = &t;
    QVERIFY(permuted);
    ComputeApi &api = ComputeLoader::api();
    for (std::int64_t first = 0; first < flat.size(); first += 7)
        for (std::int64_t count : {1, 4, 13, 29, 120}) {
            const std::vector<double> got = api.values(permuted->ref(), first, count);
            const std::int64_t end = std::min<std::int64_t>(first + count, flat.size());
            QCOMPARE(static_cast<std::int64_t>(got.size()), end - first);
            for (std::int64_t i = first; i < end; ++i)
                QCOMPARE(got[static_cast<std::size_t>(i - first)], flat.at(i).toDouble());
        }
}

// Closing the tab (the values model goes away) or showing another tensor stops the values job
// between its chunks, promptly: it does not read on for the 2 s its batch would take, and it
// hands no partial batch on as read.
void TestWindowStats::closedValuesJobStops()
{
    ChunkedValues compute;
    for (const bool close : {true, false}) {
        compute.started = compute.chunks = compute.cancelled = compute.finished = 0;
        auto *model = new TensorValuesModel;
        model->setComputeProvider([&compute]() -> ComputeApi & { return compute; });
        const auto &plain = m_doc->stateDict.back();  // any tensor: the stand-in makes the values
        model->setTensor(m_doc, &plain.ref());
        QSignalSpy arrived(model, &TensorValuesModel::valuesArrived);
        model->index(0, 0).data(TensorValuesModel::ValueRole);  // asks for the first block
        QTRY_VERIFY_WITH_TIMEOUT(compute.chunks > 2, 10000);
        QElapsedTimer timer;
        timer.start();
        if (close)
            delete model;
        else
            model->clear();  // another tensor (none) shown
        QTRY_VERIFY_WITH_TIMEOUT(compute.cancelled == 1, 2000);
        QVERIFY2(timer.elapsed() < 1000, qPrintable(QString::number(timer.elapsed())));
        QCOMPARE(int(compute.finished), 0);
        QVERIFY(compute.chunks < ChunkedValues::kChunks / 2);
        if (!close) {
            QTest::qWait(50);
            QCOMPARE(arrived.count(), 0);  // the stopped batch is not shown as read
            QVERIFY(model->errorText().isEmpty());
            delete model;
        }
    }
    QTest::qWait(50);  // the stopped job has returned before `compute` goes
}

QTEST_MAIN(TestWindowStats)
#include "tst_windowstats.moc"
