// Inputs Python refuses, read as Python reads them: text that is not UTF-8, a raw-unicode-escape
// past U+10FFFF, a byte order torch.load does not know; and a mobile export's bytecode.pkl, whose
// globals a scan lists as it lists data.pkl's. Inputs are built here byte by byte.
#include "document.h"
#include "error.h"
#include "picklemachine.h"
#include "security.h"
#include "storedzip.h"

#include <QtTest>

using namespace ckpt;

namespace {

// Runs a pickle; returns "" when it reads, the error otherwise, with the string it made in `text`.
std::string pickleError(const std::string &pickle, std::string *text = nullptr)
{
    try {
        PickleMachine m;
        const auto r = m.run({reinterpret_cast<const std::uint8_t *>(pickle.data()), pickle.size()});
        if (text && r.value && r.value->kind() == Value::Kind::String)
            *text = r.value->text();
        return {};
    } catch (const FormatError &e) {
        return e.what();
    }
}

std::string readError(const std::string &file)
{
    try {
        readDocumentFromBytes(file, "test.pth");
        return {};
    } catch (const FormatError &e) {
        return e.what();
    }
}

const std::string kEmptyDict("\x80\x02}.", 4);

} // namespace

class TestRefusedInput : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void strings_data();
    void strings();
    void badTextNamesRecordOffsetOpcode();
    void byteOrder();
    void mobileBytecodeGlobals();
};

void TestRefusedInput::strings_data()
{
    QTest::addColumn<QByteArray>("pickle");
    QTest::addColumn<QString>("error");  // empty: Python reads it
    QTest::addColumn<QByteArray>("text");
    const QByteArray bad("\xff\xfe\xfd", 3);
    QTest::newRow("BINUNICODE not UTF-8") << QByteArray("\x80\x02X\x03\x00\x00\x00", 7) + bad + "." << "offset 2 (BINUNICODE)" << QByteArray();
    QTest::newRow("SHORT_BINUNICODE not UTF-8") << QByteArray("\x80\x04\x8c\x03", 4) + bad + "." << "offset 2 (SHORT_BINUNICODE)" << QByteArray();
    QTest::newRow("BINUNICODE8 not UTF-8") << QByteArray("\x80\x04\x8d\x03\x00\x00\x00\x00\x00\x00\x00", 11) + bad + "." << "offset 2 (BINUNICODE8)" << QByteArray();
    QTest::newRow("overlong slash") << QByteArray("\x80\x02X\x02\x00\x00\x00\xc0\xaf.", 11) << "offset 2 (BINUNICODE)" << QByteArray();
    QTest::newRow("past U+10FFFF") << QByteArray("\x80\x02X\x04\x00\x00\x00\xf4\x90\x80\x80.", 13) << "offset 2 (BINUNICODE)" << QByteArray();
    // 'surrogatepass': a lone surrogate is text to Python's unpickler.
    QTest::newRow("lone surrogate") << QByteArray("\x80\x02X\x03\x00\x00\x00\xed\xa0\x80.", 11) << "" << QByteArray("\xed\xa0\x80");
    QTest::newRow("UNICODE past U+10FFFF") << QByteArray("V\\U0011FFFF\n.") << "offset 0 (UNICODE)" << QByteArray();
    QTest::newRow("UNICODE truncated escape") << QByteArray("Vab\\u00\n.") << "offset 0 (UNICODE)" << QByteArray();
    QTest::newRow("UNICODE U+10FFFF") << QByteArray("V\\U0010FFFF\n.") << "" << QByteArray("\xf4\x8f\xbf\xbf");
    QTest::newRow("UNICODE surrogate") << QByteArray("V\\ud800\n.") << "" << QByteArray("\xed\xa0\x80");
    QTest::newRow("UNICODE latin-1") << QByteArray("V\xff\n.") << "" << QByteArray("\xc3\xbf");
    // A backslash takes the next character along: "\\u0041" stays as written, "\\\u0041" is "\\A".
    QTest::newRow("UNICODE escaped backslash") << QByteArray("V\\\\u0041\n.") << "" << QByteArray("\\\\u0041");
    QTest::newRow("UNICODE three backslashes") << QByteArray("V\\\\\\u0041\n.") << "" << QByteArray("\\\\A");
}

void TestRefusedInput::strings()
{
    QFETCH(QByteArray, pickle);
    QFETCH(QString, error);
    QFETCH(QByteArray, text);
    std::string made;
    const QString got = QString::fromStdString(pickleError(pickle.toStdString(), &made));
    if (error.isEmpty()) {
        QVERIFY2(got.isEmpty(), qPrintable(got));
        QCOMPARE(QByteArray::fromStdString(made), text);
    } else {
        QVERIFY2(got.contains(error), qPrintable(got));
    }
}

void TestRefusedInput::badTextNamesRecordOffsetOpcode()
{
    // {'name': b'\xff\xfe\xfd' as a str}: the value's BINUNICODE is at offset 12 of data.pkl, which
    // starts after the 30-byte local header and its 16-byte name: offset 58 of the file.
    const std::string pkl = std::string("\x80\x02}X\x04\x00\x00\x00nameX\x03\x00\x00\x00\xff\xfe\xfds.", 24);
    const auto err = readError(test::storedZip({{"archive/data.pkl", pkl}, {"archive/version", "3\n"}}));
    QVERIFY2(err.find("test.pth") != std::string::npos && err.find("record 'archive/data.pkl'") != std::string::npos &&
                 err.find("pickle offset 58 (BINUNICODE)") != std::string::npos && err.find("UTF-8") != std::string::npos,
             err.c_str());
}

void TestRefusedInput::byteOrder()
{
    for (const char *order : {"little", "big"}) {
        const auto err = readError(test::storedZip({{"archive/data.pkl", kEmptyDict}, {"archive/byteorder", order}}));
        QVERIFY2(err.empty(), err.c_str());
    }
    // torch.load (2.1 and later): ValueError('Unknown endianness type: middle'); 1.13 reads on. The
    // file is read (a pickle behind the record is still scanned) and the record is an anomaly.
    const std::string system("\x80\x02\x63posix\nsystem\nX\x02\x00\x00\x00id\x85R.", 27);
    const auto doc = readDocumentFromBytes(test::storedZip({{"archive/data.pkl", system}, {"archive/byteorder", "middle"}}),
                                           "middle.pth");
    const auto report = securityReport(doc);
    QVERIFY(report.dangerous);
    QVERIFY(std::any_of(report.anomalies.begin(), report.anomalies.end(), [](const std::string &a) {
        return a.find("'archive/byteorder'") != std::string::npos && a.find("'middle'") != std::string::npos;
    }));
}

void TestRefusedInput::mobileBytecodeGlobals()
{
    const std::string system("\x80\x02\x63os\nsystem\nX\x02\x00\x00\x00id\x85R.", 24);
    const auto doc = readDocumentFromBytes(test::storedZip({{"m/bytecode.pkl", system},
                                                  {"m/constants.pkl", std::string("\x80\x02).", 4)},
                                                  {"m/data.pkl", kEmptyDict},
                                                  {"m/version", "8\n"}}),
                                           "mobile.ptl");
    const auto r = securityReport(doc);
    QVERIFY(r.dangerous);
    bool flagged = false;
    for (const auto &g : r.globals)
        flagged = flagged || (g.use.module == "os" && g.use.qualname == "system" && g.cls == GlobalClass::Dangerous);
    QVERIFY(flagged);
    // A mobile export with no data.pkl does not read, but what its bytecode.pkl names is kept.
    try {
        readDocumentFromBytes(test::storedZip({{"m/bytecode.pkl", system}, {"m/version", "8\n"}}), "mobile.ptl");
        QFAIL("a mobile export without data.pkl read");
    } catch (const ReadFailure &e) {
        bool named = false;
        for (const auto &g : e.globals)
            named = named || g.name == "os.system";
        QVERIFY2(named, e.what());
    }
}

QTEST_GUILESS_MAIN(TestRefusedInput)
#include "tst_refusedinput.moc"
