// safetensors and sharded checkpoints: fixtures made from PyTorch's own bytes, and every check
// the format's audit asks for, on hand-made hostile headers.
#include "document.h"
#include "error.h"
#include "inferencemeta.h"
#include "jsonexport.h"
#include "metadata.h"
#include "safetensorsreader.h"

#include <QtTest>

#include <map>

using namespace ckpt;

namespace {
QByteArray safetensors(const QByteArray &header, const QByteArray &data, qint64 declared = -1)
{
    QByteArray out(8, '\0');
    const quint64 n = declared < 0 ? static_cast<quint64>(header.size()) : static_cast<quint64>(declared);
    for (int i = 0; i < 8; ++i)
        out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + data;
}
} // namespace

class TestSafetensors : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void fixtures_data();
    void fixtures();
    void hostile_data();
    void hostile();
    void minimalFileReads();
    void metadataValuesDecoded();
    void shardIndexMetadataAndGlobals();
    void metadataEntriesCapped();
};

void TestSafetensors::fixtures_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("format");
    QTest::newRow("safetensors") << "weights.safetensors" << "safetensors";
    QTest::newRow("sharded safetensors") << "sharded/model.safetensors.index.json" << "sharded";
    QTest::newRow("sharded torch files") << "sharded/pytorch_model.bin.index.json" << "sharded";
}

void TestSafetensors::fixtures()
{
    QFETCH(QString, file);
    QFETCH(QString, format);
    QFile f(QStringLiteral(CKPT_FIXTURES_DIR "/expected.json"));
    QVERIFY(f.open(QIODevice::ReadOnly));
    const auto expected = QJsonDocument::fromJson(f.readAll()).object().value("__safetensors__").toObject().value(file).toObject();
    QVERIFY(!expected.isEmpty());
    const auto doc = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + file).toStdString());
    QCOMPARE(QString::fromStdString(formatName(doc.format)), format);
    QCOMPARE(doc.kind, DocumentKind::StateDict);
    const QJsonArray tensors = expected.value("tensors").toArray();
    QCOMPARE(static_cast<qsizetype>(doc.stateDict.size()), tensors.size());
    for (int i = 0; i < tensors.size(); ++i) {
        const auto row = tensors[i].toArray();
        const auto &t = doc.stateDict[static_cast<std::size_t>(i)];
        QCOMPARE(QString::fromStdString(t.name), row[0].toString());
        QCOMPARE(QString(QLatin1String(dtypeName(t.ref().dtype))), row[1].toString());
        QJsonArray shape;
        for (auto d : t.ref().shape)
            shape.append(static_cast<qint64>(d));
        QCOMPARE(shape, row[2].toArray());
        QVERIFY(t.ref().problem.empty());
        QCOMPARE(static_cast<qint64>(t.ref().spannedBytes().size()), static_cast<qint64>(t.ref().nbytes()));
    }
    if (expected.contains("metadata")) {
        const auto j = documentToJson(doc);
        QCOMPARE(QString::fromStdString(j["metadata"]["__metadata__"]["note"].get<std::string>()), QString("fixture"));
    }
}

void TestSafetensors::hostile_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("message");
    const QByteArray four(4, '\x01');
    QTest::newRow("header longer than the file") << safetensors("{}", {}, 1000) << "is longer than the file";
    QTest::newRow("header past the limit") << safetensors("{}", {}, 200'000'000) << "exceeds the limit";
    QTest::newRow("not JSON") << safetensors("{nope", {}) << "not valid JSON";
    // Shaped as safetensors, but the header is not an object: said so, not 'unrecognised format'.
    QTest::newRow("array header") << safetensors("[1,2,3]", QByteArray(16, '\0')) << "safetensors header is not a JSON object";
    QTest::newRow("string header") << safetensors("\"abc\"", {}) << "safetensors header is not a JSON object";
    QTest::newRow("byte order mark") << safetensors("\xEF\xBB\xBF{}", {}) << "byte order mark";
    QTest::newRow("white space first") << safetensors(" [] ", {}) << "safetensors header is not a JSON object";
    QTest::newRow("duplicate names")
        << safetensors(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", four)
        << "names 'a' twice";
    QTest::newRow("overlap")
        << safetensors(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", four)
        << "overlaps";
    QTest::newRow("gap") << safetensors(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", four)
                         << "belong to no tensor";
    QTest::newRow("trailing bytes") << safetensors(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", four)
                                    << "after the last tensor";
    QTest::newRow("size mismatch") << safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four)
                                   << "needs 8 bytes but data_offsets span 4";
    QTest::newRow("offsets past the buffer") << safetensors(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", four)
                                             << "fall outside";
    QTest::newRow("shape overflow")
        << safetensors(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", four)
        << "overflow";
    QTest::newRow("negative dimension") << safetensors(R"({"a":{"dtype":"U8","shape":[-4],"data_offsets":[0,4]}})", four)
                                        << "not a non-negative integer";
    QTest::newRow("unknown dtype") << safetensors(R"({"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}})", four)
                                   << "unknown dtype 'Q4'";
    QTest::newRow("non-string metadata")
        << safetensors(R"({"__metadata__":{"n":1},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", four)
        << "is not a string";
    QTest::newRow("begin after end") << safetensors(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", four)
                                     << "fall outside";
}

void TestSafetensors::hostile()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QString, message);
    try {
        readDocumentFromBytes(bytes.toStdString(), "hostile.safetensors");
        QFAIL("expected an error");
    } catch (const FormatError &e) {
        const QString what = QString::fromUtf8(e.what());
        QVERIFY2(what.startsWith("hostile.safetensors: safetensors"), qPrintable(what));
        QVERIFY2(what.contains(message), qPrintable(what));
    }
}

void TestSafetensors::minimalFileReads()
{
    const auto doc = readDocumentFromBytes(
        safetensors(R"({"a":{"dtype":"U8","shape":[2,2],"data_offsets":[0,4]}}  )", QByteArray(4, '\x07')).toStdString(),
        "ok.safetensors");
    QCOMPARE(doc.stateDict.size(), std::size_t(1));
    QCOMPARE(doc.stateDict[0].ref().strides, (std::vector<std::int64_t>{2, 1}));
    QCOMPARE(doc.stateDict[0].ref().spannedBytes()[3], std::uint8_t(7));
}

// __metadata__ values are strings. Where this tool's writer marked a key as JSON, its value comes
// back as the value written; in other files, counts, losses and structures under the keys that
// name them are read as what they say, and everything else stays text.
void TestSafetensors::metadataValuesDecoded()
{
    // Another writer's file: keys that name a count, a loss or a structure are read as such.
    const char *header = R"({"__metadata__":{"format":"pt","epoch":"12","train_loss":"0.5","note":"7","model_config":"{\"width\": 3}",
        "class_names":"[\"cat\", \"dog\"]","input_mean":"[0.5, 0.25]","input_std":"[2, 4]","lr":"0.001","alias:b":"a"},
        "a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
    const auto doc = readDocumentFromBytes(safetensors(header, QByteArray(4, '\x01')).toStdString(), "meta.safetensors");
    QCOMPARE(formatMetadataValue(doc, "epoch")->asInt(), 12);
    QCOMPARE(formatMetadataValue(doc, "train_loss")->asFloat(), 0.5);
    QVERIFY(formatMetadataValue(doc, "note")->isString());  // not a key that names a number
    QCOMPARE(formatMetadataValue(doc, "note")->text(), std::string("7"));
    QVERIFY(formatMetadataValue(doc, "lr")->isString());
    QCOMPARE(formatMetadataValue(doc, "model_config")->get("width")->asInt(), 3);
    QVERIFY(!formatMetadataValue(doc, "alias:b"));
    // The alias this tool recorded is the tensor it names, as torch.load gave the tied weights.
    QCOMPARE(doc.stateDict.size(), std::size_t(2));
    QCOMPARE(doc.stateDict[1].name, std::string("b"));
    QCOMPARE(doc.stateDict[1].value, doc.stateDict[0].value);
    QVERIFY(!formatMetadataValue(doc, "absent"));
    QCOMPARE(classNamesOf(doc), (std::vector<std::string>{"cat", "dog"}));
    const Preprocessing pre = preprocessingOf(doc);
    QCOMPARE(pre.mean, (std::vector<double>{0.5, 0.25}));
    QCOMPARE(pre.std, (std::vector<double>{2, 4}));
    bool epoch = false;
    for (const auto &f : knownFields(doc))
        if (f.label == "Epoch")
            epoch = f.fromFormatMetadata && f.value->asInt() == 12;
    QVERIFY(epoch);

    // This tool's file: exactly the keys its marker lists are JSON; the rest stay text.
    const auto ours = readDocumentFromBytes(
        safetensors(R"({"__metadata__":{"lr":"0.001","tag":"[1]","step":"1000","checkpoint_studio.json_keys":"[\"lr\", \"tag\"]"},
            "a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", QByteArray(4, '\x01')).toStdString(), "ours.safetensors");
    QCOMPARE(formatMetadataValue(ours, "lr")->asFloat(), 0.001);
    QVERIFY(formatMetadataValue(ours, "tag")->isSequence());
    QCOMPARE(formatMetadataValue(ours, "step")->text(), std::string("1000"));  // written as a string
    QVERIFY(!formatMetadataValue(ours, "checkpoint_studio.json_keys"));

    // Text that is not what its key names stays text.
    const auto odd = readDocumentFromBytes(
        safetensors(R"({"__metadata__":{"epoch":"last","model_config":"small"},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                    QByteArray(4, '\x01')).toStdString(), "odd.safetensors");
    QCOMPARE(formatMetadataValue(odd, "epoch")->text(), std::string("last"));
    QCOMPARE(formatMetadataValue(odd, "model_config")->text(), std::string("small"));
}

void TestSafetensors::shardIndexMetadataAndGlobals()
{
    // json_fixtures.py's index: "metadata" as json.load gives it (test_convert_vs_torch.py compares
    // with Python), and the torch shards' globals once each, their uses summed.
    const std::string dir = CKPT_FIXTURES_DIR "/json_values/hf/";
    const auto doc = readDocument(dir + "pytorch_model.bin.index.json");
    QVERIFY(doc.formatMetadata && doc.formatMetadata->isDict());
    QVERIFY(doc.formatMetadata->get("total_size")->isInt());
    QCOMPARE(doc.formatMetadata->get("huge")->kind(), Value::Kind::BigInt);
    QCOMPARE(doc.formatMetadata->get("huge")->text(), std::string("1180591620717411303424"));
    QCOMPARE(doc.formatMetadata->get("negative_huge")->text(), std::string("-73786976294838206464"));
    QCOMPARE(doc.formatMetadata->get("ratio")->asFloat(), 0.25);
    QCOMPARE(doc.formatMetadata->get("flag")->kind(), Value::Kind::Bool);
    QVERIFY(doc.formatMetadata->get("nothing")->isNone());
    const auto zeta = doc.formatMetadata->get("zeta");
    QVERIFY(zeta && zeta->isDict() && zeta->entries().size() == 3);
    QCOMPARE(zeta->entries()[0].key->text(), std::string("z"));  // the file's order, not sorted
    QCOMPARE(findFormatMetadata(doc, "metadata/total_size"), doc.formatMetadata->get("total_size"));
    QCOMPARE(findFormatMetadata(doc, "metadata/zeta/m")->text(), std::string("text"));
    QVERIFY(!findFormatMetadata(doc, "__metadata__/total_size"));
    QVERIFY(!findFormatMetadata(doc, "metadata/absent"));

    std::map<std::string, std::int64_t> summed;
    for (const char *shard : {"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"})
        for (const auto &g : readDocument(dir + shard).globals)
            summed[g.name] += g.count;
    std::map<std::string, std::int64_t> listed;
    for (const auto &g : doc.globals)
        QVERIFY2(listed.emplace(g.name, g.count).second, g.name.c_str());
    QCOMPARE(listed, summed);
}

// A header of more __metadata__ entries than any file needs keeps the first of them, in the file's
// order (a key given twice: where first given, its last value, as the library's map keeps it), and
// says how many there were; the tensors read as ever.
void TestSafetensors::metadataEntriesCapped()
{
    const std::size_t cap = SafetensorsLimits::kMaxMetadataEntries, extra = 5;
    QByteArray header = R"({"__metadata__":{"dup":"first",)";
    for (std::size_t i = 0; i < cap + extra; ++i)
        header += "\"k" + QByteArray::number(static_cast<qulonglong>(i)) + "\":\"" + QByteArray::number(static_cast<qulonglong>(i % 7)) + "\",";
    header += R"("dup":"last"},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
    const auto doc = readDocumentFromBytes(safetensors(header, QByteArray(4, '\x01')).toStdString(), "many.safetensors");
    QVERIFY(doc.formatMetadata && doc.formatMetadata->isDict());
    const auto &kept = doc.formatMetadata->entries();
    QCOMPARE(kept.size(), cap);
    QCOMPARE(kept[0].key->text(), std::string("dup"));
    QCOMPARE(kept[0].value->text(), std::string("last"));
    QCOMPARE(kept[1].key->text(), std::string("k0"));
    QCOMPARE(kept.back().key->text(), "k" + std::to_string(cap - 2));
    bool said = false;
    for (const auto &w : doc.warnings)
        said = said || (w.find("the first " + std::to_string(cap) + " are kept, " + std::to_string(extra + 1) +
                               " more are not shown") != std::string::npos);
    QVERIFY2(said, doc.warnings.empty() ? "no warning" : doc.warnings.front().c_str());
    // A key given twice within the cap drops nothing: nothing to say.
    const auto twice = readDocumentFromBytes(
        safetensors(R"({"__metadata__":{"a":"1","a":"2"},"t":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                    QByteArray(4, '\x01'))
            .toStdString(),
        "twice.safetensors");
    QCOMPARE(twice.formatMetadata->entries().size(), std::size_t(1));
    QVERIFY2(twice.warnings.empty(), twice.warnings.empty() ? "" : twice.warnings.front().c_str());
    QCOMPARE(doc.stateDict.size(), std::size_t(1));
    QCOMPARE(doc.stateDict[0].ref().spannedBytes()[3], std::uint8_t(1));
}

QTEST_GUILESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
