// TensorTableModel against PyTorch's own listing (expected.json, written by generate_fixtures.py):
// same tensors, in file order, with PyTorch's dtype, shape, element count and byte size.
#include "computeloader.h"
#include "document.h"
#include "copyrole.h"
#include "tensortablemodel.h"

#include <QAbstractItemModelTester>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSortFilterProxyModel>
#include <QSignalSpy>
#include <QTest>

#include <cmath>
#include <limits>

#include "testdata.h"

using namespace ckpt;

namespace {

using test::readFixture;

QJsonObject expectedJson() { return test::expectedListing(); }

// PyTorch's statistics of each tensor (expected.json "__detail__", written by the generator).
QJsonObject detailStats(const QString &file) { return expectedJson().value("__detail__").toObject().value("files").toObject().value(file).toObject(); }

// A number from expected.json, where NaN and infinities are written as strings.
double jsonNumber(const QJsonValue &v)
{
    if (v.isString()) {
        const QString s = v.toString();
        return s == "nan" ? std::nan("") : (s == "inf" ? INFINITY : -INFINITY);
    }
    return v.isNull() || v.isUndefined() ? std::nan("") : v.toDouble();
}

bool close(double got, double want)
{
    if (std::isnan(want))
        return std::isnan(got);
    if (std::isinf(want))
        return got == want;
    return std::abs(got - want) <= 1e-9 * std::max(1.0, std::abs(want));
}

// The table's statistics filled in with the compute module, as the document view's job does.
void fillStatistics(TensorTableModel &model)
{
    ComputeApi &api = ComputeLoader::api();
    for (int r = 0; r < model.rowCount(); ++r) {
        const auto &t = model.tensors()[static_cast<std::size_t>(r)];
        try {
            model.setStatistics(r, api.statistics(t.ref()));
        } catch (const std::exception &e) {
            model.setStatisticsError(r, QString::fromStdString(e.what()));
        }
    }
}

QString shapeText(const QJsonArray &shape)
{
    QStringList dims;
    for (const auto &d : shape)
        dims << QString::number(d.toInteger());
    return QLatin1Char('[') + dims.join(QStringLiteral(", ")) + QLatin1Char(']');
}

} // namespace

class TestTensorTableModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void rowsMatchTorch_data();
    void rowsMatchTorch();
    void sortsNumelNumerically();
    void filterByName();
    void problemRows();
    void headers();
    void statistics();
    void statisticsMatchTorch_data();
    void statisticsMatchTorch();
    void integerExtremesExactly();
    void nonFiniteRowsMarked();
    void sortsByNorm();
    void statisticsSayWhatTheyAreOver();

private:
    TensorTableModel *m_model = nullptr;
    QSortFilterProxyModel *m_proxy = nullptr;
    QAbstractItemModelTester *m_modelTester = nullptr;
    QAbstractItemModelTester *m_proxyTester = nullptr;
};

void TestTensorTableModel::init()
{
    m_model = new TensorTableModel;
    m_proxy = new QSortFilterProxyModel;
    m_proxy->setSortRole(TensorTableModel::SortRole);
    m_proxy->setFilterKeyColumn(TensorTableModel::NameColumn);
    m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_proxy->setSourceModel(m_model);
    m_modelTester = new QAbstractItemModelTester(m_model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    m_proxyTester = new QAbstractItemModelTester(m_proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
}

void TestTensorTableModel::cleanup()
{
    delete m_proxyTester;
    delete m_modelTester;
    delete m_proxy;
    delete m_model;
}

void TestTensorTableModel::rowsMatchTorch_data()
{
    QTest::addColumn<QString>("file");
    for (const char *f : {"state_dict.pth", "training_checkpoint.pth", "inference_package.pth", "full_model.pth",
                          "legacy_state_dict.pth", "dtypes.pth", "dtypes_legacy.pth", "views.pth", "views_legacy.pth",
                          "cuda_saved.pth", "cuda_saved_legacy.pth", "protocol2.pth", "protocol4.pth", "protocol5.pth"})
        QTest::newRow(f) << QString::fromLatin1(f);
}

void TestTensorTableModel::rowsMatchTorch()
{
    QFETCH(QString, file);
    const QJsonArray tensors = expectedJson().value(file).toObject().value("tensors").toArray();
    QVERIFY(!tensors.isEmpty());
    m_model->setDocument(readFixture(file));
    QCOMPARE(m_model->rowCount(), tensors.size());

    for (int r = 0; r < tensors.size(); ++r) {
        const QJsonObject t = tensors[r].toObject();
        auto cell = [&](int column, int role = Qt::DisplayRole) { return m_model->index(r, column).data(role); };
        QCOMPARE(cell(TensorTableModel::NameColumn).toString(), t.value("name").toString());
        QCOMPARE(cell(TensorTableModel::DTypeColumn).toString(), t.value("dtype").toString());
        QCOMPARE(cell(TensorTableModel::ShapeColumn).toString(), shapeText(t.value("shape").toArray()));
        const int sort = TensorTableModel::SortRole;
        QCOMPARE(cell(TensorTableModel::NumelColumn, sort).toLongLong(), t.value("numel").toInteger());
        QCOMPARE(cell(TensorTableModel::BytesColumn, sort).toLongLong(), t.value("bytes").toInteger());
        QCOMPARE(cell(TensorTableModel::RequiresGradColumn, TensorTableModel::SortRole).toBool(),
                 t.value("requires_grad").toBool());
        if (t.value("device_saved").isString())
            QCOMPARE(cell(TensorTableModel::DeviceColumn).toString(), t.value("device_saved").toString());
        QCOMPARE(cell(TensorTableModel::NameColumn, TensorTableModel::ProblemRole).toString(), QString());
    }
}

// 500 > 100 > 50 > 2 as numbers, where text would put "100" before "2" and "50".
void TestTensorTableModel::sortsNumelNumerically()
{
    m_model->setDocument(readFixture(QStringLiteral("state_dict.pth")));
    m_proxy->sort(TensorTableModel::NumelColumn, Qt::AscendingOrder);
    QStringList names;
    QList<qlonglong> numels;
    for (int r = 0; r < m_proxy->rowCount(); ++r) {
        names << m_proxy->index(r, TensorTableModel::NameColumn).data().toString();
        numels << m_proxy->index(r, TensorTableModel::NumelColumn).data(TensorTableModel::SortRole).toLongLong();
    }
    QCOMPARE(names, QStringList({"fc2.bias", "fc1.bias", "fc2.weight", "fc1.weight"}));
    QCOMPARE(numels, QList<qlonglong>({2, 50, 100, 500}));

    m_proxy->sort(TensorTableModel::BytesColumn, Qt::DescendingOrder);
    QCOMPARE(m_proxy->index(0, TensorTableModel::NameColumn).data().toString(), QStringLiteral("fc1.weight"));

    // Back to file order.
    m_proxy->sort(-1);
    QCOMPARE(m_proxy->index(0, TensorTableModel::NameColumn).data().toString(), QStringLiteral("fc1.weight"));
    QCOMPARE(m_proxy->index(3, TensorTableModel::NameColumn).data().toString(), QStringLiteral("fc2.bias"));
}

void TestTensorTableModel::filterByName()
{
    m_model->setDocument(readFixture(QStringLiteral("dtypes.pth")));
    m_proxy->setFilterFixedString(QStringLiteral("INT"));
    QStringList names;
    for (int r = 0; r < m_proxy->rowCount(); ++r)
        names << m_proxy->index(r, TensorTableModel::NameColumn).data().toString();
    QCOMPARE(names, QStringList({"int8", "uint8", "int16", "int32", "int64"}));
}

void TestTensorTableModel::problemRows()
{
    m_model->setDocument(readFixture(QStringLiteral("tensor_past_storage.pth")));
    QCOMPARE(m_model->rowCount(), 1);
    const QModelIndex name = m_model->index(0, TensorTableModel::NameColumn);
    QCOMPARE(name.data().toString(), QStringLiteral("oversized"));
    const QString problem = name.data(TensorTableModel::ProblemRole).toString();
    QVERIFY(problem.contains(QStringLiteral("1000")));
    QVERIFY(name.data(Qt::ToolTipRole).toString().contains(problem));
    QVERIFY(name.data(Qt::ForegroundRole).isValid());
    QVERIFY(name.data(Qt::DecorationRole).isValid());

    m_model->setDocument(nullptr);
    QCOMPARE(m_model->rowCount(), 0);
}

void TestTensorTableModel::headers()
{
    QCOMPARE(m_model->columnCount(), int(TensorTableModel::ColumnCount));
    QStringList titles;
    for (int c = 0; c < m_model->columnCount(); ++c)
        titles << m_model->headerData(c, Qt::Horizontal).toString();
    QCOMPARE(titles, QStringList({"Name", "DType", "Shape", "Numel", "Bytes", "Device", "Grad", "Min", "Max", "Mean",
                                  "Std", "L2", "Zeros", "NaN/Inf"}));
}

void TestTensorTableModel::statistics()
{
    m_model->setDocument(readFixture(QStringLiteral("state_dict.pth")));
    const QModelIndex mean = m_model->index(1, TensorTableModel::MeanColumn);
    QVERIFY(!mean.data(TensorTableModel::HasStatisticsRole).toBool());
    QCOMPARE(mean.data().toString(), QStringLiteral("\u2026"));  // not computed yet
    QSignalSpy changed(m_model, &QAbstractItemModel::dataChanged);
    TensorStats s;
    s.count = 4;
    s.min = -1.5;
    s.max = 2.0;
    s.mean = 0.25;
    s.std = 1.0;
    s.nanCount = 1;
    s.infCount = 2;
    m_model->setStatistics(1, s);
    QCOMPARE(changed.count(), 1);
    QVERIFY(mean.data(TensorTableModel::HasStatisticsRole).toBool());
    // A NaN among the values: torch's figures are nan (no sort key: nan sorts after every number);
    // those without the NaN value are in the tooltip.
    QVERIFY(!mean.data(TensorTableModel::SortRole).isValid());
    QCOMPARE(m_model->index(1, TensorTableModel::MinColumn).data().toString(), QStringLiteral("nan"));
    QVERIFY2(mean.data(Qt::ToolTipRole).toString().contains(QStringLiteral("Without the NaN value: min -1.5  max 2  mean 0.25")),
             qPrintable(mean.data(Qt::ToolTipRole).toString()));
    s.nanCount = 0;
    m_model->setStatistics(1, s);
    QCOMPARE(mean.data(TensorTableModel::SortRole).toDouble(), 0.25);
    QCOMPARE(m_model->index(1, TensorTableModel::MinColumn).data().toString(), QStringLiteral("-1.5"));
    s.nanCount = 1;
    m_model->setStatistics(1, s);
    QCOMPARE(m_model->index(1, TensorTableModel::NonFiniteColumn).data().toString(), QStringLiteral("1 / 2"));
    QCOMPARE(m_model->index(1, TensorTableModel::NonFiniteColumn).data(TensorTableModel::SortRole).toLongLong(), 3);
    QVERIFY(m_model->index(1, TensorTableModel::NonFiniteColumn).data(Qt::ForegroundRole).isValid());
    m_model->setStatisticsError(2, QStringLiteral("a meta tensor has a shape but no data"));
    QVERIFY(m_model->index(2, TensorTableModel::MinColumn).data(Qt::ToolTipRole).toString().contains("meta tensor"));
    // Rows out of range are ignored, and a new document starts without statistics.
    m_model->setStatistics(99, s);
    m_model->setDocument(readFixture(QStringLiteral("state_dict.pth")));
    QVERIFY(!m_model->index(1, TensorTableModel::MeanColumn).data(TensorTableModel::HasStatisticsRole).toBool());
}

void TestTensorTableModel::statisticsMatchTorch_data()
{
    QTest::addColumn<QString>("file");
    for (const char *f : {"detail.pth", "state_dict.pth", "views.pth", "nan_inf.pth", "dtypes.pth", "special_tensors.pth"})
        QTest::newRow(f) << QString::fromLatin1(f);
}

// Every statistics column (L2 and the zero fraction included) agrees with what PyTorch computed.
void TestTensorTableModel::statisticsMatchTorch()
{
    QFETCH(QString, file);
    const QJsonObject expected = detailStats(file);
    QVERIFY2(!expected.isEmpty(), "expected.json has no __detail__ section for this file");
    m_model->setDocument(readFixture(file));
    fillStatistics(*m_model);
    QCOMPARE(m_model->rowCount(), expected.size());
    const int sort = TensorTableModel::SortRole;
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const QString name = m_model->index(r, TensorTableModel::NameColumn).data().toString();
        const QJsonObject e = expected.value(name).toObject();
        QVERIFY2(!e.isEmpty(), qPrintable(name));
        auto cell = [&](int column, int role) { return m_model->index(r, column).data(role); };
        if (e.value("meta").toBool()) {
            QVERIFY(cell(TensorTableModel::MinColumn, Qt::ToolTipRole).toString().contains("meta"));
            QVERIFY(!cell(TensorTableModel::L2Column, TensorTableModel::StatisticsRole).isValid());
            continue;
        }
        const QJsonObject st = e.value("stats").toObject();
        const QString where = file + ": " + name;
        // The figures of __detail__ are over the values that are not NaN; where there are NaN
        // values the columns show torch's own (nan) and those are the figures without them.
        const bool nans = st.value("nan").toInteger() > 0;
        auto check = [&](int column, const char *key) {
            const QVariant v = cell(column, sort);
            const double got = v.isValid() ? v.toDouble() : std::nan("");
            const bool torchNan = nans && column != TensorTableModel::ZeroFractionColumn;
            const double want = torchNan ? std::nan("") : jsonNumber(st.value(key));
            QVERIFY2(close(got, want), qPrintable(QStringLiteral("%1 %2: %3 != %4").arg(where, key).arg(got).arg(want)));
            // Copy gives the figure with every digit (the cell shows 5): it reads back as the figure.
            if (column != TensorTableModel::ZeroFractionColumn && std::isfinite(got)) {
                const QString copied = cell(column, CopyTextRole).toString();
                QVERIFY2(copied.toDouble() == got, qPrintable(where + QStringLiteral(" copied ") + copied));
            }
            if (torchNan) {
                const StatFigures w = m_model->statistics(r)->withoutNan();
                const double without = column == TensorTableModel::MinColumn    ? w.min
                                       : column == TensorTableModel::MaxColumn  ? w.max
                                       : column == TensorTableModel::MeanColumn ? w.mean
                                       : column == TensorTableModel::StdColumn  ? w.std
                                                                                : w.l2;
                QVERIFY2(close(without, jsonNumber(st.value(key))),
                         qPrintable(QStringLiteral("%1 %2 without NaN: %3").arg(where, key).arg(without)));
            }
        };
        check(TensorTableModel::MinColumn, "min");
        check(TensorTableModel::MaxColumn, "max");
        check(TensorTableModel::MeanColumn, "mean");
        check(TensorTableModel::StdColumn, "std");
        check(TensorTableModel::L2Column, "l2");
        check(TensorTableModel::ZeroFractionColumn, "zero_fraction");
        QCOMPARE(cell(TensorTableModel::NonFiniteColumn, sort).toLongLong(),
                 st.value("nan").toInteger() + st.value("inf").toInteger());
        QVERIFY(!cell(TensorTableModel::L2Column, Qt::DisplayRole).toString().isEmpty());
        QVERIFY(cell(TensorTableModel::ZeroFractionColumn, Qt::DisplayRole).toString().contains('%') ||
                st.value("count").toInteger() == 0);
    }
}

// An integer tensor's min and max are shown whole and exact: -9223372036854775808 and
// 9007199254740993, not -9.2234e+18 (int_extremes.pth, against the values PyTorch wrote).
void TestTensorTableModel::integerExtremesExactly()
{
    const QJsonArray tensors = test::expectedListing().value("int_extremes.pth").toObject().value("tensors").toArray();
    QVERIFY(!tensors.isEmpty());
    m_model->setDocument(readFixture(QStringLiteral("int_extremes.pth")));
    fillStatistics(*m_model);
    QCOMPARE(m_model->rowCount(), tensors.size());
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const QString name = m_model->index(r, TensorTableModel::NameColumn).data().toString();
        QJsonArray values;
        for (const auto &t : tensors)
            if (t.toObject().value("name").toString() == name)
                values = t.toObject().value("values").toArray();
        QVERIFY2(!values.isEmpty(), qPrintable(name));
        qlonglong lo = std::numeric_limits<qlonglong>::max(), hi = std::numeric_limits<qlonglong>::min();
        for (const auto &v : values) {
            const qlonglong x = v.isBool() ? qlonglong(v.toBool()) : v.toInteger();
            lo = std::min(lo, x);
            hi = std::max(hi, x);
        }
        QCOMPARE(m_model->index(r, TensorTableModel::MinColumn).data().toString(), QString::number(lo));
        QCOMPARE(m_model->index(r, TensorTableModel::MaxColumn).data().toString(), QString::number(hi));
    }
}

// Rows whose tensor holds NaN or Inf are marked across the row (colours and an icon), others not.
void TestTensorTableModel::nonFiniteRowsMarked()
{
    const QJsonObject expected = detailStats(QStringLiteral("nan_inf.pth"));
    m_model->setDocument(readFixture(QStringLiteral("nan_inf.pth")));
    QVERIFY(!m_model->index(0, 0).data(TensorTableModel::NonFiniteRole).toBool());  // nothing known yet
    fillStatistics(*m_model);
    int marked = 0;
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const QString name = m_model->index(r, 0).data().toString();
        const QJsonObject st = expected.value(name).toObject().value("stats").toObject();
        const bool dirty = st.value("nan").toInteger() + st.value("inf").toInteger() > 0;
        marked += dirty;
        QCOMPARE(m_model->index(r, 0).data(TensorTableModel::NonFiniteRole).toBool(), dirty);
        for (int c = 0; c < TensorTableModel::ColumnCount; ++c) {
            QCOMPARE(m_model->index(r, c).data(Qt::BackgroundRole).isValid(), dirty);
            QCOMPARE(m_model->index(r, c).data(Qt::ForegroundRole).isValid(), dirty);
        }
        QCOMPARE(m_model->index(r, TensorTableModel::NameColumn).data(Qt::DecorationRole).isValid(), dirty);
    }
    QVERIFY(marked >= 2);  // 'dirty' and 'half_dirty'
    // Marked rows survive sorting and filtering.
    m_proxy->sort(TensorTableModel::NonFiniteColumn, Qt::DescendingOrder);
    QVERIFY(m_proxy->index(0, 0).data(TensorTableModel::NonFiniteRole).toBool());
    m_proxy->setFilterFixedString(QStringLiteral("clean"));
    QCOMPARE(m_proxy->rowCount(), 1);
    QVERIFY(!m_proxy->index(0, 0).data(Qt::BackgroundRole).isValid());
}

// Sorting by the new columns orders rows as PyTorch's numbers do.
void TestTensorTableModel::sortsByNorm()
{
    const QJsonObject expected = detailStats(QStringLiteral("state_dict.pth"));
    m_model->setDocument(readFixture(QStringLiteral("state_dict.pth")));
    fillStatistics(*m_model);
    QList<QPair<double, QString>> want;
    for (auto it = expected.begin(); it != expected.end(); ++it)
        want.append({it.value().toObject().value("stats").toObject().value("l2").toDouble(), it.key()});
    std::sort(want.begin(), want.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
    m_proxy->sort(TensorTableModel::L2Column, Qt::DescendingOrder);
    QStringList got, wantNames;
    for (int r = 0; r < m_proxy->rowCount(); ++r)
        got << m_proxy->index(r, 0).data().toString();
    for (const auto &w : want)
        wantNames << w.second;
    QCOMPARE(got, wantNames);
    m_proxy->sort(TensorTableModel::ZeroFractionColumn, Qt::AscendingOrder);
    double last = -1;
    for (int r = 0; r < m_proxy->rowCount(); ++r) {
        const double z = m_proxy->index(r, TensorTableModel::ZeroFractionColumn).data(TensorTableModel::SortRole).toDouble();
        QVERIFY(z >= last);
        last = z;
    }
}

QTEST_MAIN(TestTensorTableModel)
// The statistics columns are torch's figures (torch.mean's nan where a tensor holds a NaN, as
// `ckpt tensors --stats` writes it) and take a complex tensor's real and imaginary parts together:
// the header says so; a cell of a tensor with NaN values gives the figures without them
// (torch.nanmean, min/max over the others), and a complex one says so (guiviews/stats.pth,
// expected.json "__guiviews__").
void TestTensorTableModel::statisticsSayWhatTheyAreOver()
{
    const QJsonObject section = expectedJson().value("__guiviews__").toObject().value("stats").toObject();
    QVERIFY2(!section.isEmpty(), "regenerate the fixtures");
    for (int c : {TensorTableModel::MinColumn, TensorTableModel::MaxColumn, TensorTableModel::MeanColumn}) {
        const QString tip = m_model->headerData(c, Qt::Horizontal, Qt::ToolTipRole).toString();
        QVERIFY2(tip.contains("As torch gives them") && tip.contains("without the NaN values") &&
                     tip.contains("real and imaginary parts together"),
                 qPrintable(tip));
    }
    m_model->setDocument(readFixture(section.value("file").toString()));
    fillStatistics(*m_model);
    const QJsonObject tensors = section.value("tensors").toObject();
    QCOMPARE(m_model->rowCount(), tensors.size());
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const QString name = m_model->index(r, TensorTableModel::NameColumn).data().toString();
        const QJsonObject want = tensors.value(name).toObject();
        QVERIFY2(!want.isEmpty(), qPrintable(name));
        auto value = [&](int column) {
            const QVariant v = m_model->index(r, column).data(TensorTableModel::SortRole);
            return v.isValid() ? v.toDouble() : std::nan("");
        };
        const qint64 nans = want.value("nan").toInteger();
        QVERIFY2(close(value(TensorTableModel::MeanColumn), jsonNumber(want.value("torch_mean"))), qPrintable(name));
        const StatFigures without = m_model->statistics(r)->withoutNan();
        QVERIFY2(close(without.mean, jsonNumber(want.value("nanmean"))), qPrintable(name));
        QVERIFY2(close(nans ? without.min : value(TensorTableModel::MinColumn), jsonNumber(want.value("min"))), qPrintable(name));
        QVERIFY2(close(nans ? without.max : value(TensorTableModel::MaxColumn), jsonNumber(want.value("max"))), qPrintable(name));
        if (nans > 0)
            QVERIFY(std::isnan(value(TensorTableModel::MinColumn)) && std::isnan(value(TensorTableModel::MaxColumn)));
        for (int c : {TensorTableModel::MinColumn, TensorTableModel::MaxColumn, TensorTableModel::MeanColumn}) {
            const QString tip = m_model->index(r, c).data(Qt::ToolTipRole).toString();
            QCOMPARE(tip.contains(QStringLiteral("Without the %1 NaN values:").arg(nans)), nans > 0);
            QCOMPARE(tip.contains(QStringLiteral("complex: over real and imaginary parts together")),
                     want.value("complex").toBool());
            if (nans == 0 && !want.value("complex").toBool())
                QVERIFY2(tip.isEmpty(), qPrintable(tip));
        }
    }
}

#include "tst_tensortablemodel.moc"
