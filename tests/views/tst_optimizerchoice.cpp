// The optimizer view on a file with several optimizers (a GAN's, one per network), written by real
// torch for this test (gan_optimizer_inputs.py) with torch's own account of each: the view offers
// every optimizer, the model's first, and shows each one's class, parameters and the network it
// updates; a file with one optimizer has no chooser.
#include "document.h"
#include "optimizerstatemodel.h"
#include "optimizerview.h"
#include "pythoninputs.h"

#include <QComboBox>
#include <QJsonObject>
#include <QLabel>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace ckpt;

class TestOptimizerChoice : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void everyOptimizerOfAGan();
    void oneOptimizerNoChooser();

private:
    QTemporaryDir m_dir;
    QJsonObject m_expected;
    std::shared_ptr<const Document> read(const QString &name)
    {
        return std::make_shared<const Document>(readDocument(m_dir.filePath(name).toStdString()));
    }
    // Waits for the state norms, so that no job outlives the view.
    static void settle(OptimizerView &view)
    {
        QSignalSpy finished(&view, &OptimizerView::statisticsFinished);
        if (view.statisticsRunning())
            QVERIFY(finished.wait(60000));
    }
};

void TestOptimizerChoice::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/gan_optimizer_inputs.py"),
                                         m_dir.path(), error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
}

// The view showed only the optimizer paired with the model's weights: the discriminator's could not be seen.
void TestOptimizerChoice::everyOptimizerOfAGan()
{
    const QJsonObject want = m_expected.value(QStringLiteral("gan.pt")).toObject();
    OptimizerView view;
    view.setDocument(read(QStringLiteral("gan.pt")));
    settle(view);
    QComboBox *choice = view.optimizerChoice();
    QVERIFY(!view.optimizerChoiceRow()->isHidden());
    QCOMPARE(choice->count(), want.size());
    // The generator's weights are the model's: its optimizer first, though the file lists it second.
    const QStringList order{QStringLiteral("optimizer_G"), QStringLiteral("optimizer_D")};
    for (int i = 0; i < order.size(); ++i) {
        const QJsonObject o = want.value(order[i]).toObject();
        choice->setCurrentIndex(i);
        settle(view);
        const QString cls = o.value(QStringLiteral("class")).toString();
        QVERIFY2(choice->itemText(i).startsWith(order[i] + QStringLiteral(" \u2014 ") + cls), qPrintable(choice->itemText(i)));
        QVERIFY2(view.summary()->text().contains(QStringLiteral("<b>%1</b>").arg(cls)), qPrintable(view.summary()->text()));
        QVERIFY2(view.summary()->text().contains(order[i]), qPrintable(view.summary()->text()));
        QCOMPARE(view.stateModel()->rowCount(), o.value(QStringLiteral("parameters")).toInt());
        QCOMPARE(view.stateModel()->parametersWithState(), o.value(QStringLiteral("with_state")).toInt());
        const QString mapping = view.findChild<QLabel *>(QStringLiteral("optimizerMapping"))->text();
        QVERIFY2(mapping.contains(QStringLiteral("Updates the weights under '%1'")
                                      .arg(o.value(QStringLiteral("network")).toString())),
                 qPrintable(mapping));
    }
}

void TestOptimizerChoice::oneOptimizerNoChooser()
{
    OptimizerView view;
    view.setDocument(read(QStringLiteral("single.pt")));
    settle(view);
    QVERIFY(view.optimizerChoiceRow()->isHidden());
    QVERIFY(view.stateModel()->hasOptimizer());
}

QTEST_MAIN(TestOptimizerChoice)
#include "tst_optimizerchoice.moc"
