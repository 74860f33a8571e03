// The compute module against PyTorch: every fixture tensor turned into an at::Tensor holds the
// values torch.load gave (fixtures/expected.json), and the module loads by dlopen as the programs
// load it.
#include "computeloader.h"
#include "document.h"
#include "predictionoutputs.h"
#include "tensorconvert.h"

#include <ATen/ATen.h>
#include <QtTest>
#include <cmath>
#include <map>

using namespace ckpt;

class TestCompute : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void valuesAgreeWithPyTorch_data();
    void valuesAgreeWithPyTorch();
    void copyOutlivesTheDocument();
    void loaderFindsTheModule();
    void statisticsAgreeWithPyTorch();
    void invalidTensorIsRefused();
    void specialTensors_data();
    void specialTensors();
    void torchScript_data();
    void torchScript();
    void safetensorsValues_data();
    void safetensorsValues();
    void bigEndianIsSwapped();
    void numpyArrays_data();
    void numpyArrays();
    void histogramsAgreeWithTorchHistc();
    void outputsReadAsATenReadsThem();
    void statisticsAtTheEdges_data();
    void statisticsAtTheEdges();
    void differencesAtTheEdges();
    void scaledSumsAccumulate();

private:
    QJsonObject m_expected;
};

void TestCompute::initTestCase()
{
    QFile f(QStringLiteral(CKPT_FIXTURES_DIR "/expected.json"));
    QVERIFY(f.open(QIODevice::ReadOnly));
    m_expected = QJsonDocument::fromJson(f.readAll()).object();
}

void TestCompute::valuesAgreeWithPyTorch_data()
{
    QTest::addColumn<QString>("file");
    for (const char *f : {"state_dict.pth", "legacy_state_dict.pth", "legacy_protocol1.pth", "full_model_legacy.pth", "dtypes.pth", "dtypes_legacy.pth", "views.pth",
                          "views_legacy.pth", "cuda_saved.pth", "cuda_saved_legacy.pth", "protocol4.pth",
                          "protocol5.pth", "training_checkpoint.pth", "full_model.pth", "deflated.pth"})
        QTest::newRow(f) << QString(f);
}

void TestCompute::valuesAgreeWithPyTorch()
{
    QFETCH(QString, file);
    const auto doc = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + file).toStdString());
    const QJsonArray tensors = m_expected.value(file).toObject().value("tensors").toArray();
    QCOMPARE(static_cast<qsizetype>(doc.stateDict.size()), tensors.size());
    for (int i = 0; i < tensors.size(); ++i) {
        const QJsonObject exp = tensors[i].toObject();
        const auto &ref = doc.stateDict[static_cast<std::size_t>(i)].ref();
        at::Tensor t = toTensor(ref, false);
        QCOMPARE(t.sizes().vec(), ref.shape);
        QCOMPARE(t.strides().vec(), ref.strides);
        at::Tensor flat = t.reshape({-1});
        if (flat.is_complex())
            flat = at::view_as_real(flat).reshape({-1});
        flat = flat.to(at::kDouble);
        const QJsonArray values = exp.value("values").toArray();
        QVector<double> want;
        for (const auto &v : values) {
            if (v.isArray())
                for (const auto &c : v.toArray())
                    want << c.toDouble();
            else if (v.isBool())
                want << (v.toBool() ? 1.0 : 0.0);
            else
                want << v.toDouble();
        }
        const QString where = file + ": " + exp.value("name").toString();
        QVERIFY2(flat.numel() >= want.size(), qPrintable(where));
        for (int k = 0; k < want.size(); ++k)
            QVERIFY2(flat[k].item<double>() == want[k],
                     qPrintable(where + QString(" element %1: %2 != %3").arg(k).arg(flat[k].item<double>()).arg(want[k])));
        // The sum over every element, in float64 as the generator computed it.
        const QJsonValue sum = exp.value("sum");
        if (sum.isArray()) {
            at::Tensor s = at::view_as_real(t.to(at::kComplexDouble)).sum(0);
            if (t.dim() > 0)
                s = at::view_as_real(t.to(at::kComplexDouble)).reshape({-1, 2}).sum(0);
            QVERIFY2(std::abs(s[0].item<double>() - sum.toArray()[0].toDouble()) < 1e-6, qPrintable(where));
        } else {
            const double got = t.to(at::kDouble).sum().item<double>();
            QVERIFY2(std::abs(got - sum.toDouble()) <= 1e-9 * std::max(1.0, std::abs(sum.toDouble())),
                     qPrintable(where + QString(": sum %1 != %2").arg(got).arg(sum.toDouble())));
        }
    }
}

void TestCompute::copyOutlivesTheDocument()
{
    at::Tensor owned;
    at::Tensor expected;
    {
        const auto doc = readDocument(CKPT_FIXTURES_DIR "/views.pth");
        for (const auto &t : doc.stateDict)
            if (t.name == "transposed") {
                owned = toTensor(t.ref(), true);
                expected = toTensor(t.ref(), false).clone();
            }
    }
    QVERIFY(owned.defined());
    QVERIFY(at::equal(owned, expected));
    QCOMPARE(owned.sizes().vec(), (std::vector<std::int64_t>{6, 4}));
}

void TestCompute::loaderFindsTheModule()
{
    ComputeApi &api = ComputeLoader::api();
    QVERIFY(ComputeLoader::isLoaded());
    QVERIFY(QString::fromStdString(api.torchVersion()).startsWith("1.") ||
            QString::fromStdString(api.torchVersion()).startsWith("2."));
    const auto doc = readDocument(CKPT_FIXTURES_DIR "/views.pth");
    const auto &base = doc.stateDict.front();
    QCOMPARE(QString::fromStdString(base.name), QString("base"));
    const auto v = api.values(base.ref(), 3, 4);
    QCOMPARE(v, (std::vector<double>{-1.5, -1.0, -0.5, 0.0}));
}

void TestCompute::statisticsAgreeWithPyTorch()
{
    const auto doc = readDocument(CKPT_FIXTURES_DIR "/views.pth");
    const QJsonArray tensors = m_expected.value("views.pth").toObject().value("tensors").toArray();
    ComputeApi &api = ComputeLoader::api();
    for (std::size_t i = 0; i < doc.stateDict.size(); ++i) {
        const auto &ref = doc.stateDict[i].ref();
        const auto exp = tensors[static_cast<int>(i)].toObject();
        const auto s = api.statistics(ref);
        QCOMPARE(s.count, ref.numel());
        if (ref.numel() == 0)
            continue;
        const double mean = exp.value("sum").toDouble() / static_cast<double>(ref.numel());
        QVERIFY2(std::abs(s.mean - mean) < 1e-12, qPrintable(QString::fromStdString(doc.stateDict[i].name)));
    }
}

void TestCompute::invalidTensorIsRefused()
{
    const auto doc = readDocument(CKPT_FIXTURES_DIR "/tensor_past_storage.pth");
    bool refused = false;
    for (const auto &t : doc.stateDict)
        if (!t.ref().problem.empty()) {
            try {
                toTensor(t.ref(), false);
            } catch (const std::runtime_error &) {
                refused = true;
            }
        }
    QVERIFY(refused);
}

void TestCompute::specialTensors_data()
{
    QTest::addColumn<QString>("file");
    QTest::newRow("zip") << "special_tensors.pth";
    QTest::newRow("legacy") << "special_tensors_legacy.pth";
}

void TestCompute::specialTensors()
{
    QFETCH(QString, file);
    const QJsonObject expected = m_expected.value("__special__").toObject().value(file).toObject();
    QVERIFY(!expected.isEmpty());
    const auto doc = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + file).toStdString());
    QCOMPARE(static_cast<qsizetype>(doc.stateDict.size()), expected.size());
    ComputeApi &api = ComputeLoader::api();
    auto numbers = [](const QJsonValue &v) {
        std::vector<double> out;
        for (const auto &x : v.toArray())
            out.push_back(x.toDouble());
        return out;
    };
    for (const auto &t : doc.stateDict) {
        const QJsonObject e = expected.value(QString::fromStdString(t.name)).toObject();
        const auto &r = t.ref();
        const QString where = file + ": " + QString::fromStdString(t.name);
        QVERIFY2(r.problem.empty(), qPrintable(where + QString::fromStdString(r.problem)));
        QCOMPARE(QString(QLatin1String(dtypeName(r.dtype))), e.value("dtype").toString());
        QJsonArray shape;
        for (auto d : r.shape)
            shape.append(static_cast<qint64>(d));
        QCOMPARE(shape, e.value("shape").toArray());
        const QString layout = e.value("layout").toString();
        if (layout == "quantized") {
            QVERIFY(r.quantization);
            QCOMPARE(QString::fromStdString(r.quantization->scheme), e.value("scheme").toString());
            if (e.contains("scale")) {
                QCOMPARE(r.quantization->scale, e.value("scale").toDouble());
                QCOMPARE(r.quantization->zeroPoint, e.value("zero_point").toInteger());
            } else {
                QCOMPARE(r.quantization->axis, e.value("axis").toInteger());
            }
            QCOMPARE(api.values(r, 0, r.numel(), true), numbers(e.value("raw")));
            const auto real = api.values(r, 0, r.numel());
            const auto want = numbers(e.value("dequantized"));
            QCOMPARE(real.size(), want.size());
            // tensor.dequantize()'s float32 values, to the bit (tolist() gives them exactly).
            for (std::size_t i = 0; i < want.size(); ++i)
                QVERIFY2(real[i] == want[i], qPrintable(where + QString(": %1 != %2").arg(real[i], 0, 'g', 17).arg(want[i], 0, 'g', 17)));
        } else if (layout == "sparse_coo") {
            QCOMPARE(r.layout, TensorRef::Layout::SparseCoo);
            QCOMPARE(api.values(r, 0, r.numel()), numbers(e.value("dense")));
            QCOMPARE(api.statistics(r).zeroCount, std::int64_t(6));
        } else if (layout == "meta") {
            QCOMPARE(QString::fromStdString(r.device()), QString("meta"));
            QVERIFY_THROWS_EXCEPTION(std::runtime_error, api.statistics(r));
        }
        if (e.contains("class")) {
            // A tensor subclass is a tensor, labelled with its class.
            QCOMPARE(QString::fromStdString(t.value->pythonClass()), e.value("class").toString());
            QCOMPARE(api.values(r, 0, r.numel()), numbers(e.value("values")));
        }
    }
}

void TestCompute::torchScript_data()
{
    QTest::addColumn<QString>("file");
    QTest::newRow("scripted") << "scripted.pt";
    QTest::newRow("frozen") << "frozen.pt";
    QTest::newRow("mobile (lite interpreter)") << "mobile.ptl";
}

void TestCompute::torchScript()
{
    QFETCH(QString, file);
    const QJsonObject expected = m_expected.value("__script__").toObject().value(file).toObject();
    const auto doc = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + file).toStdString());
    QCOMPARE(doc.format, ContainerFormat::TorchScript);
    QCOMPARE(doc.kind, DocumentKind::ScriptModule);
    QVERIFY(!doc.sourceRecords.empty());
    QVERIFY(doc.sourceRecords.front().starts_with("code/__torch__"));
    // Parameters by name, as torch.jit.load's state_dict() lists them.
    const QJsonArray params = expected.value("parameters").toArray();
    int i = 0;
    for (const auto &p : params) {
        const auto row = p.toArray();
        const auto &t = doc.stateDict.at(static_cast<std::size_t>(i++));
        QCOMPARE(QString::fromStdString(t.name), row[0].toString());
        QCOMPARE(QString(QLatin1String(dtypeName(t.ref().dtype))), row[1].toString());
    }
    // The same numbers, wherever the archive keeps them (frozen modules fold them into constants).
    std::vector<double> sums;
    for (const auto &t : doc.stateDict)
        sums.push_back(toTensor(t.ref(), false).to(at::kDouble).sum().item<double>());
    std::sort(sums.begin(), sums.end());
    const QJsonArray want = expected.value("sums").toArray();
    QCOMPARE(static_cast<qsizetype>(sums.size()), want.size());
    for (int k = 0; k < want.size(); ++k)
        QVERIFY(std::abs(sums[static_cast<std::size_t>(k)] - want[k].toDouble()) < 1e-9);
}

void TestCompute::safetensorsValues_data()
{
    QTest::addColumn<QString>("file");
    for (const char *f : {"weights.safetensors", "sharded/model.safetensors.index.json", "sharded/pytorch_model.bin.index.json"})
        QTest::newRow(f) << QString(f);
}

void TestCompute::safetensorsValues()
{
    QFETCH(QString, file);
    const QJsonArray tensors =
        m_expected.value("__safetensors__").toObject().value(file).toObject().value("tensors").toArray();
    const auto doc = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + file).toStdString());
    QCOMPARE(static_cast<qsizetype>(doc.stateDict.size()), tensors.size());
    for (int i = 0; i < tensors.size(); ++i) {
        const auto row = tensors[i].toArray();
        const double got = toTensor(doc.stateDict[static_cast<std::size_t>(i)].ref(), false).to(at::kDouble).sum().item<double>();
        QVERIFY2(std::abs(got - row[3].toDouble()) <= 1e-9 * std::max(1.0, std::abs(row[3].toDouble())),
                 qPrintable(file + ": " + row[0].toString()));
    }
}

void TestCompute::bigEndianIsSwapped()
{
    const QString twin = m_expected.value("__big_endian__").toObject().value("big_endian.pth").toString();
    const auto big = readDocument(CKPT_FIXTURES_DIR "/big_endian.pth");
    const auto little = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + twin).toStdString());
    QVERIFY(QString::fromStdString(big.formatDetail).contains("big-endian"));
    QCOMPARE(big.stateDict.size(), little.stateDict.size());
    for (std::size_t i = 0; i < big.stateDict.size(); ++i)
        QVERIFY2(at::equal(toTensor(big.stateDict[i].ref(), false), toTensor(little.stateDict[i].ref(), false)),
                 big.stateDict[i].name.c_str());
}

void TestCompute::numpyArrays_data()
{
    QTest::addColumn<QString>("file");
    QTest::newRow("zip") << "python_objects.pth";
    QTest::newRow("legacy") << "python_objects_legacy.pth";
}

void TestCompute::numpyArrays()
{
    QFETCH(QString, file);
    const QJsonObject expected = m_expected.value("__python_objects__").toObject();
    const auto doc = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + file).toStdString());
    int checked = 0;
    for (const auto &t : doc.tensors) {
        const auto e = expected.value(QString::fromStdString(t.name)).toObject();
        QVERIFY2(e.contains("ndarray"), t.name.c_str());
        at::Tensor v = toTensor(t.ref(), false).reshape({-1}).to(at::kDouble);
        const QJsonArray want = e.value("values").toArray();
        QCOMPARE(v.numel(), static_cast<std::int64_t>(want.size()));
        for (int i = 0; i < want.size(); ++i)
            QCOMPARE(v[i].item<double>(), want[i].toDouble());
        ++checked;
    }
    QCOMPARE(checked, 4);
}


// Every tensor of detail.pth (a constant scalar among them) histogrammed as torch.histc counts it,
// over the range it counts in: [min, max], widened by one each side for a single value.
void TestCompute::histogramsAgreeWithTorchHistc()
{
    const auto doc = readDocument(CKPT_FIXTURES_DIR "/detail.pth");
    const QJsonObject files = m_expected.value("__detail__").toObject().value("files").toObject();
    const QJsonObject tensors = files.value("detail.pth").toObject();
    QVERIFY(tensors.contains("scalar"));
    int checked = 0;
    for (const auto &t : doc.stateDict) {
        const QJsonObject want = tensors.value(QString::fromStdString(t.name)).toObject().value("histogram").toObject();
        if (want.isEmpty())
            continue;
        const Histogram h = ComputeLoader::api().histogram(t.ref(), want.value("bins").toInt());
        QList<qint64> got(h.counts.begin(), h.counts.end()), counts;
        for (const auto &c : want.value("counts").toArray())
            counts << c.toInteger();
        QCOMPARE(got, counts);
        QCOMPARE(h.low, want.value("low").toDouble());
        QCOMPARE(h.high, want.value("high").toDouble());
        ++checked;
    }
    QCOMPARE(checked, static_cast<int>(tensors.size()));
    const Histogram scalar = ComputeLoader::api().histogram(doc.stateDict[8].ref(), 64);
    QCOMPARE(doc.stateDict[8].name, std::string("scalar"));
    QCOMPARE(scalar.low, 1.5);  // 2.5 - 1: where torch.histc counts it
    QCOMPARE(scalar.high, 3.5);
}

void TestCompute::outputsReadAsATenReadsThem()
{
    // readOutputs is plain C++ (the prediction pane uses it without LibTorch): its softmax,
    // sigmoid and exp must be ATen's, and its ranking the descending order with NaN last.
    const at::Tensor logits = at::randn({4, 7}, at::kDouble) * 20;
    const auto resultOf = [&](const at::Tensor &rows) {
        PredictionResult r;
        for (std::int64_t i = 0; i < rows.size(0); ++i) {
            SampleOutput s;
            const at::Tensor row = rows[i].contiguous();
            s.logits.assign(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
            r.outputs.push_back(s);
        }
        return r;
    };
    const auto worst = [](const PredictionResult &r, const at::Tensor &want) {
        double w = 0;
        for (std::int64_t i = 0; i < want.size(0); ++i)
            for (std::int64_t j = 0; j < want.size(1); ++j)
                w = std::max(w, std::abs(r.outputs[i].probabilities[j] - want[i][j].item<double>()));
        return w;
    };
    using O = Architecture::Output;
    const std::vector<std::string> names{"a", "b", "c", "d", "e", "f", "g"};
    PredictionResult r = resultOf(logits);
    readOutputs(r, O::Logits, "auto", 3, names);
    QCOMPARE(r.probabilitiesFrom, std::string("softmax"));
    QVERIFY(worst(r, at::softmax(logits, 1)) <= 1e-15);
    const at::Tensor order = std::get<1>(at::sort(logits, 1, /*descending=*/true));
    for (std::int64_t i = 0; i < 4; ++i) {
        QCOMPARE(r.outputs[i].argmax, order[i][0].item<std::int64_t>());
        QCOMPARE(static_cast<int>(r.outputs[i].top.size()), 3);
        for (int j = 0; j < 3; ++j) {
            QCOMPARE(r.outputs[i].top[j].index, order[i][j].item<std::int64_t>());
            QCOMPARE(r.outputs[i].top[j].label, names[static_cast<std::size_t>(order[i][j].item<std::int64_t>())]);
            QCOMPARE(r.outputs[i].top[j].value, logits[i][order[i][j]].item<double>());
        }
    }
    r = resultOf(logits);
    readOutputs(r, O::Logits, "sigmoid", 3, names);
    QVERIFY(worst(r, at::sigmoid(logits)) <= 1e-15);
    r = resultOf(logits);
    readOutputs(r, O::LogProbabilities, "auto", 3, {});
    QCOMPARE(r.probabilitiesFrom, std::string("exp"));
    QVERIFY(worst(r, logits.exp()) <= 1e-12 * logits.exp().max().item<double>());
    r = resultOf(logits.slice(1, 0, 1));
    readOutputs(r, O::Logits, "auto", 3, {});
    QCOMPARE(r.probabilitiesFrom, std::string("sigmoid"));  // one output: a binary classifier's logit
    QCOMPARE(r.outputs[0].top.size(), std::size_t{1});
    // Values: no probabilities; NaN ranks after every number, -inf included.
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    r = resultOf(at::tensor({1.0, nan, -inf, 3.0, nan}, at::kDouble).reshape({1, 5}));
    readOutputs(r, O::Logits, "none", 5, {});
    QCOMPARE(r.probabilitiesFrom, std::string("none"));
    QVERIFY(r.outputs[0].probabilities.empty());
    std::vector<std::int64_t> ranked;
    for (const auto &t : r.outputs[0].top) {
        ranked.push_back(t.index);
        QVERIFY(std::isnan(t.probability));
    }
    QCOMPARE(ranked, (std::vector<std::int64_t>{3, 0, 2, 1, 4}));
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, readOutputs(r, O::Logits, "logits", 5, {}));

    // A sample's output that is not one score per class ([8, 8, 5] a sample: a map, a sequence)
    // is read as values, without class names; [7, 1, 1] is still one score per class.
    r = resultOf(logits);
    r.outputShape = {4, 7, 1, 1};
    readOutputs(r, O::Logits, "auto", 3, names);
    QCOMPARE(r.probabilitiesFrom, std::string("softmax"));
    QCOMPARE(r.outputs[0].top[0].label, names[static_cast<std::size_t>(order[0][0].item<std::int64_t>())]);
    const at::Tensor maps = at::randn({2, 8, 8, 5}, at::kDouble);
    r = resultOf(maps.reshape({2, -1}));
    r.outputShape = {2, 8, 8, 5};
    QCOMPARE(sampleOutputShape(r), (std::vector<std::int64_t>{8, 8, 5}));
    QVERIFY(!isScorePerClass(sampleOutputShape(r)));
    readOutputs(r, O::Logits, "auto", 3, names);
    QCOMPARE(r.probabilitiesFrom, std::string("none"));
    const at::Tensor flatOrder = std::get<1>(at::sort(maps.reshape({2, -1}), 1, /*descending=*/true));
    for (std::int64_t i = 0; i < 2; ++i) {
        QVERIFY(r.outputs[i].probabilities.empty());
        for (int j = 0; j < 3; ++j) {
            QCOMPARE(r.outputs[i].top[j].index, flatOrder[i][j].item<std::int64_t>());
            QVERIFY(r.outputs[i].top[j].label.empty());
        }
    }
    readOutputs(r, O::Logits, "sigmoid", 3, names);  // asked for: each value on its own
    QCOMPARE(r.probabilitiesFrom, std::string("sigmoid"));
    QVERIFY(r.outputs[0].top[0].label.empty());
}

namespace {

// A figure from expected.json, which holds no NaN or Infinity: those come as "nan", "inf", "-inf".
double figureOf(const QJsonValue &v)
{
    if (v.isString()) {
        const QString s = v.toString();
        if (s == QLatin1String("nan"))
            return std::numeric_limits<double>::quiet_NaN();
        if (s == QLatin1String("inf") || s == QLatin1String("-inf"))
            return s.startsWith('-') ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
        return s.toDouble();
    }
    return v.toDouble();
}

// `got` is torch's `want` within what n float64 roundings allow: relative 16 n units of the last
// place (a sum of n terms, then a division or square root), and one unit of the subnormals'
// spacing (2^-1074) where the figure is that small. NaN is NaN, an infinity that infinity.
bool agrees(double got, double want, double n)
{
    if (std::isnan(want))
        return std::isnan(got);
    if (std::isinf(want))
        return got == want;
    const double tol = 16 * std::max(n, 1.0) * std::numeric_limits<double>::epsilon() * std::abs(want) +
                       std::numeric_limits<double>::denorm_min();
    return std::abs(got - want) <= tol;
}

QString text(double v) { return QString::number(v, 'g', 17); }

} // namespace

void TestCompute::statisticsAtTheEdges_data()
{
    QTest::addColumn<QString>("name");
    const QJsonObject stats = m_expected.value("__extremes__").toObject().value("stats").toObject();
    QVERIFY(stats.size() > 30);
    for (auto it = stats.begin(); it != stats.end(); ++it)
        QTest::newRow(qPrintable(it.key())) << it.key();
}

// Each figure of TensorStats against torch's on the same tensor (tests/fixtures/stats_extremes.py):
// float64 near 1e300 and 1.8e308, subnormals, float16/bfloat16 ends, -0.0, NaN and inf only, one
// element, none, int64 at its ends. The figures torch computes on the values divided by a power
// of two (exactly), where its plain float64 sums overflow or underflow for no reason.
void TestCompute::statisticsAtTheEdges()
{
    QFETCH(QString, name);
    static const auto doc = readDocument(CKPT_FIXTURES_DIR "/extremes/stats.pth");
    const QJsonObject want = m_expected.value("__extremes__").toObject().value("stats").toObject().value(name)
                                 .toObject().value("exact").toObject();
    const NamedTensor *t = nullptr;
    for (const auto &nt : doc.stateDict)
        if (QString::fromStdString(nt.name) == name)
            t = &nt;
    QVERIFY(t);
    const TensorStats s = ComputeLoader::api().statistics(t->ref());
    QCOMPARE(s.count, want.value("count").toInteger());
    QCOMPARE(s.nanCount, want.value("nan").toInteger());
    QCOMPARE(s.infCount, want.value("inf").toInteger());
    const double n = static_cast<double>(s.count - s.nanCount);
    const double zeros = s.count ? static_cast<double>(s.zeroCount) / static_cast<double>(s.count)
                                 : std::numeric_limits<double>::quiet_NaN();
    QVERIFY2(agrees(zeros, figureOf(want.value("zero_fraction")), 1), qPrintable(text(zeros)));
    if (s.exact) {  // integers: the extremes exactly
        QCOMPARE(QString::number(s.exactMin), want.value("min").toString());
        QCOMPARE(QString::number(s.exactMax), want.value("max").toString());
        // The mean correctly rounded from the exact sum of the integers.
        QCOMPARE(text(s.mean), text(figureOf(want.value("mean"))));
    } else {
        for (const auto &[key, got] : {std::pair{"min", s.min}, std::pair{"max", s.max}}) {
            const double w = figureOf(want.value(QLatin1String(key)));
            QVERIFY2(std::isnan(w) ? std::isnan(got) : got == w && std::signbit(got) == std::signbit(w),
                     qPrintable(QStringLiteral("%1 %2, torch %3").arg(QLatin1String(key), text(got), text(w))));
        }
        QVERIFY2(agrees(s.mean, figureOf(want.value("mean")), n),
                 qPrintable(QStringLiteral("mean %1, torch %2").arg(text(s.mean), text(figureOf(want.value("mean"))))));
    }
    QVERIFY2(agrees(s.std, figureOf(want.value("std")), n),
             qPrintable(QStringLiteral("std %1, torch %2").arg(text(s.std), text(figureOf(want.value("std"))))));
    QVERIFY2(agrees(s.l2, figureOf(want.value("l2")), n),
             qPrintable(QStringLiteral("L2 %1, torch %2").arg(text(s.l2), text(figureOf(want.value("l2"))))));

    // The histogram torch.histc counts (on values divided by a power of two where max - min is
    // past float64); a constant torch.histc refuses (v - 1 == v + 1) in the middle bin.
    const QJsonValue h = m_expected.value("__extremes__").toObject().value("stats").toObject().value(name)
                             .toObject().value("histogram");
    if (n == 0 || s.infCount == n)
        return;
    const Histogram got = ComputeLoader::api().histogram(t->ref(), 8);
    QList<qint64> counts(got.counts.begin(), got.counts.end()), wantCounts;
    if (h.isNull()) {
        wantCounts = {0, 0, 0, 0, s.count, 0, 0, 0};
        QVERIFY(got.low < s.min && s.min < got.high);
    } else {
        for (const auto &c : h.toObject().value("counts").toArray())
            wantCounts << c.toInteger();
        QCOMPARE(got.low, h.toObject().value("low").toDouble());
        QCOMPARE(got.high, h.toObject().value("high").toDouble());
    }
    QCOMPARE(counts, wantCounts);
}

// A pair whose differences pass float64 (1e308 against -1e308: |a - b| is inf, as in torch) and
// whose norms do or fall below its normal numbers: each tensor's figures and each module's sums
// against torch's, on values divided by a power of two.
void TestCompute::differencesAtTheEdges()
{
    const QJsonObject diff = m_expected.value("__extremes__").toObject().value("diff").toObject();
    const auto a = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + diff.value("a").toString()).toStdString());
    const auto b = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + diff.value("b").toString()).toStdString());
    QCOMPARE(a.stateDict.size(), b.stateDict.size());
    std::map<QString, TensorDiff> modules;
    const auto check = [](const QString &where, const TensorDiff &d, const QJsonObject &want) {
        const double n = static_cast<double>(d.finite);
        for (const auto &[key, got] : {std::pair{"max_abs_diff", d.maxAbs}, std::pair{"mean_abs_diff", d.meanAbs()},
                                       std::pair{"relative_l2", d.relativeL2()}, std::pair{"cosine", d.cosine()},
                                       std::pair{"norm_a", d.normA()}, std::pair{"norm_b", d.normB()}}) {
            const double w = figureOf(want.value(QLatin1String(key)));
            QVERIFY2(agrees(got, w, n), qPrintable(QStringLiteral("%1 %2: %3, torch %4").arg(where, QLatin1String(key), text(got), text(w))));
        }
        QCOMPARE(d.outside, want.value("outside_tolerance").toInteger());
        QCOMPARE(d.nonFinite, want.value("non_finite_mismatches").toInteger());
    };
    for (std::size_t i = 0; i < a.stateDict.size(); ++i) {
        const QString name = QString::fromStdString(a.stateDict[i].name);
        const TensorDiff d = ComputeLoader::api().difference(a.stateDict[i].ref(), b.stateDict[i].ref(), 0, 0);
        check(name, d, diff.value("tensors").toObject().value(name).toObject().value("exact").toObject());
        modules[name.section('.', 0, 0)].accumulate(d);
    }
    const QJsonObject wantModules = diff.value("modules").toObject();
    QCOMPARE(modules.size(), static_cast<std::size_t>(wantModules.size()));
    for (const auto &[name, d] : modules)
        check(QStringLiteral("module ") + name, d, wantModules.value(name).toObject());
}

// Sums in different units add up in the larger ones; sums that are all zero take the other's
// units (a zero tensor beside subnormals leaves their figures alone). The plain sums are what
// float64 holds of them: 0 for subnormal squares, inf for squares past its range.
void TestCompute::scaledSumsAccumulate()
{
    TensorDiff tiny;  // |a| = 0.5 and |b| = 0.25 in units of 2^-1070
    tiny.finite = 1;
    tiny.scaled = {-1070, 0.25, 0.0625, 0.25, 0.0625, 0.125};
    TensorDiff zeros;  // a zero tensor in the plain units
    zeros.finite = 4;
    TensorDiff m = zeros;
    m.accumulate(tiny);
    QCOMPARE(m.scaled.scale, -1070);
    QCOMPARE(m.normA(), std::ldexp(0.5, -1070));
    QCOMPARE(m.meanAbs(), std::ldexp(0.25 / 5, -1070));
    QCOMPARE(m.relativeL2(), 0.5);
    QCOMPARE(m.sumAbs, std::ldexp(0.25, -1070));
    QCOMPARE(m.sumSqA, 0.0);
    TensorDiff big;  // |a| = 0.5 in units of 2^1000
    big.finite = 1;
    big.scaled = {1000, 0.5, 0.25, 0.25, 0, 0};
    m = tiny;
    m.accumulate(big);
    QCOMPARE(m.scaled.scale, 1000);
    QCOMPARE(m.normA(), std::ldexp(0.5, 1000));  // the subnormal part is below its last place
    QCOMPARE(m.relativeL2(), 1.0);
    QVERIFY(std::isinf(m.sumSqA));
}

QTEST_GUILESS_MAIN(TestCompute)
#include "tst_compute.moc"
