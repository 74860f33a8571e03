// Hostile inputs an attacker would write (made by the fixture generator, never unpickled there):
// each gives a clear error or a safe reading, with dangerous names flagged and zip tricks reported.
// What to expect of each is recorded beside it in fixtures/expected.json ("__hostile__").
#include "document.h"
#include "error.h"
#include "security.h"

#include <QtTest>

using namespace ckpt;

class TestHostile : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void inputs_data();
    void inputs();
};

void TestHostile::inputs_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QJsonObject>("expect");
    QFile f(QStringLiteral(CKPT_FIXTURES_DIR "/expected.json"));
    if (!f.open(QIODevice::ReadOnly))
        return;
    const auto hostile = QJsonDocument::fromJson(f.readAll()).object().value("__hostile__").toObject();
    for (auto it = hostile.begin(); it != hostile.end(); ++it)
        if (it.value().toObject().contains("expect"))
            QTest::newRow(qPrintable(it.key())) << it.key() << it.value().toObject();
}

void TestHostile::inputs()
{
    QFETCH(QString, file);
    QFETCH(QJsonObject, expect);
    const QString path = QStringLiteral(CKPT_FIXTURES_DIR "/") + file;
    const bool opens = expect.value("expect").toString() == "ok";
    try {
        const auto doc = readDocument(path.toStdString());
        QVERIFY2(opens, "expected a clear error, got a reading");
        const auto report = securityReport(doc);
        QCOMPARE(report.dangerous, expect.value("dangerous").toBool(false));
        if (expect.contains("global")) {
            bool named = false;
            for (const auto &g : report.globals)
                named = named || (QString::fromStdString(g.use.name) == expect.value("global").toString() &&
                                  g.cls == GlobalClass::Dangerous);
            QVERIFY2(named, qPrintable(expect.value("global").toString() + " not flagged"));
        }
        QString warnings, anomalies;
        for (const auto &w : doc.warnings)
            warnings += QString::fromStdString(w) + "\n";
        for (const auto &a : report.anomalies)
            anomalies += QString::fromStdString(a) + "\n";
        if (expect.contains("warning"))
            QVERIFY2(warnings.contains(expect.value("warning").toString()), qPrintable(warnings));
        if (expect.contains("anomaly"))
            QVERIFY2(anomalies.contains(expect.value("anomaly").toString()), qPrintable(anomalies));
        for (const auto &a : expect.value("anomalies").toArray())
            QVERIFY2(anomalies.contains(a.toString()), qPrintable(anomalies));
        // A tensor the file makes invalid is marked, the rest of the file still read.
        if (const QJsonArray problem = expect.value("problem").toArray(); !problem.isEmpty()) {
            bool marked = false;
            for (const auto &t : doc.tensors)
                marked = marked || (QString::fromStdString(t.name) == problem[0].toString() &&
                                    QString::fromStdString(t.ref().problem).contains(problem[1].toString()));
            QVERIFY2(marked, qPrintable(problem[0].toString() + " not marked"));
        }
        const QJsonArray tensors = expect.value("tensors").toArray();
        if (!tensors.isEmpty()) {
            QCOMPARE(static_cast<qsizetype>(doc.tensors.size()), tensors.size());
            for (int i = 0; i < tensors.size(); ++i) {
                const auto row = tensors[i].toArray();
                const auto &t = doc.tensors[static_cast<std::size_t>(i)];
                QCOMPARE(QString::fromStdString(t.name), row[0].toString());
                QCOMPARE(QString(QLatin1String(dtypeName(t.ref().dtype))), row[1].toString());
                QCOMPARE(static_cast<qint64>(t.ref().shape.at(0)), row[2].toArray().at(0).toInteger());
                QVERIFY2(t.ref().problem.empty(), t.ref().problem.c_str());
            }
        }
    } catch (const FormatError &e) {
        const QString what = QString::fromUtf8(e.what());
        QVERIFY2(!opens, qPrintable(what));
        QVERIFY2(what.startsWith(path + ": "), qPrintable(what));
        QVERIFY2(what.contains(expect.value("message").toString()), qPrintable(what));
        // What Python would run before the fault is still named, and the message says so.
        const auto *failure = dynamic_cast<const ReadFailure *>(&e);
        if (expect.value("dangerous").toBool(false)) {
            QVERIFY2(failure, "no globals kept with the error");
            bool named = false;
            for (const auto &g : failure->globals)
                named = named || (QString::fromStdString(g.name) == expect.value("global").toString() &&
                                  classifyGlobal(g).cls == GlobalClass::Dangerous);
            QVERIFY2(named, qPrintable(expect.value("global").toString() + " not kept"));
            QVERIFY2(what.contains(QStringLiteral("which Python would run")), qPrintable(what));
        }
    }
}

QTEST_GUILESS_MAIN(TestHostile)
#include "tst_hostile.moc"
