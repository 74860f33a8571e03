// The optimizer view offscreen, on checkpoints real torch writes for this test
// (optimizer_view_inputs.py) with torch's own account of each: the header's counts of parameters
// and of those with state, a pickled optimizer instance shown as its state_dict() would read, and
// a line instead of an empty table where the file keeps no scheduler, scaler or RNG state.
#include "document.h"
#include "optimizerstatemodel.h"
#include "optimizerview.h"
#include "pythoninputs.h"

#include <QJsonObject>
#include <QLabel>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>

using namespace ckpt;

class TestOptimizerView : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void countsParametersWithState();
    void pickledOptimizer();
    void noSchedulerSaysSo();
    void adamOrAdamW_data();
    void adamOrAdamW();
    void optimizerAlone();
    void deepSpeedPartition();
    void notAnOptimizerSaysWhy();

private:
    QTemporaryDir m_dir;
    QJsonObject m_expected;
    std::shared_ptr<const Document> read(const QString &name)
    {
        return std::make_shared<const Document>(readDocument(m_dir.filePath(name).toStdString()));
    }
    // Shows the document and waits for the state norms, so that no job outlives the view.
    static void show(OptimizerView &view, const std::shared_ptr<const Document> &doc)
    {
        QSignalSpy finished(&view, &OptimizerView::statisticsFinished);
        view.setDocument(doc);
        if (view.statisticsRunning())
            QVERIFY(finished.wait(60000));
    }
};

void TestOptimizerView::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/optimizer_view_inputs.py"),
                                         m_dir.path(), error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
}

// Three param groups with the LSTM's frozen for the step: torch lists 21 parameters and keeps state
// for 5; the header said "21 parameters with state".
void TestOptimizerView::countsParametersWithState()
{
    const QJsonObject want = m_expected.value(QStringLiteral("partial_state.pth")).toObject();
    const int params = want.value(QStringLiteral("parameters")).toInt();
    const int withState = want.value(QStringLiteral("with_state")).toInt();
    QVERIFY(withState < params);
    OptimizerView view;
    show(view, read(QStringLiteral("partial_state.pth")));
    QCOMPARE(view.stateModel()->rowCount(), params);
    QCOMPARE(view.stateModel()->parametersWithState(), withState);
    const QString summary = view.summary()->text();
    QVERIFY2(summary.contains(QStringLiteral("%1 parameters, %2 with state").arg(params).arg(withState)),
             qPrintable(summary));
    QVERIFY2(summary.contains(QStringLiteral("%1 param groups").arg(want.value(QStringLiteral("groups")).toInt())),
             qPrintable(summary));
}

// torch.save of an object holding a torch.optim.Adam: the view shows its state as state_dict() gives it.
void TestOptimizerView::pickledOptimizer()
{
    const QJsonObject want = m_expected.value(QStringLiteral("pickled_optimizer.pth")).toObject();
    OptimizerView view;
    show(view, read(QStringLiteral("pickled_optimizer.pth")));
    OptimizerStateModel *m = view.stateModel();
    QVERIFY2(m->hasOptimizer(), qPrintable(view.summary()->text()));
    QCOMPARE(m->rowCount(), want.value(QStringLiteral("parameters")).toInt());
    QCOMPARE(m->parametersWithState(), want.value(QStringLiteral("with_state")).toInt());
    QCOMPARE(view.groupsModel()->rowCount(), want.value(QStringLiteral("groups")).toInt());
    QVERIFY(view.summary()->text().contains(want.value(QStringLiteral("path")).toString()));
    for (int r = 0; r < m->rowCount(); ++r)
        QCOMPARE(m->index(r, OptimizerStateModel::StepColumn).data(OptimizerStateModel::SortRole).toDouble(),
                 want.value(QStringLiteral("step")).toDouble());
    // Its LR scheduler is listed, and no line says there is none.
    QVERIFY(view.trainingStateModel()->rowCount() > 0);
    QVERIFY(view.trainingStateNote()->isHidden());
}

void TestOptimizerView::noSchedulerSaysSo()
{
    OptimizerView view;
    show(view, read(QStringLiteral("lightning_no_scheduler.ckpt")));
    QCOMPARE(view.trainingStateModel()->rowCount(), 0);
    QVERIFY(!view.trainingStateNote()->isHidden());
    const QString note = view.trainingStateNote()->text();
    QVERIFY2(note.contains(QStringLiteral("no learning-rate scheduler")), qPrintable(note));
    QVERIFY2(note.contains(QStringLiteral("'lr_schedulers' is an empty list")), qPrintable(note));

    show(view, read(QStringLiteral("partial_state.pth")));
    QVERIFY(!view.trainingStateNote()->isHidden());
    QVERIFY(!view.trainingStateNote()->text().contains(QStringLiteral("lr_schedulers")));
}

void TestOptimizerView::adamOrAdamW_data()
{
    QTest::addColumn<QString>("file");
    QTest::newRow("Adam") << "adam.pth";
    QTest::newRow("AdamW") << "adamw.pth";
    QTest::newRow("Adam amsgrad") << "adam_amsgrad.pth";
    QTest::newRow("AdamW amsgrad") << "adamw_amsgrad.pth";
}

// Their state is alike (exp_avg, exp_avg_sq, step); the keys of torch's param groups name the class.
void TestOptimizerView::adamOrAdamW()
{
    QFETCH(QString, file);
    const QJsonObject want = m_expected.value(file).toObject();
    OptimizerView view;
    show(view, read(file));
    // The class torch instantiated, and whether amsgrad was on: "AdamW (AMSGrad)", as `ckpt info` says.
    const QString cls = want.value(QStringLiteral("cls")).toString();
    const QString type = cls + (want.value(QStringLiteral("amsgrad")).toBool() ? QStringLiteral(" (AMSGrad)") : QString());
    QCOMPARE(view.stateModel()->optimizerType(), type);
    QCOMPARE(view.stateModel()->optimizerClass(), cls);
    const QString summary = view.summary()->text();
    QVERIFY2(summary.contains(QStringLiteral("<b>%1</b> (as its param groups' keys tell)").arg(type)), qPrintable(summary));
}

// torch.save(optimizer.state_dict()) alone (Hugging Face Trainer's optimizer.pt): shown as the
// optimizer it is, the whole file, its ids not called an uncertain mapping (there are no weights).
void TestOptimizerView::optimizerAlone()
{
    const QJsonObject want = m_expected.value(QStringLiteral("optimizer.pt")).toObject();
    OptimizerView view;
    show(view, read(QStringLiteral("optimizer.pt")));
    OptimizerStateModel *m = view.stateModel();
    QVERIFY2(m->hasOptimizer(), qPrintable(view.summary()->text()));
    QCOMPARE(m->rowCount(), want.value(QStringLiteral("parameters")).toInt());
    QCOMPARE(m->parametersWithState(), want.value(QStringLiteral("with_state")).toInt());
    QCOMPARE(view.groupsModel()->rowCount(), want.value(QStringLiteral("groups")).toInt());
    QVERIFY2(view.summary()->text().contains(QStringLiteral("the whole file")), qPrintable(view.summary()->text()));
    const auto *mapping = view.findChild<QLabel *>(QStringLiteral("optimizerMapping"));
    QVERIFY(mapping);
    QVERIFY2(!mapping->text().contains(QStringLiteral("uncertain")), qPrintable(mapping->text()));
    QVERIFY2(mapping->text().contains(QStringLiteral("optimizer's state alone")), qPrintable(mapping->text()));
}

// A DeepSpeed ZeRO-2 *_optim_states.pt: the torch optimizer inside DeepSpeed's wrapper is shown,
// one row per flat fp32 group, and the note says that is what its ids are.
void TestOptimizerView::deepSpeedPartition()
{
    const QJsonObject want = m_expected.value(QStringLiteral("zero2")).toObject();
    OptimizerView view;
    show(view, read(want.value(QStringLiteral("path")).toString()));
    OptimizerStateModel *m = view.stateModel();
    QVERIFY2(m->hasOptimizer(), qPrintable(view.summary()->text()));
    QCOMPARE(m->rowCount(), want.value(QStringLiteral("parameters")).toInt());
    QCOMPARE(m->parametersWithState(), want.value(QStringLiteral("with_state")).toInt());
    QCOMPARE(view.groupsModel()->rowCount(), want.value(QStringLiteral("groups")).toInt());
    const auto *mapping = view.findChild<QLabel *>(QStringLiteral("optimizerMapping"));
    QVERIFY(mapping);
    const QString said = QStringLiteral("DeepSpeed ZeRO stage %1 partition: the optimizer's ids are %2 flat fp32 groups")
                             .arg(want.value(QStringLiteral("stage")).toInt())
                             .arg(want.value(QStringLiteral("groups")).toInt());
    QVERIFY2(mapping->text().contains(said), qPrintable(mapping->text()));
}

// An optimizer_state_dict with 'state' but no 'param_groups' (torch refuses to resume from it, as
// the generator checks): no optimizer, and the summary says which key and what it lacks rather than
// "keeps no optimizer state".
void TestOptimizerView::notAnOptimizerSaysWhy()
{
    OptimizerView view;
    show(view, read(QStringLiteral("state_only.pth")));
    auto *m = view.stateModel();
    QVERIFY(!m->hasOptimizer());
    const QString summary = view.summary()->text();
    QVERIFY2(summary.contains(QStringLiteral("'optimizer_state_dict' is not an optimizer state dict")), qPrintable(summary));
    QVERIFY2(summary.contains(QStringLiteral("no 'param_groups'")), qPrintable(summary));
    QVERIFY2(!summary.contains(QStringLiteral("keeps no optimizer state")), qPrintable(summary));
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS")) {
        view.resize(1000, 500);
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/optimizer-not-read.png"));
    }

    // A file that names no optimizer at all still says so plainly.
    show(view, read(QStringLiteral("weights_only.pth")));
    QVERIFY(!view.stateModel()->hasOptimizer());
    QCOMPARE(view.summary()->text(), QStringLiteral("This file keeps no optimizer state."));
}

QTEST_MAIN(TestOptimizerView)
#include "tst_optimizerview.moc"
