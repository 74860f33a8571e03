// The writers' internals: the torch zip layout (64-byte alignment, ZIP64 past a threshold), the
// pickle writer (sharing kept through the memo, trees that read back and re-write to the same
// bytes, what it refuses), float casts at their edges, and the safety of writes (cancel, failed
// verification, existing outputs, inputs) leaving the folder as it was.
#include "atomicwrite.h"
#include "convert.h"
#include "crc.h"
#include "document.h"
#include "dtypecast.h"
#include "error.h"
#include "fullmodel.h"
#include "jsonexport.h"
#include "picklemachine.h"
#include "picklewriter.h"
#include "safetensorswriter.h"
#include "testdata.h"
#include "torchzipwriter.h"
#include "ziparchive.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <bit>
#include <span>
#include <zlib.h>
#include <cmath>
#include <cstring>

using namespace ckpt;

namespace {
std::span<const std::uint8_t> asBytes(const std::string &s)
{
    return {reinterpret_cast<const std::uint8_t *>(s.data()), s.size()};
}

std::string zipOf(const std::vector<std::pair<std::string, std::string>> &records, std::uint64_t threshold)
{
    std::string out;
    TorchZipWriter zip(
        [&out](std::span<const std::uint8_t> b) { out.append(reinterpret_cast<const char *>(b.data()), b.size()); },
        "archive", threshold);
    for (const auto &[name, data] : records)
        zip.addRecord(name, data);
    zip.finish();
    if (zip.bytesWritten() != out.size())
        throw std::runtime_error("bytesWritten disagrees with the bytes written");
    return out;
}

std::uint16_t le16(const std::string &s, std::size_t at)
{
    return static_cast<std::uint16_t>(static_cast<std::uint8_t>(s[at]) | (static_cast<std::uint8_t>(s[at + 1]) << 8));
}

QStringList folderEntries(const QString &dir)
{
    return QDir(dir).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot, QDir::Name);
}

ValuePtr tensorOn(const std::shared_ptr<StorageRef> &s, std::int64_t offset, std::vector<std::int64_t> shape,
                  std::vector<std::int64_t> strides)
{
    auto t = std::make_shared<TensorRef>();
    t->storage = s;
    t->dtype = s->dtype;
    t->storageOffset = offset;
    t->shape = std::move(shape);
    t->strides = std::move(strides);
    t->rebuild = "_rebuild_tensor_v2";
    return Value::tensor(t);
}
} // namespace

class TestWriters : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void nonFiniteFloatsAsPythonJson()
    {
        // Python's json module writes a NaN or infinite float as a bare token and reads it back;
        // the same tokens inside a string stay text, and the tags valueToJson gives them read as floats.
        const std::string text = "{\"loss\": NaN, \"best\": Infinity, \"worst\": -Infinity, "
                                 "\"note\": \"NaN -Infinity \\\" NaN\", \"list\": [1.5, NaN], "
                                 "\"tag\": {\"__float__\": \"inf\"}, \"two\": {\"__float__\": \"nan\", \"x\": 1}}";
        const auto j = parseOrderedJson(text);
        QVERIFY(!j.is_discarded());
        const ValuePtr v = jsonToValue(j);
        QVERIFY(std::isnan(v->get("loss")->asFloat()));
        QCOMPARE(v->get("best")->asFloat(), std::numeric_limits<double>::infinity());
        QCOMPARE(v->get("worst")->asFloat(), -std::numeric_limits<double>::infinity());
        QCOMPARE(v->get("note")->text(), std::string("NaN -Infinity \" NaN"));
        QVERIFY(std::isnan(v->get("list")->items()[1]->asFloat()));
        QCOMPARE(v->get("tag")->asFloat(), std::numeric_limits<double>::infinity());
        QVERIFY(v->get("two")->isDict());  // not a tag: a dict with another key too
        // Written back as Python writes them, the rest as nlohmann does.
        nlohmann::ordered_json out = {{"loss", {{"__float__", "nan"}}}, {"note", "NaN"}, {"list", {1.5, {{"__float__", "-inf"}}}},
                                      {"empty", nlohmann::ordered_json::array()}};
        QCOMPARE(pythonJsonText(out), std::string("{\"loss\":NaN,\"note\":\"NaN\",\"list\":[1.5,-Infinity],\"empty\":[]}"));
        out.erase("loss");
        out["list"] = {1.5, 2};
        out["nested"] = {{"a", {1, 2}}, {"b", nlohmann::ordered_json::object()}};
        QCOMPARE(pythonJsonText(out, 2), out.dump(2));
        // Not JSON either way: a token Python does not write.
        QVERIFY(parseOrderedJson("[nan]").is_discarded());
    }

    void wideIntegersAsPythonJson()
    {
        // Python's json module writes an int of any width as its digits and reads it back exact;
        // nlohmann holds no integer past 64 bits. Plain JSON writes the digits, the JSON read
        // keeps them, and info's JSON (valueToJson) keeps its documented {"__int__": ...} tag.
        const std::string wide = "18446744073709551617", negative = "-1180591620717411303424",
                          unsigned64 = "9223372036854775813";
        auto d = Value::dict();
        d->entries().push_back({Value::string("seed"), Value::bigInteger(wide)});
        d->entries().push_back({Value::string("neg"), Value::bigInteger(negative)});
        d->entries().push_back({Value::string("u"), Value::bigInteger(unsigned64)});
        d->entries().push_back(
            {Value::string("list"), Value::list({Value::integer(10), Value::bigInteger(wide), Value::floating(0.5)})});
        PlainJsonBudget budget;
        const auto plain = valueToPlainJson(d, "sidecar", budget);
        QVERIFY(plain["u"].is_number_unsigned());  // fits 64 bits: a JSON number already
        const std::string expected = "{\"seed\":" + wide + ",\"neg\":" + negative + ",\"u\":" + unsigned64 +
                                     ",\"list\":[10," + wide + ",0.5]}";
        QCOMPARE(pythonJsonText(plain), expected);
        QCOMPARE(valueToJson(d)["seed"].dump(), std::string("{\"__int__\":\"" + wide + "\"}"));
        // Read back: the same integers, exact, wherever they are; a float literal stays a float.
        const auto j = parseOrderedJson(expected + " ");
        QVERIFY(!j.is_discarded());
        const ValuePtr v = jsonToValue(j);
        QCOMPARE(v->get("seed")->kind(), Value::Kind::BigInt);
        QCOMPARE(v->get("seed")->text(), wide);
        QCOMPARE(v->get("neg")->kind(), Value::Kind::BigInt);
        QCOMPARE(v->get("neg")->text(), negative);
        QCOMPARE(v->get("u")->text(), unsigned64);
        QCOMPARE(v->get("list")->items()[1]->text(), wide);
        QCOMPARE(jsonToValue(parseOrderedJson("[1e30, 2.5e19, -9223372036854775808]"))->items()[0]->kind(),
                 Value::Kind::Float);
        QCOMPARE(jsonToValue(parseOrderedJson("[1e30, 2.5e19, -9223372036854775808]"))->items()[2]->asInt(),
                 std::numeric_limits<std::int64_t>::min());
        // Round trip through the text, indented as the sidecar is.
        QCOMPARE(pythonJsonText(parseOrderedJson(expected), 2), pythonJsonText(plain, 2));
        // A tag that is not an integer past 64 bits stays the dict it is.
        for (const char *text : {R"({"__int__": "12"})", R"({"__int__": "0123456789012345678901"})",
                                 R"({"__int__": "1e30"})", R"({"__int__": 5})"}) {
            const ValuePtr t = jsonToValue(parseOrderedJson(text));
            QVERIFY2(t->isDict(), text);
            QCOMPARE(pythonJsonText(parseOrderedJson(text)), parseOrderedJson(text).dump());
        }
    }

    void oneMemberOfJson()
    {
        // A shard index's "metadata" read alone, as json.load reads it: order kept, wide ints exact.
        const std::string text = R"({"weight_map": {"a": "x", "b": {"metadata": 1}}, "metadata": {"z": 1,)"
                                 R"( "a": [18446744073709551617, {"k": null}], "t": "s"}, "tail": [1, {"metadata": 2}]})";
        const auto m = parseOrderedJsonMember(text, "metadata");
        QCOMPARE(m.dump(), std::string(R"({"z":1,"a":[{"__int__":"18446744073709551617"},{"k":null}],"t":"s"})"));
        QVERIFY(parseOrderedJsonMember(R"({"other": {"metadata": 1}})", "metadata").is_null());
        QCOMPARE(parseOrderedJsonMember(R"({"metadata": 5})", "metadata").dump(), std::string("5"));
        QVERIFY(parseOrderedJsonMember(R"({"metadata": [1,)", "metadata").is_discarded());
    }

    void zipRecordsAligned_data()
    {
        QTest::addColumn<quint64>("threshold");
        QTest::newRow("plain zip") << quint64(TorchZipWriter::kZip64Threshold);
        QTest::newRow("zip64 for everything past 16 bytes") << quint64(16);
        QTest::newRow("zip64 for every offset") << quint64(1);
    }
    void zipRecordsAligned()
    {
        QFETCH(quint64, threshold);
        std::vector<std::pair<std::string, std::string>> records{
            {"data.pkl", std::string("\x80\x02}q\x00.", 6)},
            {"data/0", std::string(100, 'a')},
            {"data/a-much-longer-record-name-than-usual", std::string(3, 'b')},
            {"data/empty", std::string()},
            {"version", "3\n"}};
        const std::string z = zipOf(records, threshold);
        const ZipArchive zip(asBytes(z));
        QCOMPARE(zip.prefix(), std::string("archive/"));
        QCOMPARE(zip.entries().size(), records.size());
        QVERIFY(zip.anomalies().empty());
        for (const auto &[name, data] : records) {
            const auto *e = zip.find(name);
            QVERIFY2(e, name.c_str());
            QCOMPARE(e->method, std::uint16_t(0));
            QCOMPARE(e->dataOffset % 64, std::uint64_t(0));
            // The padding is an "FB" extra field, as PyTorch's writer makes it.
            const auto nameLen = le16(z, e->localHeaderOffset + 26);
            QCOMPARE(le16(z, e->localHeaderOffset + 30 + nameLen), std::uint16_t(0x4246));
            const auto bytes = zip.read(*e).bytes;
            QCOMPARE(std::string(reinterpret_cast<const char *>(bytes.data()), bytes.size()), data);
        }
        // ZIP64 end records are always there; ZIP64 extras only at or past the threshold.
        QVERIFY(z.find("PK\x06\x06") != std::string::npos);
        const bool extras = z.find(std::string("\x01\x00", 2), z.find("PK\x01\x02")) != std::string::npos;
        if (threshold == 1)
            QVERIFY(extras);
    }

    void zip64ArchiveLoadsInTorch()
    {
        // Every record, offset and directory past a 1-byte threshold: ZIP64 fields throughout.
        // PyTorch's own reader must take it (and Python's zipfile verify every CRC).
        static const float w[3] = {0.5f, -1.25f, 3.0f};
        auto storage = std::make_shared<StorageRef>();
        storage->dtype = DType::Float32;
        storage->setBytes({reinterpret_cast<const std::uint8_t *>(w), sizeof w});
        auto root = Value::dict();
        root->setPythonClass("collections.OrderedDict");
        root->entries().push_back({Value::string("w"), tensorOn(storage, 0, {3}, {1})});
        PickleWriter writer;
        const std::string pkl = writer.write(root);
        QTemporaryDir dir;
        const QString path = dir.path() + "/zip64.pth";
        std::string file;
        TorchZipWriter zip(
            [&file](std::span<const std::uint8_t> b) {
                file.append(reinterpret_cast<const char *>(b.data()), b.size());
            },
            "archive", 1);
        zip.addRecord("data.pkl", pkl);
        zip.addRecord("data/0", std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t *>(w), sizeof w));
        zip.addRecord("version", std::string("3\n"));
        zip.finish();
        writeFileAtomically(path.toStdString(), asBytes(file));
        QProcess python;
        python.start(QStringLiteral(CKPT_PYTHON),
                     {"-c",
                      "import sys, torch, zipfile; assert zipfile.ZipFile(sys.argv[1]).testzip() is None; "
                      "print(torch.load(sys.argv[1], weights_only=True)['w'].tolist())",
                      path});
        QVERIFY(python.waitForFinished(120000));
        QCOMPARE(python.exitCode(), 0);
        QCOMPARE(python.readAllStandardOutput().trimmed(), QByteArray("[0.5, -1.25, 3.0]"));
    }

    void pickleSharingAndRoundTrip()
    {
        // Two names for one tensor, a view on the same storage, a shared list, a parameter, scalars.
        static const float values[6] = {1, 2, 3, 4, 5, 6};
        auto storage = std::make_shared<StorageRef>();
        storage->key = "orig";
        storage->dtype = DType::Float32;
        storage->location = "cuda:1";
        storage->setBytes({reinterpret_cast<const std::uint8_t *>(values), sizeof values});
        auto weight = tensorOn(storage, 0, {2, 3}, {3, 1});
        auto row = tensorOn(storage, 3, {3}, {1});
        auto param = std::make_shared<TensorRef>(*row->tensorRef());
        param->isParameter = true;
        param->requiresGrad = true;
        auto shared =
            Value::list({Value::integer(1), Value::bigInteger("-1180591620717411303424"), Value::floating(0.1)});
        auto root = Value::dict();
        root->setPythonClass("collections.OrderedDict");
        root->entries().push_back({Value::string("a"), weight});
        root->entries().push_back({Value::string("b"), weight});
        root->entries().push_back({Value::string("row"), row});
        root->entries().push_back({Value::string("p"), Value::tensor(param)});
        root->entries().push_back({Value::string("l1"), shared});
        root->entries().push_back({Value::string("l2"), shared});
        root->entries().push_back({Value::string("s"), Value::string("héllo")});
        PickleWriter writer;
        const std::string pkl = writer.write(root);
        QCOMPARE(writer.storages().size(), std::size_t(1)); // shared storage written once
        QCOMPARE(writer.storages()[0].location, std::string("cpu"));
        QCOMPARE(writer.storages()[0].numel, std::int64_t(6));

        PickleMachine machine;
        std::map<std::string, std::shared_ptr<StorageRef>> seen;
        machine.setPersistentLoad([&](const ValuePtr &pid, std::uint64_t) {
            const std::string key = pid->items()[2]->text();
            auto &s = seen[key];
            if (!s) {
                s = std::make_shared<StorageRef>(*storage);
                s->key = key;
                s->location = pid->items()[3]->text();
            }
            return Value::storage(s);
        });
        const auto back = machine.run(asBytes(pkl)).value;
        QCOMPARE(back->entries().size(), std::size_t(7));
        QVERIFY(back->get("a") == back->get("b")); // one object through the memo
        QVERIFY(back->get("l1") == back->get("l2"));
        QVERIFY(back->get("row")->tensorRef()->storage == back->get("a")->tensorRef()->storage);
        QCOMPARE(back->get("row")->tensorRef()->storageOffset, std::int64_t(3));
        QVERIFY(back->get("p")->tensorRef()->isParameter && back->get("p")->tensorRef()->requiresGrad);
        QCOMPARE(back->get("l1")->items()[1]->text(), std::string("-1180591620717411303424"));
        QCOMPARE(back->get("s")->text(), std::string("héllo"));
        // What was read writes the very same bytes again.
        QCOMPARE(PickleWriter().write(back), pkl);
    }

    void encodeLongMatchesPython_data()
    {
        QTest::addColumn<QString>("decimal");
        QTest::addColumn<QByteArray>("payload");
        QTest::newRow("0") << "0" << QByteArray();
        QTest::newRow("127") << "127" << QByteArray("\x7f", 1);
        QTest::newRow("128") << "128" << QByteArray("\x80\x00", 2);
        QTest::newRow("-1") << "-1" << QByteArray("\xff", 1);
        QTest::newRow("-128") << "-128" << QByteArray("\x80", 1);
        QTest::newRow("-129") << "-129" << QByteArray("\x7f\xff", 2);
        QTest::newRow("2^70") << "1180591620717411303424" << QByteArray("\x00\x00\x00\x00\x00\x00\x00\x00\x40", 9);
    }
    void encodeLongMatchesPython()
    {
        QFETCH(QString, decimal);
        QFETCH(QByteArray, payload);
        const std::string got = encodeLong(decimal.toStdString());
        QCOMPARE(QByteArray(got.data(), static_cast<int>(got.size())), payload);
    }

    void pickleWriterRefuses()
    {
        // A tuple that contains itself through a list.
        auto list = Value::list();
        auto tuple = Value::tuple({list});
        list->items().push_back(tuple);
        QVERIFY_THROWS_EXCEPTION(FormatError, PickleWriter().write(tuple));
        list->releaseChildren(); // break the cycle the test made
        // Objects and unknown globals have no place in a weights-only file.
        auto obj = Value::object(Value::global("argparse", "Namespace"), Value::tuple());
        QVERIFY_THROWS_EXCEPTION(FormatError, PickleWriter(PickleWriterOptions().weightsOnlyFile(true)).write(obj));
        QVERIFY(!PickleWriter().write(obj).empty()); // but a full model may hold them
        // A dtype torch 1.x has no typed storage for is written as torch 2.x writes it: an untyped
        // storage counted in bytes, and _rebuild_tensor_v3 naming the dtype.
        auto s = std::make_shared<StorageRef>();
        s->dtype = DType::UInt16;
        static const std::uint8_t bytes[4] = {1, 0, 2, 0};
        s->setBytes({bytes, 4});
        PickleWriter untyped;
        const std::string pkl = untyped.write(tensorOn(s, 0, {2}, {1}));
        QVERIFY(pkl.find("torch._utils\n_rebuild_tensor_v3") != std::string::npos);
        QVERIFY(pkl.find("torch.storage\nUntypedStorage") != std::string::npos);
        QVERIFY(pkl.find("torch\nuint16") != std::string::npos);
        QCOMPARE(untyped.storages().size(), std::size_t{1});
        QVERIFY(untyped.storages()[0].untyped);
        QCOMPARE(untyped.storages()[0].numel, std::int64_t{4});  // bytes, as torch counts an UntypedStorage
        // A tensor of one dtype on a typed storage of another has no pickled form.
        auto typed = std::make_shared<StorageRef>();
        typed->dtype = DType::Int16;
        typed->setBytes({bytes, 4});
        auto mismatched = tensorOn(typed, 0, {2}, {1});
        mismatched->tensorRef()->dtype = DType::UInt16;
        QVERIFY_THROWS_EXCEPTION(FormatError, PickleWriter().write(mismatched));
        // A storage whose bytes are missing.
        auto missing = std::make_shared<StorageRef>();
        missing->dtype = DType::Float32;
        missing->problem = "storage record 'data/0' is missing from the archive";
        try {
            PickleWriter().write(tensorOn(missing, 0, {1}, {1}));
            QFAIL("wrote a tensor without bytes");
        } catch (const FormatError &e) {
            QVERIFY(std::string(e.what()).find("missing") != std::string::npos);
        }
    }

    void halfAndBFloat16Edges_data()
    {
        // Expected bits as torch 1.13 gives them (torch.tensor([v]).half() / .bfloat16()).
        QTest::addColumn<float>("value");
        QTest::addColumn<int>("half");
        QTest::addColumn<int>("bf16");
        QTest::newRow("1") << 1.0f << 0x3C00 << 0x3F80;
        QTest::newRow("max half") << 65504.0f << 0x7BFF << 0x4780;
        QTest::newRow("65520 ties to inf") << 65520.0f << 0x7C00 << 0x4780;
        QTest::newRow("smallest subnormal") << std::ldexp(1.0f, -24) << 0x0001 << 0x3380;
        QTest::newRow("2^-25 ties to zero") << std::ldexp(1.0f, -25) << 0x0000 << 0x3300;
        QTest::newRow("1.5 * 2^-25 rounds up") << std::ldexp(1.5f, -25) << 0x0001 << 0x3340;
        QTest::newRow("1 + 2^-11 ties to even") << 1.0f + std::ldexp(1.0f, -11) << 0x3C00 << 0x3F80;
        QTest::newRow("-0") << -0.0f << 0x8000 << 0x8000;
        QTest::newRow("-inf") << -INFINITY << 0xFC00 << 0xFF80;
    }
    void halfAndBFloat16Edges()
    {
        QFETCH(float, value);
        QFETCH(int, half);
        QFETCH(int, bf16);
        QCOMPARE(int(floatToHalfBits(value)), half);
        QCOMPARE(int(floatToBFloat16Bits(value)), bf16);
        if (std::isfinite(value) && half != 0x7C00 && half != 0)
            QCOMPARE(floatToHalfBits(halfBitsToFloat(static_cast<std::uint16_t>(half))), std::uint16_t(half));
    }

    void castCounts()
    {
        const float in[5] = {1e6f, 1e-6f, 1e-9f, 1.0f, NAN};
        CastCounts c;
        const auto out =
            castFloats({reinterpret_cast<const std::uint8_t *>(in), sizeof in}, DType::Float32, DType::Float16, &c);
        QCOMPARE(out.size(), std::size_t(10));
        QCOMPARE(c.values, std::int64_t(5));
        QCOMPARE(c.overflow, std::int64_t(1));
        QCOMPARE(c.subnormal, std::int64_t(1));
        QCOMPARE(c.zeroed, std::int64_t(1));
        QVERIFY_THROWS_EXCEPTION(
            FormatError, castFloats({reinterpret_cast<const std::uint8_t *>(in), 3}, DType::Float32, DType::Float16));
        QVERIFY_THROWS_EXCEPTION(FormatError, castFloats({}, DType::Int64, DType::Float16));
    }

    void safetensorsHeaderOrderAndPadding()
    {
        std::vector<SafetensorsEntry> entries;
        auto add = [&entries](std::string name, DType t, std::vector<std::int64_t> shape) {
            std::uint64_t n = dtypeSize(t);
            for (auto d : shape)
                n *= static_cast<std::uint64_t>(d);
            entries.push_back(
                {std::move(name), t, std::move(shape), n, [n](const ByteSink &sink) { sink(std::vector<std::uint8_t>(n, 7)); }});
        };
        add("z.bias", DType::Float16, {3});
        add("a.weight", DType::Float32, {2, 2});
        add("steps", DType::Int64, {1});
        add("b.weight", DType::Float32, {1});
        const std::string h = SafetensorsWriter::header(entries, {{"format", "pt"}});
        QCOMPARE((h.size() - 8) % 8, std::size_t(0));
        QVERIFY(h.find("\"__metadata__\"") < h.find("\"steps\""));
        QVERIFY(h.find("\"steps\"") < h.find("\"a.weight\"")); // I64 before F32 as the library sorts
        QVERIFY(h.find("\"a.weight\"") < h.find("\"b.weight\""));
        QVERIFY(h.find("\"b.weight\"") < h.find("\"z.bias\"")); // F32 before F16
        add("steps", DType::Int64, {1});
        QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsWriter::header(entries, {}));
    }

    // A tensor's bytes may come in pieces (a span of the mapping, or bounded chunks of a cast): the
    // file holds them in order, and a tensor that gives more or fewer bytes than its shape says
    // is refused, the excess never reaching the file.
    void safetensorsBytesInPieces()
    {
        std::vector<std::uint8_t> written;
        const ByteSink sink = [&written](std::span<const std::uint8_t> b) { written.insert(written.end(), b.begin(), b.end()); };
        const auto entry = [](int pieces, int extra) {
            return SafetensorsEntry{"w", DType::UInt8, {6}, 6, [pieces, extra](const ByteSink &out) {
                                        const std::uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
                                        const std::size_t total = std::size_t(6 + extra);
                                        for (int i = 0; i < pieces; ++i) {
                                            const std::size_t from = total * std::size_t(i) / std::size_t(pieces);
                                            const std::size_t to = total * std::size_t(i + 1) / std::size_t(pieces);
                                            out({bytes + from, to - from});
                                        }
                                    }};
        };
        SafetensorsWriter::write(sink, {entry(3, 0)}, {});
        std::vector<SafetensorsEntry> one{entry(1, 0)};
        const std::string head = SafetensorsWriter::header(one, {});
        QCOMPARE(written.size(), head.size() + 6);
        QCOMPARE(std::vector<std::uint8_t>(written.end() - 6, written.end()), (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6}));
        for (const int extra : {1, -1}) {
            written.clear();
            QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsWriter::write(sink, {entry(2, extra)}, {}));
            QVERIFY(written.size() <= head.size() + 6);
        }
    }

    void atomicWriterLeavesNothingBehind()
    {
        QTemporaryDir dir;
        const std::string path = (dir.path() + "/out.bin").toStdString();
        {
            AtomicFileWriter w(path, {});
            w.write(std::string("partial"));
            QVERIFY(QFile::exists(QString::fromStdString(w.temporaryPath())));
        } // destroyed without commit
        QVERIFY(folderEntries(dir.path()).isEmpty());
        {
            AtomicFileWriter w(path, {});
            w.write(std::string("refused"));
            QVERIFY_THROWS_EXCEPTION(FormatError,
                                     w.commit([](const std::string &) { throw FormatError("verification failed"); }));
        }
        QVERIFY(folderEntries(dir.path()).isEmpty());
        AtomicFileWriter w(path, {});
        w.write(std::string("done"));
        w.commit();
        QCOMPARE(folderEntries(dir.path()), QStringList{"out.bin"});
        QVERIFY_THROWS_EXCEPTION(FormatError, AtomicFileWriter(path, {})); // exists, no force
        const std::string data = "new";
        writeFileAtomically(path, asBytes(data), WriteOptions().allowOverwrite(true));
        QFile f(QString::fromStdString(path));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), QByteArray("new"));
        QVERIFY_THROWS_EXCEPTION(FormatError,
                                 AtomicFileWriter(path, WriteOptions().allowOverwrite(true).protect(path)));
    }

    void conversionCancelAndExistingOutput()
    {
        QTemporaryDir dir;
        const Document doc = readDocument(test::fixturePath("training_checkpoint.pth").toStdString());
        const std::string out = (dir.path() + "/out.pth").toStdString();
        int calls = 0;
        auto cancelling =
            ConvertOptions().target(ConvertTarget::Checkpoint).onProgress([&calls](double) { return ++calls < 2; });
        const auto plan = planConversion(doc, out, cancelling);
        try {
            executeConversion(doc, plan, cancelling);
            QFAIL("a cancelled conversion finished");
        } catch (const FormatError &e) {
            QVERIFY(std::string(e.what()).find("cancelled") != std::string::npos);
        }
        QVERIFY(folderEntries(dir.path()).isEmpty());

        const auto options = ConvertOptions().target(ConvertTarget::Inference);
        const auto result = executeConversion(doc, planConversion(doc, out, options), options);
        QVERIFY(result.verified);
        QCOMPARE(folderEntries(dir.path()), (QStringList{"out.pth", "out_metadata.json"}));
        QFile f(QString::fromStdString(out));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray before = f.readAll();
        f.close();
        QVERIFY_THROWS_EXCEPTION(FormatError, executeConversion(doc, planConversion(doc, out, options), options));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), before);
        QCOMPARE(folderEntries(dir.path()), (QStringList{"out.pth", "out_metadata.json"}));
        // The written file reads back as the kind it was made to be.
        const Document back = readDocument(out);
        QCOMPARE(back.kind, DocumentKind::InferencePackage);
        QCOMPARE(back.stateDict.size(), doc.stateDict.size());
    }

    void conversionsRefused()
    {
        const Document sd = readDocument(test::fixturePath("state_dict.pth").toStdString());
        // A CNN's weights alone do not say their layers: a full model needs --arch-spec.
        const Document cnn = readDocument(test::fixturePath("predict_cnn_state_dict.pth").toStdString());
        try {
            planConversion(cnn, "/tmp/x.pth", ConvertOptions().target(ConvertTarget::FullModel));
            QFAIL("a full model was planned from a CNN's weights without an architecture");
        } catch (const FormatError &e) {
            QVERIFY2(std::string(e.what()).find("--arch-spec") != std::string::npos, e.what());
        }
        // Metadata has no place in a full model; a TorchScript architecture cannot be pickled.
        QVERIFY_THROWS_EXCEPTION(
            FormatError, planConversion(sd, "/tmp/x.pth",
                                        ConvertOptions().target(ConvertTarget::FullModel).classNames({"a", "b"})));
        QVERIFY_THROWS_EXCEPTION(
            FormatError,
            planConversion(sd, "/tmp/x.pth",
                           ConvertOptions().target(ConvertTarget::FullModel).arch(ArchitectureRequest().script(
                               test::fixturePath("predict_arch.pt").toStdString()))));
        QVERIFY_THROWS_EXCEPTION(FormatError,
                                 planConversion(sd, "/tmp/x.pth", ConvertOptions().stripPrefix("module.")));
        QVERIFY_THROWS_EXCEPTION(FormatError, planConversion(sd, "/tmp/x.pth", ConvertOptions().drop("*")));
        QVERIFY_THROWS_EXCEPTION(FormatError, planConversion(sd, "/tmp/x.pth", ConvertOptions().ema(true)));
        const Document special = readDocument(test::fixturePath("special_tensors.pth").toStdString());
        // Quantized tensors have no safetensors dtype (a torch file takes them, as torch.save writes them).
        try {
            planConversion(special, "/tmp/x.safetensors", ConvertOptions().target(ConvertTarget::Safetensors));
            QFAIL("quantized tensors were planned into safetensors");
        } catch (const FormatError &e) {
            QVERIFY2(std::string(e.what()).find("quantized, which safetensors has no dtype for") != std::string::npos,
                     e.what());
        }
        const Document bad = readDocument(test::fixturePath("tensor_past_storage.pth").toStdString());
        try {
            planConversion(bad, "/tmp/x.pth", ConvertOptions());
            QFAIL("a tensor past its storage was planned");
        } catch (const FormatError &e) {
            QVERIFY(std::string(e.what()).starts_with(bad.path));
        }
        // Every key carries the same prefix: offered.
        const Document dp = readDocument(test::fixturePath("conv_dataparallel.pth").toStdString());
        const auto plan = planConversion(dp, "/tmp/x.pth", ConvertOptions());
        QCOMPARE(plan.detectedPrefixes, std::vector<std::string>{"module."});
        QCOMPARE(planConversion(dp, "/tmp/x.pth", ConvertOptions().stripPrefix("module")).kept.front(),
                 std::string("fc1.weight"));
    }

    void crcAcrossCoresEqualsZlib()
    {
        // 40 MiB and odd sizes: split across threads and joined, the CRC is zlib's serial one,
        // from zero and continued from an earlier part.
        std::vector<std::uint8_t> data((std::size_t{40} << 20) + 13);
        std::uint64_t x = 0x9E3779B97F4A7C15ull;
        for (auto &b : data) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b = static_cast<std::uint8_t>(x);
        }
        auto serial = [](std::span<const std::uint8_t> b, uLong crc) {
            for (std::size_t done = 0; done < b.size();) {
                const auto n = static_cast<uInt>(std::min<std::size_t>(b.size() - done, 1u << 20));
                crc = ::crc32(crc, b.data() + done, n);
                done += n;
            }
            return static_cast<std::uint32_t>(crc);
        };
        const std::span<const std::uint8_t> all(data);
        QCOMPARE(crc32Of(all), serial(all, 0));
        const auto head = all.first(std::size_t{17} << 20);
        const auto tail = all.subspan(head.size());
        QCOMPARE(crc32Of(tail, crc32Of(head)), serial(all, 0));
        QCOMPARE(crc32Of(all.first(100)), serial(all.first(100), 0));
        QCOMPARE(crc32Of({}), 0u);
    }

    void fullModelNesting_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("error");  // empty: written
        const QString head = R"({"type": "Linear", "name": "%1"})";
        auto spec = [&](QStringList names) {
            QStringList items;
            for (int i = 0; i < names.size(); ++i)
                items << (names[i].startsWith('~') ? QString(R"({"type": "ReLU", "name": "%1"})").arg(names[i].mid(1))
                                                   : head.arg(names[i]));
            return "[" + items.join(", ") + "]";
        };
        QTest::newRow("flat") << spec({"fc1", "~act", "fc2"}) << "";
        QTest::newRow("nested in order") << spec({"a.fc1", "~a.act", "fc2"}) << "";
        QTest::newRow("interleaved") << spec({"a.fc1", "~b", "a.fc2"}) << "cannot keep this order";
        QTest::newRow("leaf then container") << spec({"fc1", "~fc1.act", "fc2"}) << "not a container";
        QTest::newRow("empty part") << spec({"fc1", "~x..y", "fc2"}) << "empty part";
    }

    void fullModelNesting()
    {
        // Weights of two Linear layers under whatever names the row's spec gives them.
        QFETCH(QString, spec);
        QFETCH(QString, error);
        const Document sd = readDocument(test::fixturePath("state_dict.pth").toStdString());
        QStringList linear;
        const auto parsed = nlohmann::ordered_json::parse(spec.toStdString());
        for (const auto &l : parsed)
            if (l["type"] == "Linear")
                linear << QString::fromStdString(l["name"].get<std::string>());
        QCOMPARE(linear.size(), 2);
        const std::map<std::string, std::string> rename = {{"fc1.", linear[0].toStdString() + "."},
                                                           {"fc2.", linear[1].toStdString() + "."}};
        Document edited = sd;
        for (auto &t : edited.stateDict)
            for (const auto &[from, to] : rename)
                if (t.name.starts_with(from))
                    t.name = to + t.name.substr(from.size());
        try {
            const Architecture arch = architectureFromSpec(edited, parsed, Architecture::Source::Spec);
            const ValuePtr tree = moduleTreeValue(arch);
            QVERIFY2(error.isEmpty(), "written although the names do not nest");
            QCOMPARE(tree->objectClass()->qualifiedName(), std::string("torch.nn.modules.container.Sequential"));
            // The tree reads back as a module tree whose state dict has the spec's names.
            const std::string bytes = PickleWriter().write(tree);
            QVERIFY(!bytes.empty());
        } catch (const FormatError &e) {
            QVERIFY2(!error.isEmpty(), e.what());
            QVERIFY2(std::string(e.what()).find(error.toStdString()) != std::string::npos, e.what());
        }
    }

    void fullModelWithDangerousGlobalRefused()
    {
        // A module tree that also asks for os.system: written by our own writers, read back,
        // and refused for a full-model re-save (a weights format leaves the object out).
        auto params = Value::dict();
        params->setPythonClass("collections.OrderedDict");
        static const float w[2] = {1.5f, -2.0f};
        auto storage = std::make_shared<StorageRef>();
        storage->dtype = DType::Float32;
        storage->setBytes({reinterpret_cast<const std::uint8_t *>(w), sizeof w});
        auto weight = std::make_shared<TensorRef>(*tensorOn(storage, 0, {2}, {1})->tensorRef());
        weight->isParameter = true;
        params->entries().push_back({Value::string("weight"), Value::tensor(weight)});
        auto modules = Value::dict();
        modules->setPythonClass("collections.OrderedDict");
        auto state = Value::dict();
        state->entries().push_back({Value::string("training"), Value::boolean(true)});
        state->entries().push_back({Value::string("_parameters"), params});
        state->entries().push_back({Value::string("_buffers"), Value::dict()});
        state->entries().push_back({Value::string("_modules"), modules});
        state->entries().push_back({Value::string("evil"), Value::object(Value::global("posix", "system"),
                                                                         Value::tuple({Value::string("echo pwned")}))});
        auto module = Value::object(Value::global("evil_pkg", "Net"), Value::tuple());
        module->setState(state);
        PickleWriter writer;
        const std::string pkl = writer.write(module);
        std::string file;
        TorchZipWriter zip([&file](std::span<const std::uint8_t> b) {
            file.append(reinterpret_cast<const char *>(b.data()), b.size());
        });
        zip.addRecord("data.pkl", pkl);
        zip.addRecord("data/0", std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t *>(w), sizeof w));
        zip.addRecord("version", std::string("3\n"));
        zip.finish();
        const Document doc = readDocumentFromBytes(file, "evil.pth");
        QCOMPARE(doc.kind, DocumentKind::FullModel);
        QCOMPARE(doc.stateDict.size(), std::size_t(1));
        try {
            planConversion(doc, "/tmp/never-written.pth", ConvertOptions().target(ConvertTarget::FullModel));
            QFAIL("a full model naming posix.system was planned");
        } catch (const FormatError &e) {
            QVERIFY2(std::string(e.what()).find("posix.system") != std::string::npos, e.what());
        }
        const auto plan = planConversion(doc, "/tmp/never-written.pth", ConvertOptions());
        QCOMPARE(plan.kept, std::vector<std::string>{"weight"});
    }

    void defaultOutputNeverTheInput()
    {
        const auto o = ConvertOptions().target(ConvertTarget::Safetensors).dtype(DType::Float16);
        QCOMPARE(defaultOutputPath("/m/model.pth", o), std::string("/m/model_safetensors_fp16.safetensors"));
        QCOMPARE(defaultOutputPath("/m/model.safetensors.index.json", ConvertOptions(), "/o"),
                 std::string("/o/model_state_dict.pth"));
    }
};

QTEST_GUILESS_MAIN(TestWriters)
#include "tst_writers.moc"
