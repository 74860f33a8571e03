// TensorValuesModel: the values grid against the numbers PyTorch wrote into expected.json
// ("__detail__", from generate_fixtures.py), slices of N-D tensors, lazy block reads of a 4096 x
// 4096 matrix, and what happens without a compute module.
#include "computeloader.h"
#include "document.h"
#include "copyrole.h"
#include "tensorvaluesmodel.h"
#include "valuetext.h"

#include <QAbstractItemModelTester>
#include <QJsonArray>
#include <QJsonObject>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTest>
#include <QtCore/qfloat16.h>

#include <cstdlib>

#include <cmath>
#include <functional>
#include <stdexcept>

#include "testdata.h"

using namespace ckpt;

namespace {

QJsonObject detailSection()
{
    return test::expectedListing().value("__detail__").toObject();
}

double jsonNumber(const QJsonValue &v)
{
    if (v.isString()) {
        const QString s = v.toString();
        return s == "nan" ? std::nan("") : (s == "inf" ? INFINITY : -INFINITY);
    }
    return v.toDouble();
}

bool same(double got, double want)
{
    if (std::isnan(want))
        return std::isnan(got);
    return got == want || std::abs(got - want) <= 1e-12 * std::max(1.0, std::abs(want));
}

const TensorRef *tensorNamed(const Document &doc, const std::string &name)
{
    for (const auto &t : doc.stateDict)
        if (t.name == name)
            return &t.ref();
    return nullptr;
}

TensorValuesModel::ComputeProvider realCompute()
{
    return []() -> ComputeApi & { return ComputeLoader::api(); };
}

// Asks for every cell of the grid (as a view painting it would) until all have arrived.
bool fetchAll(TensorValuesModel &m, int timeoutMs = 20000)
{
    auto allThere = [&] {
        bool all = true;
        for (int r = 0; r < m.rowCount(); ++r)
            for (int c = 0; c < m.columnCount(); ++c)
                all = m.index(r, c).data(TensorValuesModel::IsFetchedRole).toBool() && all;
        return all;
    };
    for (int waited = 0; waited < timeoutMs; waited += 20) {
        (void)m.index(0, 0).data(); // a display request starts the reads
        for (int r = 0; r < m.rowCount(); ++r)
            for (int c = 0; c < m.columnCount(); ++c)
                (void)m.index(r, c).data();
        if (allThere())
            return true;
        QTest::qWait(20);
    }
    return false;
}

} // namespace

class TestTensorValuesModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void valuesMatchTorch_data();
    void valuesMatchTorch();
    void slicesOfNdTensors();
    void layoutByRank();
    void largeTensorReadsOnlyWhatIsAsked();
    void longVectorWraps();
    void quantizedRawAndReal();
    void integersExactly();
    void metaTensorHasNoValues();
    void computeModuleMissing();
    void newTensorDropsOldReads();
    void edgeValuesAsTorchHasThem_data();
    void edgeValuesAsTorchHasThem();
    void textTellsNeighboursApart();

private:
    TensorValuesModel *m_model = nullptr;
    QAbstractItemModelTester *m_tester = nullptr;
};

void TestTensorValuesModel::init()
{
    m_model = new TensorValuesModel;
    m_model->setComputeProvider(realCompute());
    m_tester = new QAbstractItemModelTester(m_model, QAbstractItemModelTester::FailureReportingMode::QtTest);
}

void TestTensorValuesModel::cleanup()
{
    delete m_tester;
    delete m_model;
}

void TestTensorValuesModel::valuesMatchTorch_data()
{
    QTest::addColumn<QString>("name");
    const QJsonObject files = detailSection().value("files").toObject().value("detail.pth").toObject();
    for (auto it = files.begin(); it != files.end(); ++it)
        QTest::newRow(qPrintable(it.key())) << it.key();
}

// Every value of every detail.pth tensor, in the grid's cells, as PyTorch lists them (slice 0 of
// N-D tensors; complex as real and imaginary parts).
void TestTensorValuesModel::valuesMatchTorch()
{
    QFETCH(QString, name);
    const QJsonObject e =
        detailSection().value("files").toObject().value("detail.pth").toObject().value(name).toObject();
    const QJsonArray values = e.value("values").toArray();
    QVERIFY(!values.isEmpty());
    const auto doc = test::readFixture(QStringLiteral("detail.pth"));
    const TensorRef *t = tensorNamed(*doc, name.toStdString());
    QVERIFY(t);
    m_model->setTensor(doc, t);
    QVERIFY(fetchAll(*m_model));
    const bool complex = e.value("dtype").toString().startsWith("complex");
    for (int r = 0; r < m_model->rowCount(); ++r)
        for (int c = 0; c < m_model->columnCount(); ++c) {
            const QModelIndex i = m_model->index(r, c);
            const qlonglong flat = i.data(TensorValuesModel::FlatIndexRole).toLongLong();
            const QString where = QStringLiteral("%1 (%2, %3)").arg(name).arg(r).arg(c);
            if (complex) {
                QVERIFY2(same(i.data(TensorValuesModel::ValueRole).toDouble(), values[int(flat * 2)].toDouble()),
                         qPrintable(where));
                QVERIFY2(
                    same(i.data(TensorValuesModel::ImaginaryRole).toDouble(), values[int(flat * 2 + 1)].toDouble()),
                    qPrintable(where));
                QVERIFY(i.data().toString().endsWith("j)"));
            } else {
                const double want = jsonNumber(values[int(flat)]);
                QVERIFY2(same(i.data(TensorValuesModel::ValueRole).toDouble(), want), qPrintable(where));
                // Copy gives a text that reads back as the value torch holds (the cell shows 6 digits).
                const QString copied = i.data(CopyTextRole).toString();
                const QString dtype = e.value("dtype").toString();
                if (std::isfinite(want) && (dtype == QStringLiteral("float32") || dtype == QStringLiteral("float16") ||
                                            dtype == QStringLiteral("bfloat16")))
                    QVERIFY2(copied.toFloat() == static_cast<float>(want), qPrintable(where + QStringLiteral(": ") + copied));
                else if (std::isfinite(want) && dtype.startsWith(QStringLiteral("float")))
                    QVERIFY2(same(copied.toDouble(), want), qPrintable(where + QStringLiteral(": ") + copied));
                else  // integers and bools: copied as shown (True, 7), every digit already there
                    QCOMPARE(copied, i.data().toString());
                if (!std::isfinite(want))
                    QVERIFY(i.data(Qt::BackgroundRole).isValid()); // NaN and Inf cells stand out
            }
        }
    // Texts by kind: bools as Python writes them, integers whole.
    if (name == "flags")
        QCOMPARE(m_model->index(0, 0).data().toString(),
                 values[0].toDouble() != 0 ? QStringLiteral("True") : QStringLiteral("False"));
    if (name == "ints")
        QCOMPARE(m_model->index(0, 0).data().toString(), QString::number(values[0].toInteger()));
}

void TestTensorValuesModel::slicesOfNdTensors()
{
    const QJsonObject e =
        detailSection().value("files").toObject().value("detail.pth").toObject().value("hyper").toObject();
    const QJsonArray values = e.value("values").toArray();
    const auto doc = test::readFixture(QStringLiteral("detail.pth"));
    m_model->setTensor(doc, tensorNamed(*doc, "hyper"));
    QCOMPARE(m_model->rank(), 4);
    QCOMPARE(m_model->leadingDimensions(), 2);
    QCOMPARE(m_model->rowCount(), 4);
    QCOMPARE(m_model->columnCount(), 5);
    QSignalSpy changed(m_model, &QAbstractItemModel::dataChanged);
    for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 3; ++b) {
            m_model->setSliceIndex(0, a);
            m_model->setSliceIndex(1, b);
            QCOMPARE(m_model->sliceIndex(0), a);
            QCOMPARE(m_model->sliceIndex(1), b);
            QVERIFY(fetchAll(*m_model));
            for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 5; ++c) {
                    const int flat = ((a * 3 + b) * 4 + r) * 5 + c;
                    QCOMPARE(m_model->index(r, c).data(TensorValuesModel::ValueRole).toDouble(),
                             values[flat].toDouble());
                    QVERIFY(m_model->index(r, c)
                                .data(Qt::ToolTipRole)
                                .toString()
                                .startsWith(QStringLiteral("[%1, %2, %3, %4]").arg(a).arg(b).arg(r).arg(c)));
                }
        }
    QVERIFY(changed.count() > 0);
    m_model->setSliceIndex(0, 99); // clamped to the dimension
    QCOMPARE(m_model->sliceIndex(0), 1);
}

void TestTensorValuesModel::layoutByRank()
{
    const auto doc = test::readFixture(QStringLiteral("detail.pth"));
    const QJsonObject files = detailSection().value("files").toObject().value("detail.pth").toObject();
    for (const char *name : {"vec", "matrix", "cube", "scalar", "transposed"}) {
        const QJsonArray shape = files.value(name).toObject().value("shape").toArray();
        m_model->setTensor(doc, tensorNamed(*doc, name));
        const int rank = int(shape.size());
        QCOMPARE(m_model->rank(), rank);
        const int rows = rank == 0 ? 1 : int(shape[rank == 1 ? 0 : rank - 2].toInteger());
        const int cols = rank < 2 ? 1 : int(shape[rank - 1].toInteger());
        QCOMPARE(m_model->rowCount(), rows);
        QCOMPARE(m_model->columnCount(), cols);
        QCOMPARE(m_model->leadingDimensions(), std::max(0, rank - 2));
    }
}

// A 4096 x 4096 float32 matrix: reading a corner reads a few blocks, not 16 million elements.
void TestTensorValuesModel::largeTensorReadsOnlyWhatIsAsked()
{
    const QJsonObject large = detailSection().value("large.pth").toObject();
    // The tester walks every cell after a reset; it watches the small tensors, not this one.
    delete m_tester;
    m_tester = nullptr;
    const auto doc = test::readFixture(QStringLiteral("large.pth"));
    QCOMPARE(doc->stateDict.size(), std::size_t(1));
    m_model->setTensor(doc, &doc->stateDict[0].ref());
    QCOMPARE(m_model->rowCount(), int(large.value("shape").toArray()[0].toInteger()));
    QCOMPARE(m_model->columnCount(), int(large.value("shape").toArray()[1].toInteger()));
    const qint64 numel = qint64(m_model->rowCount()) * m_model->columnCount();
    QCOMPARE(m_model->fetchedElements(), 0);
    for (const auto &p : large.value("picks").toArray()) {
        const qint64 flat = p.toArray()[0].toInteger();
        const QModelIndex i = m_model->index(int(flat / m_model->columnCount()), int(flat % m_model->columnCount()));
        QCOMPARE(i.data(TensorValuesModel::FlatIndexRole).toLongLong(), flat);
        QTRY_VERIFY_WITH_TIMEOUT((void(i.data()), i.data(TensorValuesModel::IsFetchedRole).toBool()), 20000);
        QCOMPARE(i.data(TensorValuesModel::ValueRole).toDouble(), p.toArray()[1].toDouble());
    }
    // Seven cells: at most a block each.
    QVERIFY2(m_model->fetchedElements() <= 7 * TensorValuesModel::kBlockElements,
             qPrintable(QString::number(m_model->fetchedElements())));
    QVERIFY(m_model->fetchedElements() < numel / 100);
}

// 2.5 million values in one dimension: five to a grid line (a million header rows at most).
void TestTensorValuesModel::longVectorWraps()
{
    delete m_tester; // the tester would walk every cell
    m_tester = nullptr;
    const QJsonObject e = detailSection().value("long.pth").toObject();
    const qint64 n = e.value("shape").toArray()[0].toInteger();
    const auto doc = test::readFixture(QStringLiteral("long.pth"));
    m_model->setTensor(doc, &doc->stateDict[0].ref());
    QVERIFY(n > TensorValuesModel::kMaxGridRows);
    QCOMPARE(m_model->rowsPerLine(), 5);
    QCOMPARE(m_model->columnCount(), 5);
    QCOMPARE(qint64(m_model->rowCount()), (n + 4) / 5);
    QVERIFY(m_model->rowCount() <= TensorValuesModel::kMaxGridRows);
    QCOMPARE(m_model->headerData(3, Qt::Vertical).toString(), QStringLiteral("15"));
    QCOMPARE(m_model->headerData(2, Qt::Horizontal).toString(), QStringLiteral("+2"));
    for (const auto &p : e.value("picks").toArray()) {
        const qint64 flat = p.toArray()[0].toInteger();
        const QModelIndex i = m_model->index(int(flat / 5), int(flat % 5));
        QCOMPARE(i.data(TensorValuesModel::FlatIndexRole).toLongLong(), flat);
        QTRY_VERIFY_WITH_TIMEOUT((void(i.data()), i.data(TensorValuesModel::IsFetchedRole).toBool()), 20000);
        QCOMPARE(i.data(TensorValuesModel::ValueRole).toDouble(), p.toArray()[1].toDouble());
        QVERIFY(i.data(Qt::ToolTipRole).toString().startsWith(QStringLiteral("[%1]").arg(flat)));
    }
    QVERIFY(m_model->fetchedElements() < n / 100);
}

void TestTensorValuesModel::quantizedRawAndReal()
{
    const QJsonObject special =
        test::expectedListing().value("__special__").toObject().value("special_tensors.pth").toObject();
    const auto doc = test::readFixture(QStringLiteral("special_tensors.pth"));
    for (const char *name : {"q", "qc"}) {
        const QJsonObject e = special.value(name).toObject();
        m_model->setTensor(doc, tensorNamed(*doc, name));
        QVERIFY(fetchAll(*m_model));
        const int cols = m_model->columnCount();
        for (int k = 0; k < e.value("dequantized").toArray().size(); ++k)
            QVERIFY(std::abs(m_model->index(k / cols, k % cols).data(TensorValuesModel::ValueRole).toDouble() -
                             e.value("dequantized").toArray()[k].toDouble()) < 1e-6);
        m_model->setRawValues(true);
        QVERIFY(m_model->rawValues());
        QVERIFY(fetchAll(*m_model));
        for (int k = 0; k < e.value("raw").toArray().size(); ++k) {
            const QModelIndex i = m_model->index(k / cols, k % cols);
            QCOMPARE(i.data(TensorValuesModel::ValueRole).toDouble(), e.value("raw").toArray()[k].toDouble());
            QCOMPARE(i.data().toString(), QString::number(e.value("raw").toArray()[k].toInteger()));
        }
    }
}

// Integer and bool tensors in the grid exactly as PyTorch wrote them: int64 at its ends and past
// 2^53, where a double would round (int_extremes.pth), and uint64 up to 2^64 - 1 (newer_dtypes.pth,
// whose expected values come as text because Qt's JSON keeps such numbers as doubles).
void TestTensorValuesModel::integersExactly()
{
    auto checkGrid = [this](const std::shared_ptr<const Document> &doc, const std::string &name,
                            const std::function<QString(qlonglong)> &want, qlonglong count) {
        m_model->setTensor(doc, tensorNamed(*doc, name));
        QVERIFY(fetchAll(*m_model));
        qlonglong seen = 0;
        for (int r = 0; r < m_model->rowCount(); ++r)
            for (int c = 0; c < m_model->columnCount(); ++c) {
                const QModelIndex i = m_model->index(r, c);
                const QVariant flat = i.data(TensorValuesModel::FlatIndexRole);
                if (!flat.isValid())
                    continue;
                const QString text = want(flat.toLongLong());
                QCOMPARE(i.data().toString(), text);
                QVERIFY2(i.data(Qt::ToolTipRole).toString().endsWith(QStringLiteral("= ") + text),
                         qPrintable(i.data(Qt::ToolTipRole).toString()));
                ++seen;
            }
        QCOMPARE(seen, count);
    };
    const QJsonArray tensors = test::expectedListing().value("int_extremes.pth").toObject().value("tensors").toArray();
    QVERIFY(!tensors.isEmpty());
    const auto doc = test::readFixture(QStringLiteral("int_extremes.pth"));
    for (const auto &t : tensors) {
        const QJsonArray values = t.toObject().value("values").toArray();
        checkGrid(doc, t.toObject().value("name").toString().toStdString(), [&values](qlonglong k) {
            const QJsonValue v = values[int(k)];
            return v.isBool() ? (v.toBool() ? QStringLiteral("True") : QStringLiteral("False"))
                              : QString::number(v.toInteger());
        }, values.size());
    }
    const QJsonObject newer = test::expectedListing().value("__newer_dtypes__").toObject().value("tensors").toObject();
    const auto newerDoc = test::readFixture(QStringLiteral("newer_dtypes.pth"));
    int unsignedTensors = 0;
    for (auto it = newer.begin(); it != newer.end(); ++it) {
        const QJsonArray text = it.value().toObject().value("text").toArray();
        if (text.isEmpty())
            continue;
        ++unsignedTensors;
        checkGrid(newerDoc, it.key().toStdString(), [&text](qlonglong k) { return text[int(k)].toString(); },
                  text.size());
    }
    QVERIFY(unsignedTensors >= 3); // uint16, uint32, uint64 (and uint64 past 2^63)
}

void TestTensorValuesModel::metaTensorHasNoValues()
{
    const auto doc = test::readFixture(QStringLiteral("special_tensors.pth"));
    m_model->setTensor(doc, tensorNamed(*doc, "meta"));
    QVERIFY(m_model->hasTensor());
    QVERIFY(m_model->noValuesReason().contains(QStringLiteral("meta")));
    QCOMPARE(m_model->rowCount(), 0);
    QCOMPARE(m_model->fetchedElements(), 0);
}

// Without the compute module the grid says why, once, and asks no more.
void TestTensorValuesModel::computeModuleMissing()
{
    const QString reason = QStringLiteral("libckpt_compute.so: cannot open shared object file");
    m_model->setComputeProvider([reason]() -> ComputeApi & { throw std::runtime_error(reason.toStdString()); });
    const auto doc = test::readFixture(QStringLiteral("detail.pth"));
    m_model->setTensor(doc, tensorNamed(*doc, "matrix"));
    QSignalSpy failed(m_model, &TensorValuesModel::fetchFailed);
    (void)m_model->index(0, 0).data();
    QVERIFY(failed.wait(10000));
    QVERIFY(failed.first().first().toString().contains(reason));
    QCOMPARE(m_model->errorText(), reason);
    QCOMPARE(m_model->index(0, 0).data().toString(), QStringLiteral("?"));
    QTest::qWait(100);
    QCOMPARE(failed.count(), 1);
    QVERIFY(!m_model->isFetching());
}

// Reads started for one tensor never land in the next one's cells.
void TestTensorValuesModel::newTensorDropsOldReads()
{
    const QJsonObject files = detailSection().value("files").toObject().value("detail.pth").toObject();
    const auto doc = test::readFixture(QStringLiteral("detail.pth"));
    m_model->setTensor(doc, tensorNamed(*doc, "matrix"));
    (void)m_model->index(0, 0).data();
    m_model->setTensor(doc, tensorNamed(*doc, "ints"));
    QVERIFY(fetchAll(*m_model));
    QCOMPARE(m_model->index(0, 0).data(TensorValuesModel::ValueRole).toDouble(),
             files.value("ints").toObject().value("values").toArray()[0].toDouble());
    m_model->clear();
    QCOMPARE(m_model->rowCount(), 0);
    QVERIFY(!m_model->hasTensor());
}

void TestTensorValuesModel::edgeValuesAsTorchHasThem_data()
{
    QTest::addColumn<QString>("name");
    const QJsonObject stats = test::expectedListing().value("__extremes__").toObject().value("stats").toObject();
    for (auto it = stats.begin(); it != stats.end(); ++it)
        if (it.value().toObject().contains("values") && !it.value().toObject().value("values").toArray().isEmpty())
            QTest::newRow(qPrintable(it.key())) << it.key();
}

// Values at the edges of each float type (tests/fixtures/stats_extremes.py) as torch holds them:
// subnormals and -0.0 exactly (the sign of zero kept in the text too), NaN and infinities by
// torch's words, other numbers to the digits the grid shows for the type.
void TestTensorValuesModel::edgeValuesAsTorchHasThem()
{
    QFETCH(QString, name);
    const QJsonObject e =
        test::expectedListing().value("__extremes__").toObject().value("stats").toObject().value(name).toObject();
    const QJsonArray values = e.value("values").toArray();
    const auto doc = test::readFixture(QStringLiteral("extremes/stats.pth"));
    const TensorRef *t = tensorNamed(*doc, name.toStdString());
    QVERIFY(t);
    m_model->setTensor(doc, t);
    QVERIFY(fetchAll(*m_model));
    const bool complex = e.value("dtype").toString().startsWith("complex");
    const QString dtype = e.value("dtype").toString();
    // The grid's digits: 5 for float16, 4 for bfloat16, 6 for float32, 10 for float64 (checked to
    // within the looser bound here; textTellsNeighboursApart checks float16 exactly).
    const double digits = dtype == "float64" || dtype == "complex128" ? 1e-9
                          : dtype == "float16" || dtype == "bfloat16" ? 1e-3
                                                                      : 1e-5;
    const auto number = [](const QJsonValue &v) { return v.isString() ? v.toString().toDouble() : v.toDouble(); };
    int seen = 0;
    for (int r = 0; r < m_model->rowCount(); ++r)
        for (int c = 0; c < m_model->columnCount(); ++c) {
            const QModelIndex i = m_model->index(r, c);
            if (!i.data(TensorValuesModel::IsFetchedRole).toBool())
                continue;
            const qlonglong flat = i.data(TensorValuesModel::FlatIndexRole).toLongLong();
            const int k = int(complex ? 2 * flat : flat);
            const double want = values[k].isString() && values[k].toString() != QLatin1String("-0.0")
                                    ? jsonNumber(values[k]) : number(values[k]);
            const double got = i.data(TensorValuesModel::ValueRole).toDouble();
            const QString where = QStringLiteral("%1[%2]: %3, torch %4").arg(name).arg(flat).arg(i.data().toString())
                                      .arg(want, 0, 'g', 17);
            QVERIFY2(std::isnan(want) ? std::isnan(got) : got == want && std::signbit(got) == std::signbit(want),
                     qPrintable(where));
            ++seen;
            if (complex)
                continue;  // "(re+imj)": the parts as the real numbers are
            const QString text = i.data().toString();
            if (!std::isfinite(want)) {
                QCOMPARE(text, std::isnan(want) ? QStringLiteral("nan") : want > 0 ? QStringLiteral("inf") : QStringLiteral("-inf"));
                continue;
            }
            bool ok = false;
            const double shown = text.toDouble(&ok);
            // 10 digits of 1.7976931348623157e308 round past float64 and do not parse back.
            QVERIFY2((ok && std::abs(shown - want) <= digits * std::abs(want) && std::signbit(shown) == std::signbit(want)) ||
                         text == valuetext::elementText(want, DType::Float64),
                     qPrintable(where));
        }
    QCOMPARE(seen * (complex ? 2 : 1), static_cast<int>(values.size()));
}

// Every float16 value's text reads back as that float16 (neighbours near 1 are 2^-10 apart: four
// digits showed 1 + 21/1024 and 1 + 22/1024 both as "1.021"); a statistic that is NaN over some
// values says "nan", one over no values a dash; a tooltip's float64 reads back exactly.
void TestTensorValuesModel::textTellsNeighboursApart()
{
    for (int k = 0; k < 1024; ++k)
        for (const double base : {1.0, 1000.0, 32768.0}) {
            const double v = static_cast<float>(qfloat16(static_cast<float>(base * (1 + k / 1024.0))));
            const QString text = valuetext::elementText(v, DType::Float16);
            bool ok = false;
            const double back = static_cast<float>(qfloat16(static_cast<float>(text.toDouble(&ok))));
            QVERIFY2(ok && back == v, qPrintable(QStringLiteral("%1 shown %2").arg(v, 0, 'g', 17).arg(text)));
        }
    TensorStats s;
    s.count = 2;
    QCOMPARE(valuetext::statisticText(std::nan(""), s, 5), QStringLiteral("nan"));
    s.nanCount = 2;
    QCOMPARE(valuetext::statisticText(std::nan(""), s, 5), QStringLiteral("\u2013"));
    for (const double v : {0.1, 1.0 / 3, 1e300, -5e-324})
        QCOMPARE(valuetext::fullPrecisionText(v).toDouble(), v);
    // What Copy puts on the clipboard reads back as the stored value of its dtype, with no more
    // digits than that dtype needs (a float32 in at most 9, not a float64's 17).
    for (const float f : {-0.030074818f, 0.1f, 3.4028235e38f, 1.17549435e-38f, 1e-45f, 16777217.0f}) {
        const QString text = valuetext::copyText(f, DType::Float32);
        QCOMPARE(std::strtof(text.toLatin1().constData(), nullptr), f);  // as Python's float32 parse rounds
        QVERIFY2(text.count(QRegularExpression(QStringLiteral("[0-9]"))) <= 9 + 2, qPrintable(text));
    }
    QCOMPARE(valuetext::copyText(-0.030074818f, DType::Float32), QStringLiteral("-0.030074818"));
    QCOMPARE(valuetext::copyText(0.296875, DType::BFloat16), QStringLiteral("0.296875"));
    QCOMPARE(valuetext::copyText(0.1, DType::Float64).toDouble(), 0.1);
    QCOMPARE(valuetext::copyText(7, DType::Int64), QStringLiteral("7"));
}

QTEST_MAIN(TestTensorValuesModel)
#include "tst_tensorvaluesmodel.moc"
