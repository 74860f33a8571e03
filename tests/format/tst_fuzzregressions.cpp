// Every input a fuzzer once crashed on (tests/fuzz/regressions) goes through every reader again:
// each must end in a clear error or a reading, never a crash.
#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "picklemachine.h"

#include <QtTest>

using namespace ckpt;

class TestFuzzRegressions : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void replay_data();
    void replay();
};

void TestFuzzRegressions::replay_data()
{
    QTest::addColumn<QString>("path");
    QDir dir(QStringLiteral(CKPT_SOURCE_DIR "/tests/fuzz/regressions"));
    for (const auto &name : dir.entryList(QDir::Files, QDir::Name))
        QTest::newRow(qPrintable(name)) << dir.filePath(name);
}

void TestFuzzRegressions::replay()
{
    QFETCH(QString, path);
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray bytes = f.readAll();
    try {
        PickleMachine m;
        m.setPersistentLoad([](const ValuePtr &, std::uint64_t) { return Value::none(); });
        auto r = m.run({reinterpret_cast<const std::uint8_t *>(bytes.constData()), static_cast<std::size_t>(bytes.size())});
        (void)valueToJson(r.value).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    } catch (const FormatError &) {
    }
    try {
        const auto doc = readDocumentFromBytes(bytes.toStdString(), path.toStdString());
        (void)documentToJson(doc).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    } catch (const FormatError &e) {
        QVERIFY(QString(e.what()).startsWith(path));
    }
}

QTEST_GUILESS_MAIN(TestFuzzRegressions)
#include "tst_fuzzregressions.moc"
