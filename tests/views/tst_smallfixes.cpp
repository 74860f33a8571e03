// Two views on files real torch 1.13 writes for this test (small_fixes_inputs.py): the Compare view
// says that an AveragedModel's n_averaged is set aside, in `ckpt diff`'s words, rather than leaving
// it out unsaid; and the document view warns of an object that appears in more than one place only
// when that matters (a shared list), not for the betas tuple every multi-group AdamW shares.
#include "compareview.h"
#include "documentview.h"
#include "pythoninputs.h"

#include <QJsonObject>
#include <QLabel>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace ckpt;

class TestSmallFixes : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void compareSaysAveragedCountIsSetAside_data();
    void compareSaysAveragedCountIsSetAside();
    void sharedBetasTupleIsNoWarning();
    void sharedListIsStillWarned();

private:
    QString warningsOf(const QString &name);
    QTemporaryDir m_dir;
    QJsonObject m_expected;
};

void TestSmallFixes::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/small_fixes_inputs.py"),
                                         m_dir.path(), error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
}

void TestSmallFixes::compareSaysAveragedCountIsSetAside_data()
{
    QTest::addColumn<QString>("a");
    QTest::addColumn<QString>("b");
    QTest::addColumn<QString>("side");
    QTest::newRow("swa first") << "swa.pth" << "plain.pth" << "first";
    QTest::newRow("swa second") << "plain.pth" << "swa.pth" << "second";
}

void TestSmallFixes::compareSaysAveragedCountIsSetAside()
{
    QFETCH(QString, a);
    QFETCH(QString, b);
    QFETCH(QString, side);
    CompareView view;
    QSignalSpy done(&view, &CompareView::finished);
    view.compare(m_dir.filePath(a), m_dir.filePath(b));
    QVERIFY(done.wait(60000));
    QCOMPARE(done.first().first().toBool(), true);
    const QString text = view.summary()->text();
    // The weights pair up (the prefix set aside) and are equal; the counter is said, with torch's count.
    QVERIFY2(text.contains(QStringLiteral("Weights equal")), qPrintable(text));
    QVERIFY2(text.contains(QStringLiteral("0 removed")) && text.contains(QStringLiteral("0 added")), qPrintable(text));
    const QString note = QStringLiteral("n_averaged of the %1 file (%2) is the count of models "
                                        "torch.optim.swa_utils.AveragedModel averaged, not a weight: set aside")
                             .arg(side)
                             .arg(m_expected.value(QStringLiteral("n_averaged")).toInt());
    QVERIFY2(text.contains(note), qPrintable(text));
}

QString TestSmallFixes::warningsOf(const QString &name)
{
    DocumentView view;
    QSignalSpy loaded(&view, &DocumentView::loaded);
    view.open(m_dir.filePath(name));
    if (!loaded.wait(20000))
        return QStringLiteral("(not loaded)");
    auto *label = view.findChild<QLabel *>(QStringLiteral("warnings"));
    return label && !label->isHidden() ? label->text() : QString();
}

void TestSmallFixes::sharedBetasTupleIsNoWarning()
{
    // torch's param_groups hold one betas tuple (the same object in every group): immutable numbers
    // Python shares freely, no reason to warn.
    QVERIFY(m_expected.value(QStringLiteral("betas_shared")).toBool());
    QCOMPARE(m_expected.value(QStringLiteral("param_groups")).toInt(), 2);
    const QString warnings = warningsOf(QStringLiteral("adamw_two_groups.pth"));
    QVERIFY2(!warnings.contains(QStringLiteral("more than one place")), qPrintable(warnings));
}

void TestSmallFixes::sharedListIsStillWarned()
{
    // A list in two places is one object to Python: a change through one name shows at the other.
    QVERIFY(m_expected.value(QStringLiteral("list_shared")).toBool());
    const QString warnings = warningsOf(QStringLiteral("shared_list.pth"));
    QVERIFY2(warnings.contains(QStringLiteral("1 object appears in more than one place")), qPrintable(warnings));
}

QTEST_MAIN(TestSmallFixes)
#include "tst_smallfixes.moc"
