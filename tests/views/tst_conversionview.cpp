// The conversion pane, offscreen: files dropped on a target are planned in the background as the
// engine's planConversion plans them, with the values the file carries prefilled; the queue
// converts one file at a time, verified, and real PyTorch loads what it wrote; cancel leaves no
// file; an existing output is replaced only when the policy says so; an unwritable folder is a
// clear error on its row. The TorchScript target writes what `ckpt convert --to torchscript`
// writes, which Python's torch.jit.load runs as the original model, its architecture also taken
// from a TorchScript file of the same model (`--arch`), refused as the command line refuses it.
#include "conversionplanmodel.h"
#include "conversionqueuemodel.h"
#include "conversionview.h"
#include "dropevents.h"
#include "error.h"
#include "scriptexport.h"
#include "testdata.h"
#include "valuetext.h"

#include <QAbstractItemModelTester>
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QFormLayout>
#include <QMimeData>
#include <QProcess>
#include <QSemaphore>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QFontMetrics>
#include <QToolButton>

#include <memory>
#include <unistd.h>

using namespace ckpt;
using Status = ConversionQueueItem::Status;

namespace {

using test::dropFiles;

constexpr int kWait = 60000;

Status statusOf(const ConversionView &v, int row)
{
    return static_cast<Status>(v.queueModel()->index(row, 0).data(ConversionQueueModel::StatusRole).toInt());
}

QString resultOf(const ConversionView &v, int row)
{
    return v.queueModel()->index(row, ConversionQueueModel::ResultColumn).data().toString();
}

// The plan column: what the plan writes, or why there is no plan.
QString planOf(const ConversionView &v, int row)
{
    return v.queueModel()->index(row, ConversionQueueModel::PlanColumn).data().toString();
}

QLineEdit *field(const ConversionView &v, const char *name)
{
    return qobject_cast<QLineEdit *>(v.optionWidget(QLatin1String(name)));
}

// Types into a field as a user does (textEdited, not setText).
void typeInto(QLineEdit *edit, const QString &text)
{
    QVERIFY(edit);
    edit->selectAll();
    QTest::keyClick(edit, Qt::Key_Delete);
    QTest::keyClicks(edit, text);
}

// Holds the view's conversion worker where it first asks whether it was cancelled, until opened:
// a test cancels at exactly that point, however fast the job or slow the machine (no race with the
// worker finishing first). Opened when it goes, so a failed test leaves no worker blocked.
class WorkerGate {
public:
    explicit WorkerGate(ConversionView &view)
    {
        view.setCancelCheckHook([s = m_state] {
            s->asked.release();
            s->go.acquire();
            s->go.release();  // once open, every later ask passes
        });
    }
    ~WorkerGate() { open(); }
    WorkerGate(const WorkerGate &) = delete;
    WorkerGate &operator=(const WorkerGate &) = delete;
    // Waits (blocking the GUI thread, which the worker does not need) until the worker asks.
    bool reached() { return m_state->asked.tryAcquire(1, kWait); }
    void open()
    {
        if (!m_open)
            m_state->go.release();
        m_open = true;
    }

private:
    struct State {
        QSemaphore asked;
        QSemaphore go;
    };
    std::shared_ptr<State> m_state = std::make_shared<State>();
    bool m_open = false;
};

QStringList filesIn(const QString &dir)
{
    return QDir(dir).entryList(QDir::Files | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot);
}

QStringList qt(const std::vector<std::string> &v)
{
    QStringList out;
    for (const auto &s : v)
        out << QString::fromStdString(s);
    return out;
}

// Runs one of the checks beside this test with PyTorch; true when it passed.
bool pythonCheck(const char *script, const QStringList &args, QString *log)
{
    QProcess python;
    python.setProcessChannelMode(QProcess::MergedChannels);
    python.start(QStringLiteral(CKPT_PYTHON),
                 QStringList{QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/") + QLatin1String(script)} + args);
    if (!python.waitForFinished(120000))
        return false;
    *log = QString::fromUtf8(python.readAll());
    return python.exitStatus() == QProcess::NormalExit && python.exitCode() == 0;
}

// check_conversion.py: PyTorch loads the output and compares it with the source.
bool judgedByTorch(const QStringList &args, QString *log) { return pythonCheck("check_conversion.py", args, log); }

// check_torchscript.py: torch.jit.load loads the output, which holds the reference's weights and
// computes what the reference model computes.
bool scriptJudgedByTorch(const QStringList &args, QString *log) { return pythonCheck("check_torchscript.py", args, log); }

// The names of the option fields enabled now, among those a target may leave unused.
QStringList enabledFields(const ConversionView &view)
{
    QStringList on;
    for (const char *name : {"config", "classNames", "preprocessing", "epoch", "trainLoss", "valLoss", "architecture",
                             "architectureScript", "activation", "sidecar", "keepDevice", "dropOptimizer"})
        if (view.optionWidget(QLatin1String(name))->isEnabled())
            on << QLatin1String(name);
    return on;
}

// The CNN of predict_cnn.pth as the Architecture field takes it (its weights alone are in
// predict_cnn_state_dict.pth).
const QString kCnnSpec = QStringLiteral(
    R"([{"type": "Conv2d", "name": "0", "padding": 1}, {"type": "BatchNorm2d", "name": "1"}, )"
    R"({"type": "ReLU", "name": "2"}, {"type": "MaxPool2d", "name": "3", "kernel_size": 2}, )"
    R"({"type": "Conv2d", "name": "4"}, {"type": "BatchNorm2d", "name": "5"}, )"
    R"({"type": "LeakyReLU", "name": "6", "negative_slope": 0.1}, {"type": "AvgPool2d", "name": "7", "kernel_size": 2}, )"
    R"({"type": "Flatten", "name": "8"}, {"type": "Dropout", "name": "9", "p": 0.3}, {"type": "Linear", "name": "10"}, )"
    R"({"type": "LogSoftmax", "name": "11", "dim": 1}])");

} // namespace

class TestConversionView : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void dropPlanRunAndTorchLoads();
    void multiFileDropRunsAsQueue();
    void cancelLeavesNoFile();
    void existingOutputAsksPolicy();
    void replacingAnEarlierRowsOutputSaysSo();
    void anotherRowsInputIsNeverWritten();
    void unwritableFolderIsClearError();
    void fullDiskIsClearError();
    void detectedPrefixIsOffered();
    void targetCanBeChanged();
    void queueShowsPlanBeforeVerification();
    void clickedTargetRetargetsSelection();
    void fieldsFollowTheTarget();
    void fullModelFromWeightsTakesAnArchitecture();
    void unreadableFileCannotBeConverted();
    void torchScriptTargetRunsAndTorchLoads();
    void torchScriptWithoutArchitectureIsClearError();
    void torchScriptCancelLeavesNoFile();
    void torchScriptWithoutLibTorchSaysSo();
    void torchScriptArchitectureFromFile();
    void torchScriptArchitectureFileErrors_data();
    void torchScriptArchitectureFileErrors();
    void torchScriptArchitectureFileOrLayersNotBoth();
    void architectureFileLoadedOncePerState();
    void architectureFileIsForTorchScriptOnly();
    void architectureFileIsNeverWrittenOver();
    void queueUsableAt1024x700();
    void loraAdapterMergedAsPeftDoes();
    void maxShardSizeWritesHubShards();
};

void TestConversionView::dropPlanRunAndTorchLoads()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.resize(1200, 800);
    QAbstractItemModelTester queueTester(view.queueModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester planTester(view.planModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    view.show();
    const QString input = test::fixturePath(QStringLiteral("training_checkpoint.pth"));
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::Inference), {input}));
    QCOMPARE(view.queueModel()->rowCount(), 1);
    QCOMPARE(view.currentRow(), 0);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);

    // The values the file carries are prefilled from it (as torch.load reads them).
    const QJsonObject meta = test::expectedListing()
                                 .value(QStringLiteral("training_checkpoint.pth"))
                                 .toObject()
                                 .value(QStringLiteral("metadata"))
                                 .toObject();
    QVERIFY(!meta.isEmpty());
    QCOMPARE(field(view, "epoch")->text().toInt(), meta.value(QStringLiteral("epoch")).toInt());
    QCOMPARE(field(view, "trainLoss")->text().toDouble(), meta.value(QStringLiteral("train_loss")).toDouble());
    QCOMPARE(field(view, "valLoss")->text().toDouble(), meta.value(QStringLiteral("val_loss")).toDouble());
    QCOMPARE(QJsonDocument::fromJson(field(view, "config")->text().toUtf8()).object(),
             meta.value(QStringLiteral("model_config")).toObject());
    QVERIFY(field(view, "classNames")->text().isEmpty());  // the file has none

    // A config sharing a string and a dict: the field holds it in full at each place (the text is
    // what is written when edited), equal to what torch.load returns.
    {
        const QJsonObject shared = test::expectedListing().value(QStringLiteral("__shared_config__")).toObject();
        ConversionView other;
        QVERIFY(dropFiles(other.dropTarget(ConvertTarget::Inference),
                          {test::fixturePath(shared.value(QStringLiteral("file")).toString())}));
        QTRY_COMPARE_WITH_TIMEOUT(statusOf(other, 0), Status::Ready, kWait);
        const QString text = field(other, "config")->text();
        QVERIFY2(!text.contains(QLatin1String("__ref__")), qPrintable(text.left(200)));
        QCOMPARE(QJsonDocument::fromJson(text.toUtf8()).object(), shared.value(QStringLiteral("model_config")).toObject());
    }

    // Options: float16, a key left out, class names, an output folder.
    auto *dtype = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("dtype")));
    QVERIFY(dtype);
    dtype->setCurrentIndex(dtype->findData(QStringLiteral("float16")));
    typeInto(field(view, "drops"), QStringLiteral("*.bias"));
    typeInto(field(view, "classNames"), QStringLiteral("cat, dog"));
    typeInto(field(view, "outDir"), out.path());
    QCOMPARE(statusOf(view, 0), Status::Planning);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);

    // The plan shown is the engine's plan for the same options.
    const auto doc = test::readFixture(QStringLiteral("training_checkpoint.pth"));
    const auto options =
        ConvertOptions().target(ConvertTarget::Inference).dtype(DType::Float16).drop("*.bias").classNames({"cat", "dog"});
    const std::string output = defaultOutputPath(input.toStdString(), options, out.path().toStdString());
    const ConversionPlan want = planConversion(*doc, output, options);
    const auto *plan = view.planModel();
    QVERIFY(plan->plan());
    QCOMPARE(plan->plan()->output, output);
    QCOMPARE(plan->entries(ConversionPlanModel::Change::Kept), qt(want.kept));
    QStringList dropped, lost;
    for (const auto &d : want.dropped)
        dropped << QString::fromStdString(d.entry);
    for (const auto &l : want.lost)
        lost << QString::fromStdString(l.entry);
    QCOMPARE(plan->entries(ConversionPlanModel::Change::Dropped), dropped);
    QVERIFY(!dropped.isEmpty() && dropped.first().endsWith(QStringLiteral(".bias")));
    QVERIFY(lost.contains(QStringLiteral("optimizer_state_dict")));  // listed before anything is written
    QCOMPARE(plan->entries(ConversionPlanModel::Change::Carried), qt(want.carried));
    QCOMPARE(plan->entries(ConversionPlanModel::Change::Lost), lost);
    QCOMPARE(plan->plan()->bytesBefore, want.bytesBefore);
    QCOMPARE(plan->plan()->bytesAfter, want.bytesAfter);
    QCOMPARE(want.bytesAfter * 2, want.bytesBefore);  // float32 → float16
    const QString summary = view.planSummary()->text();
    QVERIFY2(summary.contains(QStringLiteral("%1 kept").arg(want.kept.size())), qPrintable(summary));
    QVERIFY2(summary.contains(QStringLiteral("cast to float16")), qPrintable(summary));

    // Run: written, verified, and PyTorch agrees.
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Done);
    QVERIFY2(resultOf(view, 0).startsWith(QStringLiteral("verified")), qPrintable(resultOf(view, 0)));
    QCOMPARE(view.queueModel()->index(0, 0).data(ConversionQueueModel::ProgressRole).toDouble(), 1.0);
    const QString written = QString::fromStdString(output);
    QVERIFY(QFile::exists(written));
    QVERIFY(QFile::exists(QString::fromStdString(want.sidecarPath)));
    QString log;
    const bool ok = judgedByTorch({written, input, QStringLiteral("--dtype"), QStringLiteral("float16"),
                                   QStringLiteral("--class-names"), QStringLiteral("cat,dog"),
                                   QStringLiteral("--drop"), QStringLiteral("*.bias"),
                                   QStringLiteral("--inference")},
                                  &log);
    QVERIFY2(ok, qPrintable(log));

    // Open asks the application to open the output.
    QSignalSpy open(&view, &ConversionView::openRequested);
    view.openSelected();
    QCOMPARE(open.count(), 1);
    QCOMPARE(open.first().first().toString(), written);
}

void TestConversionView::multiFileDropRunsAsQueue()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    QAbstractItemModelTester queueTester(view.queueModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    const QStringList inputs{test::fixturePath(QStringLiteral("state_dict.pth")),
                             test::fixturePath(QStringLiteral("training_checkpoint.pth")),
                             test::fixturePath(QStringLiteral("inference_package.pth"))};
    // The output folder first: new files take the panel's generic options.
    typeInto(field(view, "outDir"), out.path());
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::StateDict), inputs));
    QCOMPARE(view.queueModel()->rowCount(), 3);
    for (int r = 0; r < 3; ++r)
        QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, r), Status::Ready, kWait);

    // One at a time: never two rows writing at once, and in queue order.
    int maxRunning = 0;
    connect(view.queueModel(), &QAbstractItemModel::dataChanged, &view, [&] {
        int running = 0;
        for (int r = 0; r < view.queueModel()->rowCount(); ++r)
            running += statusOf(view, r) == Status::Running;
        maxRunning = std::max(maxRunning, running);
    });
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, kWait);
    QCOMPARE(maxRunning, 1);
    QCOMPARE(finished.count(), 3);
    for (int r = 0; r < 3; ++r) {
        QCOMPARE(finished.at(r).first().toInt(), r);
        QCOMPARE(statusOf(view, r), Status::Done);
        const QString output = view.queueModel()->index(r, ConversionQueueModel::OutputColumn)
                                   .data(ConversionQueueModel::PathRole)
                                   .toString();
        QCOMPARE(QFileInfo(output).absolutePath(), QFileInfo(out.path()).absoluteFilePath());
        QString log;
        QVERIFY2(judgedByTorch({output, inputs[r]}, &log), qPrintable(log));
    }
}

void TestConversionView::cancelLeavesNoFile()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    typeInto(field(view, "outDir"), out.path());
    // 64 MiB of float32: cancelled at its first progress step, while it is written.
    view.addFiles({test::fixturePath(QStringLiteral("large.pth"))}, ConvertTarget::StateDict);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    WorkerGate gate(view);
    view.runQueue();
    QCOMPARE(statusOf(view, 0), Status::Running);
    QVERIFY(view.isRunning());
    QVERIFY(gate.reached());  // the worker is writing and waits for us to cancel
    view.cancel();
    gate.open();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Cancelled);
    QVERIFY(!view.isRunning());
    QCOMPARE(filesIn(out.path()), QStringList());  // neither the output nor a temporary file

    // Run again: it completes.
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, kWait);
    QCOMPARE(statusOf(view, 0), Status::Done);
    QCOMPARE(filesIn(out.path()), QStringList{QStringLiteral("large_state_dict.pth")});
}

void TestConversionView::existingOutputAsksPolicy()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    QStringList asked;
    bool answer = false;
    view.setOverwritePolicy([&](const QString &path, const QString &question) {
        asked << path;
        // A file the queue did not write: the question names it and claims no row wrote it.
        if (!question.startsWith(QStringLiteral("%1 already exists.").arg(path)) || question.contains(QStringLiteral("written")))
            asked << QStringLiteral("unexpected question: ") + question;
        return answer;
    });
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("state_dict.pth"));
    view.addFiles({input}, ConvertTarget::StateDict);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    const QString output = view.queueModel()->index(0, ConversionQueueModel::OutputColumn)
                               .data(ConversionQueueModel::PathRole)
                               .toString();
    {
        QFile old(output);
        QVERIFY(old.open(QIODevice::WriteOnly));
        old.write("the old file");
    }
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QCOMPARE(asked, QStringList{output});
    QCOMPARE(statusOf(view, 0), Status::Skipped);
    {
        QFile old(output);
        QVERIFY(old.open(QIODevice::ReadOnly));
        QCOMPARE(old.readAll(), QByteArray("the old file"));
    }
    QCOMPARE(filesIn(out.path()).size(), 1);

    answer = true;
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, kWait);
    QCOMPARE(asked.size(), 2);
    QCOMPARE(statusOf(view, 0), Status::Done);
    QString log;
    QVERIFY2(judgedByTorch({output, input}, &log), qPrintable(log));
}

// x.pth -> x_state_dict.pth while x_state_dict.pth (another checkpoint) waits in the same queue:
// the row is refused, whatever the replace question would answer, and the other file keeps its
// bytes; the other row still converts, to a name of its own.
void TestConversionView::anotherRowsInputIsNeverWritten()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString first = QDir(dir.path()).filePath(QStringLiteral("x.pth"));
    const QString second = QDir(dir.path()).filePath(QStringLiteral("x_state_dict.pth"));
    QVERIFY(QFile::copy(test::fixturePath(QStringLiteral("training_checkpoint.pth")), first));
    QVERIFY(QFile::copy(test::fixturePath(QStringLiteral("inference_package.pth")), second));
    const auto bytesOf = [](const QString &path) {
        QFile f(path);
        return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
    };
    const QByteArray kept = bytesOf(second);
    QVERIFY(!kept.isEmpty());
    ConversionView view;
    int asked = 0;
    view.setOverwritePolicy([&](const QString &, const QString &) {
        ++asked;
        return true;
    });
    view.addFiles({first, second}, ConvertTarget::StateDict);
    for (int r = 0; r < 2; ++r)
        QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, r), Status::Ready, kWait);
    const auto outputOf = [&view](int row) {
        return view.queueModel()->index(row, ConversionQueueModel::OutputColumn).data(ConversionQueueModel::PathRole).toString();
    };
    QCOMPARE(QFileInfo(outputOf(0)).canonicalFilePath(), QFileInfo(second).canonicalFilePath());
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Failed);
    QVERIFY2(resultOf(view, 0).contains(QStringLiteral("is the input of row 2 of the queue; it is never overwritten")),
             qPrintable(resultOf(view, 0)));
    QCOMPARE(asked, 0);
    QCOMPARE(bytesOf(second), kept);
    QVERIFY2(statusOf(view, 1) == Status::Done, qPrintable(resultOf(view, 1)));
    QVERIFY(QFileInfo(outputOf(1)).canonicalFilePath() != QFileInfo(second).canonicalFilePath());
    QString log;
    QVERIFY2(judgedByTorch({outputOf(1), second}, &log), qPrintable(log));
}

// Two rows of one queue write the same file: the question before the later one replaces it says
// which row wrote it, and from what; once something else has changed the file, it no longer does.
void TestConversionView::replacingAnEarlierRowsOutputSaysSo()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    QStringList questions;
    view.setOverwritePolicy([&](const QString &, const QString &question) {
        questions << question;
        return true;
    });
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("state_dict.pth"));
    view.addFiles({test::fixturePath(QStringLiteral("training_checkpoint.pth")), input, input}, ConvertTarget::StateDict);
    for (int r = 0; r < 3; ++r)
        QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, r), Status::Ready, kWait);
    auto outputOf = [&view](int row) {
        return view.queueModel()->index(row, ConversionQueueModel::OutputColumn).data(ConversionQueueModel::PathRole).toString();
    };
    const QString output = outputOf(1);
    QCOMPARE(outputOf(2), output);
    QVERIFY(outputOf(0) != output);
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, kWait);
    for (int r = 0; r < 3; ++r)
        QCOMPARE(statusOf(view, r), Status::Done);
    QCOMPARE(questions.size(), 1);
    const QString said = QStringLiteral("It was written by row 2 of this queue (%1 \u2192 %2).")
                             .arg(QFileInfo(input).fileName(), QFileInfo(output).fileName());
    QVERIFY2(questions.first().startsWith(QStringLiteral("%1 already exists.").arg(output)), qPrintable(questions.first()));
    QVERIFY2(questions.first().contains(said), qPrintable(questions.first()));

    // Row 3 converts again (a new option): its own earlier file; then, changed by someone else,
    // the file is no longer said to be the queue's.
    view.selectRow(2);
    auto *keepDevice = qobject_cast<QCheckBox *>(view.optionWidget(QStringLiteral("keepDevice")));
    QVERIFY(keepDevice && keepDevice->isEnabled());
    keepDevice->click();
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 2), Status::Ready, kWait);
    QCOMPARE(outputOf(2), output);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 2, kWait);
    QCOMPARE(questions.size(), 2);
    QVERIFY2(questions.last().contains(QStringLiteral("This row wrote it earlier in this session")), qPrintable(questions.last()));
    {
        QFile changed(output);
        QVERIFY(changed.open(QIODevice::WriteOnly));
        changed.write("written by something else");
    }
    keepDevice->click();
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 2), Status::Ready, kWait);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 3, kWait);
    QCOMPARE(questions.size(), 3);
    QVERIFY2(!questions.last().contains(QStringLiteral("written")), qPrintable(questions.last()));
}

void TestConversionView::unwritableFolderIsClearError()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    const QString input = test::fixturePath(QStringLiteral("state_dict.pth"));
    // A "folder" that is a file: unwritable for everyone, root included.
    const QString notAFolder = out.filePath(QStringLiteral("plain-file"));
    {
        QFile f(notAFolder);
        QVERIFY(f.open(QIODevice::WriteOnly));
    }
    QStringList folders{notAFolder};
    const QString locked = out.filePath(QStringLiteral("locked"));
    QVERIFY(QDir().mkpath(locked));
    QVERIFY(QFile::setPermissions(locked, QFileDevice::ReadOwner | QFileDevice::ExeOwner));
    if (geteuid() != 0)  // root writes anywhere
        folders << locked;
    for (const QString &folder : folders) {
        ConversionView view;
        typeInto(field(view, "outDir"), folder);
        view.addFiles({input}, ConvertTarget::StateDict);
        QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
        QSignalSpy finished(&view, &ConversionView::itemFinished);
        view.runQueue();
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
        QCOMPARE(statusOf(view, 0), Status::Failed);
        const QString error = resultOf(view, 0);
        QVERIFY2(error.contains(folder) && error.contains(QStringLiteral("temporary file")), qPrintable(error));
        QCOMPARE(view.queueModel()->index(0, ConversionQueueModel::ResultColumn).data(Qt::ToolTipRole).toString(),
                 error);
    }
    QCOMPARE(filesIn(locked), QStringList());
    QFile::setPermissions(locked, QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
}

void TestConversionView::fullDiskIsClearError()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    // A 4 KiB tmpfs: a disk that fills up while the file is written (root in a container or VM).
    QProcess mount;
    mount.start(QStringLiteral("mount"), {QStringLiteral("-t"), QStringLiteral("tmpfs"), QStringLiteral("-o"),
                                          QStringLiteral("size=4k"), QStringLiteral("tmpfs"), out.path()});
    if (!mount.waitForFinished() || mount.exitStatus() != QProcess::NormalExit || mount.exitCode() != 0)
        QSKIP("a tmpfs cannot be mounted here");
    struct Unmount {
        QString path;
        ~Unmount() { QProcess::execute(QStringLiteral("umount"), {path}); }
    } unmount{out.path()};
    ConversionView view;
    typeInto(field(view, "outDir"), out.path());
    view.addFiles({test::fixturePath(QStringLiteral("training_checkpoint.pth"))}, ConvertTarget::Checkpoint);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Failed);
    QVERIFY2(resultOf(view, 0).contains(QStringLiteral("No space left")), qPrintable(resultOf(view, 0)));
    QCOMPARE(filesIn(out.path()), QStringList());
}

void TestConversionView::detectedPrefixIsOffered()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    QAbstractItemModelTester planTester(view.planModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("conv_dataparallel.pth"));
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::StateDict), {input}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    auto *strip = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("stripPrefix")));
    QVERIFY(strip);
    const auto doc = test::readFixture(QStringLiteral("conv_dataparallel.pth"));
    const ConversionPlan plain =
        planConversion(*doc, out.filePath(QStringLiteral("x.pth")).toStdString(), ConvertOptions());
    QCOMPARE(plain.detectedPrefixes, std::vector<std::string>{"module."});
    QVERIFY(strip->findText(QStringLiteral("module.")) > 0);  // offered after "none"
    strip->setCurrentIndex(strip->findText(QStringLiteral("module.")));
    QCOMPARE(statusOf(view, 0), Status::Planning);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    const ConversionPlan want = planConversion(*doc, out.filePath(QStringLiteral("x.pth")).toStdString(),
                                               ConvertOptions().stripPrefix("module."));
    QCOMPARE(view.planModel()->entries(ConversionPlanModel::Change::Kept), qt(want.kept));
    for (const QString &k : view.planModel()->entries(ConversionPlanModel::Change::Kept))
        QVERIFY2(!k.startsWith(QStringLiteral("module.")), qPrintable(k));
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Done);
    const QString output =
        view.queueModel()->index(0, ConversionQueueModel::OutputColumn).data(ConversionQueueModel::PathRole).toString();
    QString log;
    QVERIFY2(judgedByTorch({output, input, QStringLiteral("--strip"), QStringLiteral("module.")}, &log), qPrintable(log));
}

// Before anything runs, the queue says what the plan will do (in a column of its own, worded as
// a plan); the verification column speaks only once the file has been written.
void TestConversionView::queueShowsPlanBeforeVerification()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    typeInto(field(view, "outDir"), out.path());
    view.addFiles({test::fixturePath(QStringLiteral("training_checkpoint.pth"))}, ConvertTarget::StateDict);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    const auto *queue = view.queueModel();
    QCOMPARE(queue->headerData(ConversionQueueModel::PlanColumn, Qt::Horizontal).toString(), QStringLiteral("Plan"));
    QCOMPARE(queue->headerData(ConversionQueueModel::ResultColumn, Qt::Horizontal).toString(),
             QStringLiteral("Verification"));
    const QString plan = planOf(view, 0);
    QVERIFY2(plan.startsWith(QStringLiteral("will write")), qPrintable(plan));
    QVERIFY2(plan.contains(QStringLiteral("not written")), qPrintable(plan));  // the optimizer, epoch, ...
    QVERIFY2(resultOf(view, 0).isEmpty(), qPrintable(resultOf(view, 0)));
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Done);
    QVERIFY2(resultOf(view, 0).startsWith(QStringLiteral("verified")), qPrintable(resultOf(view, 0)));
}

// A target card clicked with queue rows selected converts those files to it instead (its tooltip
// says so); it does not ask for more files.
void TestConversionView::clickedTargetRetargetsSelection()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.resize(1200, 800);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    typeInto(field(view, "outDir"), out.path());
    view.addFiles({test::fixturePath(QStringLiteral("state_dict.pth")),
                   test::fixturePath(QStringLiteral("training_checkpoint.pth"))},
                  ConvertTarget::StateDict);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 1), Status::Ready, kWait);
    view.queueView()->selectAll();
    ConversionDropTarget *card = view.dropTarget(ConvertTarget::Safetensors);
    QVERIFY2(card->toolTip().contains(QStringLiteral("2 selected files")), qPrintable(card->toolTip()));
    QTest::mouseClick(card, Qt::LeftButton);
    QCOMPARE(view.queueModel()->rowCount(), 2);  // no file was added
    for (int r = 0; r < 2; ++r) {
        QCOMPARE(view.queueModel()->index(r, ConversionQueueModel::TargetColumn).data().toString(),
                 convertTargetLabel(ConvertTarget::Safetensors));
        QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, r), Status::Ready, kWait);
        const QString output =
            view.queueModel()->index(r, ConversionQueueModel::OutputColumn).data(ConversionQueueModel::PathRole).toString();
        QVERIFY2(output.endsWith(QStringLiteral(".safetensors")), qPrintable(output));
    }
    auto *target = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("target")));
    QCOMPARE(target->currentData().toInt(), static_cast<int>(ConvertTarget::Safetensors));
    view.queueView()->clearSelection();
    QVERIFY2(card->toolTip().contains(QStringLiteral("choose files")), qPrintable(card->toolTip()));
}

void TestConversionView::targetCanBeChanged()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    typeInto(field(view, "outDir"), out.path());
    view.addFiles({test::fixturePath(QStringLiteral("state_dict.pth"))}, ConvertTarget::StateDict);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    auto *target = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("target")));
    QVERIFY(target);
    QCOMPARE(target->currentData().toInt(), static_cast<int>(ConvertTarget::StateDict));
    target->setCurrentIndex(target->findData(static_cast<int>(ConvertTarget::Safetensors)));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QCOMPARE(view.planModel()->plan()->target, ConvertTarget::Safetensors);
    const QString output =
        view.queueModel()->index(0, ConversionQueueModel::OutputColumn).data(ConversionQueueModel::PathRole).toString();
    QCOMPARE(output, QDir(out.path()).filePath(QStringLiteral("state_dict_safetensors.safetensors")));
    QCOMPARE(QString::fromStdString(view.planModel()->plan()->output), output);
    QCOMPARE(view.queueModel()->index(0, ConversionQueueModel::TargetColumn).data().toString(),
             convertTargetLabel(ConvertTarget::Safetensors));
    // Files added next go to the target last chosen.
    view.addFiles({test::fixturePath(QStringLiteral("state_dict.pth"))});
    QCOMPARE(view.queueModel()->index(1, ConversionQueueModel::TargetColumn).data().toString(),
             convertTargetLabel(ConvertTarget::Safetensors));
}

// Values a target does not write are not offered for editing: an inference package keeps no
// epoch or losses (its plan lists them as not written), a checkpoint everything but an
// architecture (class names and preprocessing under additional_info); an epoch
// typed for a checkpoint does not stop a full model, which refuses such values, from being planned.
void TestConversionView::fieldsFollowTheTarget()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.show();
    typeInto(field(view, "outDir"), out.path());
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::Inference), {test::fixturePath(QStringLiteral("training_checkpoint.pth"))}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    auto enabled = [&view] {
        QStringList on;
        for (const char *name : {"config", "classNames", "preprocessing", "epoch", "trainLoss", "valLoss",
                                 "architecture", "architectureScript"})
            if (field(view, name)->isEnabled())
                on << QLatin1String(name);
        return on;
    };
    QCOMPARE(enabled(), QStringList({"config", "classNames", "preprocessing"}));
    QVERIFY(!field(view, "epoch")->text().isEmpty());  // still shows what the file has
    const QStringList lost = view.planModel()->entries(ConversionPlanModel::Change::Lost);
    for (const char *key : {"epoch", "train_loss", "val_loss"})
        QVERIFY2(lost.contains(QLatin1String(key)), qPrintable(lost.join(QStringLiteral(", "))));
    // The plan speaks of this panel's targets and fields, not of ckpt's options.
    for (int r = 0; r < view.planModel()->rowCount(); ++r) {
        const QString detail = view.planModel()->index(r, ConversionPlanModel::DetailColumn).data().toString();
        QVERIFY2(!detail.contains(QLatin1String("--")), qPrintable(detail));
    }
    QVERIFY(view.planModel()->entries(ConversionPlanModel::Change::Lost).size() > 0);
    QCOMPARE(panelWording("an inference package holds only model_state_dict, model_config (use --to checkpoint to keep it)"),
             QStringLiteral("an inference package holds only model_state_dict, model_config (the Checkpoint target keeps it)"));
    // The lost entries say which keys the package holds, by name.
    for (int r = 0; r < view.planModel()->rowCount(); ++r) {
        const QString detail = view.planModel()->index(r, ConversionPlanModel::DetailColumn).data().toString();
        QVERIFY2(!detail.contains(QLatin1String("seed's keys")), qPrintable(detail));
        if (detail.startsWith(QLatin1String("an inference package holds only ")))
            QVERIFY2(detail.contains(QLatin1String("model_state_dict, model_config, ")), qPrintable(detail));
    }
    QCOMPARE(panelWording("set it with --epoch"), QStringLiteral("set it with the Epoch field"));

    auto *target = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("target")));
    target->setCurrentIndex(target->findData(static_cast<int>(ConvertTarget::Checkpoint)));
    QCOMPARE(enabled(), QStringList({"config", "classNames", "preprocessing", "epoch", "trainLoss", "valLoss"}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    typeInto(field(view, "epoch"), QStringLiteral("77"));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);

    target->setCurrentIndex(target->findData(static_cast<int>(ConvertTarget::FullModel)));
    QCOMPARE(enabled(), QStringList({"architecture"}));
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(resultOf(view, 0)));

    for (ConvertTarget t : {ConvertTarget::StateDict, ConvertTarget::Safetensors}) {
        target->setCurrentIndex(target->findData(static_cast<int>(t)));
        QVERIFY(enabled().isEmpty());
    }
}

void TestConversionView::fullModelFromWeightsTakesAnArchitecture()
{
    // A CNN's weights alone dropped on "Full model": the plan says an architecture is needed; the
    // layers typed into the Architecture field make it a module PyTorch runs like the original.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("predict_cnn_state_dict.pth"));
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::FullModel), {input}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Invalid, kWait);
    QVERIFY2(planOf(view, 0).contains(QStringLiteral("architecture")), qPrintable(planOf(view, 0)));
    // A full model is built of standard layers: the row asks for them, not for a TorchScript file.
    QVERIFY2(planOf(view, 0).contains(QStringLiteral("give the layers in the Architecture field")) &&
                 !planOf(view, 0).contains(QStringLiteral("TorchScript")),
             qPrintable(planOf(view, 0)));
    const QString spec = QStringLiteral(
        R"([{"type": "Conv2d", "name": "0", "padding": 1}, {"type": "BatchNorm2d", "name": "1"}, )"
        R"({"type": "ReLU", "name": "2"}, {"type": "MaxPool2d", "name": "3", "kernel_size": 2}, )"
        R"({"type": "Conv2d", "name": "4"}, {"type": "BatchNorm2d", "name": "5"}, )"
        R"({"type": "LeakyReLU", "name": "6", "negative_slope": 0.1}, {"type": "AvgPool2d", "name": "7", "kernel_size": 2}, )"
        R"({"type": "Flatten", "name": "8"}, {"type": "Dropout", "name": "9", "p": 0.3}, {"type": "Linear", "name": "10"}, )"
        R"({"type": "LogSoftmax", "name": "11", "dim": 1}])");
    typeInto(field(view, "architecture"), spec);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QVERIFY(view.planModel()->plan());
    QCOMPARE(view.planModel()->plan()->kept.size(), std::size_t{16});
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Done);
    const QString written = QString::fromStdString(view.planModel()->plan()->output);
    QVERIFY(QFile::exists(written));
    QString log;
    QVERIFY2(judgedByTorch({written, input, QStringLiteral("--full-model"),
                            test::fixturePath(QStringLiteral("predict_cnn.pth")), QStringLiteral("--input-shape"),
                            QStringLiteral("2,3,12,12")},
                           &log),
             qPrintable(log));
}

void TestConversionView::unreadableFileCannotBeConverted()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString junk = dir.filePath(QStringLiteral("junk.pth"));
    {
        QFile f(junk);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("not a checkpoint at all");
    }
    ConversionView view;
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::Safetensors), {junk}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Invalid, kWait);
    // Why it cannot be converted is the plan's to say; nothing was verified.
    QVERIFY2(planOf(view, 0).startsWith(junk), qPrintable(planOf(view, 0)));
    QVERIFY2(resultOf(view, 0).isEmpty(), qPrintable(resultOf(view, 0)));
    // Nothing to run: the queue finishes without writing.
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QCOMPARE(done.count(), 1);
    QCOMPARE(filesIn(dir.path()), QStringList{QStringLiteral("junk.pth")});
}

void TestConversionView::torchScriptTargetRunsAndTorchLoads()
{
    // A pickled CNN and the seed's inference package dropped on the TorchScript card: planned as
    // planScriptExport plans them (`ckpt convert --to torchscript`), written one after the other,
    // verified, and run by torch.jit.load as the originals run.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.resize(1400, 800);
    QAbstractItemModelTester queueTester(view.queueModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester planTester(view.planModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    view.show();
    typeInto(field(view, "outDir"), out.path());
    const QString cnn = test::fixturePath(QStringLiteral("predict_cnn.pth"));
    const QString package = test::fixturePath(QStringLiteral("predict_package.pth"));
    ConversionDropTarget *card = view.dropTarget(PaneTarget::TorchScript);
    QVERIFY(card);
    QCOMPARE(card->objectName(), QStringLiteral("target-torchscript"));
    QVERIFY(dropFiles(card, {cnn, package}));
    QCOMPARE(view.queueModel()->rowCount(), 2);
    for (int r = 0; r < 2; ++r) {
        QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, r) != Status::Planning, kWait);
        QVERIFY2(statusOf(view, r) == Status::Ready, qPrintable(planOf(view, r)));
        QCOMPARE(view.queueModel()->index(r, ConversionQueueModel::TargetColumn).data().toString(),
                 QStringLiteral("TorchScript"));
    }
    // What the target cannot hold is disabled, as the command line refuses it; the architecture,
    // the weight edits and the dtype stay.
    QCOMPARE(view.currentRow(), 0);
    QCOMPARE(enabledFields(view), QStringList({"architecture", "architectureScript", "activation"}));
    for (const char *name : {"dtype", "stripPrefix", "addPrefix", "drops", "ema", "outDir"})
        QVERIFY2(view.optionWidget(QLatin1String(name))->isEnabled(), name);
    auto *target = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("target")));
    QCOMPARE(target->currentData().toInt(), static_cast<int>(PaneTarget::TorchScript));

    // The CNN: its own module tree, exactly; the output named as the command line names it.
    const QString cnnOut = QDir(out.path()).filePath(QStringLiteral("predict_cnn_torchscript.pt"));
    {
        const auto doc = test::readFixture(QStringLiteral("predict_cnn.pth"));
        const ScriptExport want = planScriptExport(
            *doc,
            defaultOutputPathFor(cnn.toStdString(), "_torchscript", ".pt", std::nullopt, out.path().toStdString()),
            ConvertOptions(), ArchitectureRequest());
        QCOMPARE(QString::fromStdString(want.plan.output), cnnOut);
        QVERIFY(view.planModel()->plan());
        QCOMPARE(QString::fromStdString(view.planModel()->plan()->output), cnnOut);
        QCOMPARE(view.planModel()->entries(ConversionPlanModel::Change::Kept), qt(want.plan.kept));
        QCOMPARE(view.queueModel()->index(0, ConversionQueueModel::OutputColumn).data().toString(),
                 QStringLiteral("predict_cnn_torchscript.pt"));
        const QString summary = view.planSummary()->text();
        QVERIFY2(summary.contains(QStringLiteral("(TorchScript)")), qPrintable(summary));
        QVERIFY2(summary.contains(QStringLiteral("architecture: pickled module tree (exact)")), qPrintable(summary));
    }

    // The package, cast to bfloat16: the name carries the cast; its metadata is listed as not
    // written (a TorchScript file holds the module and its weights only) and its normalisation
    // is warned about, as planScriptExport says.
    view.selectRow(1);
    auto *dtype = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("dtype")));
    dtype->setCurrentIndex(dtype->findData(QStringLiteral("bfloat16")));
    QCOMPARE(statusOf(view, 1), Status::Planning);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 1), Status::Ready, kWait);
    QCOMPARE(statusOf(view, 0), Status::Ready);  // only the selected file was changed
    const QString packageOut = QDir(out.path()).filePath(QStringLiteral("predict_package_torchscript_bf16.pt"));
    {
        const auto doc = test::readFixture(QStringLiteral("predict_package.pth"));
        const ScriptExport want = planScriptExport(*doc, packageOut.toStdString(),
                                                   ConvertOptions().dtype(DType::BFloat16), ArchitectureRequest());
        const auto *plan = view.planModel();
        QVERIFY(plan->plan());
        QCOMPARE(QString::fromStdString(plan->plan()->output), packageOut);
        QCOMPARE(plan->entries(ConversionPlanModel::Change::Kept), qt(want.plan.kept));
        QStringList lost;
        for (const auto &l : want.plan.lost)
            lost << QString::fromStdString(l.entry);
        QCOMPARE(plan->entries(ConversionPlanModel::Change::Lost), lost);
        for (const char *key : {"model_config", "input_mean", "input_std", "class_names"})
            QVERIFY2(lost.contains(QLatin1String(key)), key);
        for (int r = 0; r < plan->rowCount(); ++r)
            if (plan->index(r, ConversionPlanModel::ChangeColumn).data().toString() == QLatin1String("not written"))
                QCOMPARE(plan->index(r, ConversionPlanModel::DetailColumn).data().toString(),
                         QStringLiteral("a TorchScript file holds the module and its weights only"));
        const QStringList warnings = plan->entries(ConversionPlanModel::Change::Warning);
        QCOMPARE(warnings.size(), static_cast<qsizetype>(want.plan.warnings.size()));
        QVERIFY2(warnings.join(QLatin1Char('\n')).contains(QStringLiteral("normalise inputs before calling it")),
                 qPrintable(warnings.join(QLatin1Char('\n'))));
        QCOMPARE(plan->plan()->bytesAfter, want.plan.bytesAfter);
        QCOMPARE(want.plan.bytesAfter * 2, want.plan.bytesBefore);  // float32 → bfloat16
        const QString summary = view.planSummary()->text();
        QVERIFY2(summary.contains(QStringLiteral("cast to bfloat16")), qPrintable(summary));
        QVERIFY2(summary.contains(QStringLiteral("MLP inferred from the weight shapes (not exact)")), qPrintable(summary));
        QVERIFY2(summary.contains(QStringLiteral("assumed: ")), qPrintable(summary));
    }

    // Run: one at a time, each verified by reading it back; nothing else left in the folder.
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QCOMPARE(statusOf(view, 0), Status::Running);
    QVERIFY(view.isRunning());
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, kWait);
    QCOMPARE(finished.count(), 2);
    for (int r = 0; r < 2; ++r) {
        QVERIFY2(statusOf(view, r) == Status::Done, qPrintable(resultOf(view, r)));
        QVERIFY2(resultOf(view, r).startsWith(QStringLiteral("verified (")), qPrintable(resultOf(view, r)));
        QCOMPARE(view.queueModel()->index(r, 0).data(ConversionQueueModel::ProgressRole).toDouble(), 1.0);
    }
    QCOMPARE(resultOf(view, 0), QStringLiteral("verified (16 tensors read back)"));
    QCOMPARE(resultOf(view, 1), QStringLiteral("verified (4 tensors read back)"));
    QStringList written = filesIn(out.path());
    written.sort();
    QCOMPARE(written, QStringList({QStringLiteral("predict_cnn_torchscript.pt"),
                                   QStringLiteral("predict_package_torchscript_bf16.pt")}));

    // PyTorch runs them: the CNN computes what the pickled original computes; the package holds
    // torch's own .to(bfloat16) of its weights.
    QString log;
    QVERIFY2(scriptJudgedByTorch({cnnOut, cnn, QStringLiteral("--input-shape"), QStringLiteral("2,3,12,12")}, &log),
             qPrintable(log));
    QVERIFY2(scriptJudgedByTorch({packageOut, package, QStringLiteral("--dtype"), QStringLiteral("bfloat16"),
                                  QStringLiteral("--input-shape"), QStringLiteral("4,10")},
                                 &log),
             qPrintable(log));

    // Open asks the application to open the output.
    view.selectRow(0);
    QSignalSpy open(&view, &ConversionView::openRequested);
    view.openSelected();
    QCOMPARE(open.count(), 1);
    QCOMPARE(open.first().first().toString(), cnnOut);

    // Back to a state dict: the fields that target uses come back.
    target->setCurrentIndex(target->findData(static_cast<int>(PaneTarget::StateDict)));
    QCOMPARE(enabledFields(view), QStringList({"sidecar", "keepDevice", "dropOptimizer"}));
}

void TestConversionView::torchScriptWithoutArchitectureIsClearError()
{
    // A CNN's weights alone: no architecture to script. The row says so (and what to do); the
    // layers typed into the Architecture field make a module PyTorch runs as the original CNN.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.show();
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("predict_cnn_state_dict.pth"));
    QVERIFY(dropFiles(view.dropTarget(PaneTarget::TorchScript), {input}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Invalid, kWait);
    const QString why = planOf(view, 0);
    QVERIFY2(why.contains(QStringLiteral("does not say its architecture")), qPrintable(why));
    // In this panel's words: the fields to fill, not the command line's --arch and --arch-spec.
    QVERIFY2(why.contains(QStringLiteral("give a TorchScript file of the model (the Architecture file field) or the "
                                         "layers in the Architecture field")) &&
                 !why.contains(QLatin1String("--arch")),
             qPrintable(why));
    QCOMPARE(view.queueModel()->index(0, ConversionQueueModel::StatusColumn).data().toString(),
             ConversionQueueModel::statusText(Status::Invalid));
    QCOMPARE(view.queueModel()->index(0, ConversionQueueModel::StatusColumn).data(Qt::ToolTipRole).toString(), why);
    QVERIFY2(view.planSummary()->text().contains(why.toHtmlEscaped()), qPrintable(view.planSummary()->text()));
    QCOMPARE(enabledFields(view), QStringList({"architecture", "architectureScript", "activation"}));
    // Nothing to run.
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QCOMPARE(done.count(), 1);
    QCOMPARE(filesIn(out.path()), QStringList());

    typeInto(field(view, "architecture"), kCnnSpec);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    QVERIFY2(view.planSummary()->text().contains(QStringLiteral("architecture: layers written by hand (not exact)")),
             qPrintable(view.planSummary()->text()));
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Done, qPrintable(resultOf(view, 0)));
    const QString written = QDir(out.path()).filePath(QStringLiteral("predict_cnn_state_dict_torchscript.pt"));
    QCOMPARE(filesIn(out.path()), QStringList{QFileInfo(written).fileName()});
    QString log;
    QVERIFY2(scriptJudgedByTorch({written, test::fixturePath(QStringLiteral("predict_cnn.pth")),
                                  QStringLiteral("--input-shape"), QStringLiteral("2,3,12,12")},
                                 &log),
             qPrintable(log));
}

void TestConversionView::torchScriptCancelLeavesNoFile()
{
    // A cancel is heard before the module is written, even one that comes only once the module is
    // built: nothing of it is left; run again, it is.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    typeInto(field(view, "outDir"), out.path());
    view.addFiles({test::fixturePath(QStringLiteral("predict_cnn.pth"))}, PaneTarget::TorchScript);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    WorkerGate gate(view);
    view.runQueue();
    QCOMPARE(statusOf(view, 0), Status::Running);
    // Building the module reports no fraction: the row's progress is a busy bar, not 0%.
    QVERIFY(view.queueModel()->index(0, 0).data(ConversionQueueModel::ProgressRole).toDouble() < 0);
    QVERIFY(view.queueModel()->index(0, ConversionQueueModel::ProgressColumn).data().toString().isEmpty());
    // The module is built and about to be written: cancel there (the latest point it is heard).
    QVERIFY(gate.reached());
    view.cancel();
    gate.open();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Cancelled);
    QCOMPARE(resultOf(view, 0), QStringLiteral("cancelled; nothing was written"));
    QCOMPARE(filesIn(out.path()), QStringList());
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, kWait);
    QCOMPARE(statusOf(view, 0), Status::Done);
    QCOMPARE(filesIn(out.path()), QStringList{QStringLiteral("predict_cnn_torchscript.pt")});
}

void TestConversionView::torchScriptWithoutLibTorchSaysSo()
{
    // Without the compute module the TorchScript card says so as soon as the pane is shown, and a
    // file queued for it says why it cannot be written; the other targets work as before.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    const QString reason = QStringLiteral("cannot load the compute module (LibTorch): /nowhere/libckpt_compute.so: not found");
    view.setComputeProbe([reason] { throw std::runtime_error(reason.toStdString()); });
    ConversionDropTarget *card = view.dropTarget(PaneTarget::TorchScript);
    QVERIFY(card->unavailableReason().isEmpty());
    view.show();
    QTRY_COMPARE_WITH_TIMEOUT(card->unavailableReason(), reason, kWait);
    QVERIFY2(card->description().contains(QStringLiteral("unavailable")), qPrintable(card->description()));
    QVERIFY2(card->toolTip().contains(reason), qPrintable(card->toolTip()));
    auto *target = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("target")));
    const int index = target->findData(static_cast<int>(PaneTarget::TorchScript));
    QVERIFY2(target->itemText(index).contains(QStringLiteral("needs LibTorch")), qPrintable(target->itemText(index)));
    QVERIFY(target->itemData(index, Qt::ToolTipRole).toString().contains(reason));
    // The state-dict card is untouched.
    QVERIFY(view.dropTarget(PaneTarget::StateDict)->unavailableReason().isEmpty());

    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("predict_cnn.pth"));
    QVERIFY(dropFiles(card, {input}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Invalid, kWait);
    QVERIFY2(planOf(view, 0).contains(QStringLiteral("needs the compute module (LibTorch)")), qPrintable(planOf(view, 0)));
    QVERIFY2(planOf(view, 0).contains(reason), qPrintable(planOf(view, 0)));
    QVERIFY(dropFiles(view.dropTarget(PaneTarget::StateDict), {input}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 1), Status::Ready, kWait);
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, kWait);
    QCOMPARE(statusOf(view, 0), Status::Invalid);
    QCOMPARE(statusOf(view, 1), Status::Done);
    QCOMPARE(filesIn(out.path()), QStringList{QStringLiteral("predict_cnn_state_dict.pth")});

    // Once the module loads, the card is available again.
    view.setComputeProbe([] {});
    view.selectRow(0);
    view.activateTarget(PaneTarget::TorchScript);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QVERIFY(card->unavailableReason().isEmpty());
    QCOMPARE(target->itemText(index), QStringLiteral("TorchScript"));
}

void TestConversionView::torchScriptArchitectureFromFile()
{
    // A state dict whose forward no list of layers describes (two branches multiplied, a skip):
    // alone it has no architecture, and its row says what to give. A TorchScript file of the same
    // model with other weights in the Architecture file field: planned as `ckpt convert --arch`
    // plans it, exactly; the output holds the state dict's weights bit for bit and computes what
    // the scripted original computes, as torch.jit.load runs them.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    QAbstractItemModelTester queueTester(view.queueModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester planTester(view.planModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    view.show();
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("gated_state_dict.pth"));
    const QString arch = test::fixturePath(QStringLiteral("gated_arch.pt"));
    QVERIFY(dropFiles(view.dropTarget(PaneTarget::TorchScript), {input}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Invalid, kWait);
    const QString why = planOf(view, 0);
    QVERIFY2(why.contains(QStringLiteral("does not say its architecture")) &&
                 why.contains(QStringLiteral("a TorchScript file of the model (the Architecture file field)")),
             qPrintable(why));
    QLineEdit *script = field(view, "architectureScript");
    QVERIFY(script && script->isEnabled());
    auto *browse = view.findChild<QToolButton *>(QStringLiteral("browseArchitectureScript"));
    QVERIFY(browse && browse->isEnabled());

    typeInto(script, arch);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    const QString written = QDir(out.path()).filePath(QStringLiteral("gated_state_dict_torchscript.pt"));
    const auto doc = test::readFixture(QStringLiteral("gated_state_dict.pth"));
    const ScriptExport want = planScriptExport(*doc, written.toStdString(), ConvertOptions(),
                                               ArchitectureRequest().script(arch.toStdString()));
    QCOMPARE(want.architecture.source, Architecture::Source::ScriptArchitecture);
    QVERIFY(view.planModel()->plan());
    QCOMPARE(QString::fromStdString(view.planModel()->plan()->output), written);
    QCOMPARE(view.planModel()->entries(ConversionPlanModel::Change::Kept), qt(want.plan.kept));
    QVERIFY(!want.plan.kept.empty());
    const QString summary = view.planSummary()->text();
    QVERIFY2(summary.contains(QStringLiteral("architecture: weights loaded into a TorchScript file (exact)")),
             qPrintable(summary));
    QVERIFY2(!summary.contains(QStringLiteral("assumed:")), qPrintable(summary));
    QCOMPARE(filesIn(out.path()), QStringList());  // planning wrote nothing

    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Done, qPrintable(resultOf(view, 0)));
    QCOMPARE(resultOf(view, 0), QStringLiteral("verified (%1 tensors read back)").arg(doc->stateDict.size()));
    QCOMPARE(filesIn(out.path()), QStringList{QFileInfo(written).fileName()});
    QString log;
    QVERIFY2(scriptJudgedByTorch({written, test::fixturePath(QStringLiteral("gated_scripted.pt")),
                                  QStringLiteral("--weights"), input, QStringLiteral("--arch-file"), arch,
                                  QStringLiteral("--input-shape"), QStringLiteral("4,6")},
                                 &log),
             qPrintable(log));
}

namespace {
// What `ckpt convert --to torchscript --arch FILE` says of FILE, as its code says it: the plan,
// then building the module (planScriptExport, executeScriptExport); empty when it converts.
QString commandLineError(const QString &input, const QString &arch, const QString &output)
{
    try {
        const Document doc = readDocument(input.toStdString());
        const ScriptExport e = planScriptExport(doc, output.toStdString(), ConvertOptions(),
                                                ArchitectureRequest().script(arch.toStdString()));
        executeScriptExport(e, WriteOptions().protect(arch.toStdString()));
    } catch (const std::exception &e) {
        return panelWording(e.what(), PaneTarget::TorchScript);
    }
    return {};
}
} // namespace

void TestConversionView::torchScriptArchitectureFileErrors_data()
{
    QTest::addColumn<QString>("input");
    QTest::addColumn<QString>("arch");  // a fixture, or a name in a folder that does not exist
    QTest::addColumn<QStringList>("says");
    QTest::newRow("missing file") << "gated_state_dict.pth" << "nowhere/gated_scripted.pt"
                                  << QStringList{QStringLiteral("nowhere/gated_scripted.pt: cannot be opened: "
                                                                "No such file or directory")};
    QTest::newRow("a state dict, not TorchScript") << "gated_state_dict.pth" << "gated_state_dict.pth"
                                                    << QStringList{QStringLiteral("gated_state_dict.pth"),
                                                                   QStringLiteral("cannot load this TorchScript file")};
    QTest::newRow("not a zip") << "gated_state_dict.pth" << "not_a_checkpoint.pth"
                               << QStringList{QStringLiteral("not_a_checkpoint.pth"),
                                              QStringLiteral("cannot load this TorchScript file")};
    QTest::newRow("another model") << "gated_state_dict.pth" << "predict_arch.pt"
                                   << QStringList{QStringLiteral("the weights do not fit the architecture"),
                                                  QStringLiteral("predict_arch.pt"),
                                                  QStringLiteral("missing keys: fc1.weight"),
                                                  QStringLiteral("unexpected keys: value.weight")};
    QTest::newRow("other widths") << "predict_state_dict.pth" << "predict_arch_wide.pt"
                                  << QStringList{QStringLiteral("the weights do not fit the architecture"),
                                                 QStringLiteral("predict_arch_wide.pt"),
                                                 QStringLiteral("shape mismatches: fc1.weight [50, 10] vs [40, 10] in "
                                                                "the architecture")};
}

void TestConversionView::torchScriptArchitectureFileErrors()
{
    // A TorchScript file that is missing, is not TorchScript, or does not take the weights: the
    // row says so when planned, in the words `ckpt convert --arch` uses, and nothing is written.
    QFETCH(QString, input);
    QFETCH(QString, arch);
    QFETCH(QStringList, says);
    QTemporaryDir out;
    QVERIFY(out.isValid());
    const QString archPath = arch.startsWith(QLatin1String("nowhere/")) ? out.filePath(arch) : test::fixturePath(arch);
    ConversionView view;
    view.show();
    typeInto(field(view, "outDir"), out.path());
    view.addFiles({test::fixturePath(input)}, PaneTarget::TorchScript);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    typeInto(field(view, "architectureScript"), archPath);
    QCOMPARE(statusOf(view, 0), Status::Planning);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QCOMPARE(statusOf(view, 0), Status::Invalid);
    const QString why = planOf(view, 0);
    for (const QString &s : std::as_const(says))
        QVERIFY2(why.contains(s), qPrintable(why));
    const QString cli = commandLineError(test::fixturePath(input), archPath,
                                         QDir(out.path()).filePath(QStringLiteral("cli_torchscript.pt")));
    QCOMPARE(why, cli);
    QVERIFY2(view.planSummary()->text().contains(why.toHtmlEscaped()), qPrintable(view.planSummary()->text()));
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QCOMPARE(done.count(), 1);
    QCOMPARE(statusOf(view, 0), Status::Invalid);
    QCOMPARE(filesIn(out.path()), QStringList());
}

void TestConversionView::torchScriptArchitectureFileOrLayersNotBoth()
{
    // Layers in the Architecture field and a TorchScript file both given: refused, as the command
    // line refuses --arch with --arch-spec; either one alone is planned.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.show();
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("predict_state_dict.pth"));
    const QString arch = test::fixturePath(QStringLiteral("predict_arch.pt"));
    const QString layers =
        QStringLiteral(R"([{"type": "Linear", "name": "fc1"}, {"type": "ReLU"}, {"type": "Linear", "name": "fc2"}])");
    view.addFiles({input}, PaneTarget::TorchScript);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    typeInto(field(view, "architecture"), layers);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QVERIFY2(view.planSummary()->text().contains(QStringLiteral("architecture: layers written by hand")),
             qPrintable(view.planSummary()->text()));
    typeInto(field(view, "architectureScript"), arch);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QCOMPARE(statusOf(view, 0), Status::Invalid);
    QString engine;
    try {
        resolveArchitecture(*test::readFixture(QStringLiteral("predict_state_dict.pth")),
                            ArchitectureRequest().script(arch.toStdString()).layers(layers.toStdString()));
    } catch (const std::exception &e) {
        engine = QString::fromUtf8(e.what());
    }
    QVERIFY2(engine.contains(QStringLiteral("not both")), qPrintable(engine));
    QCOMPARE(planOf(view, 0), panelWording(engine.toStdString(), PaneTarget::TorchScript));
    QVERIFY2(planOf(view, 0).contains(QStringLiteral("the Architecture file field")) &&
                 planOf(view, 0).contains(QStringLiteral("the Architecture field, not both")),
             qPrintable(planOf(view, 0)));
    typeInto(field(view, "architecture"), QString());
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    const QString summary = view.planSummary()->text();
    QVERIFY2(summary.contains(QStringLiteral("architecture: weights loaded into a TorchScript file (exact)")),
             qPrintable(summary));
}

void TestConversionView::architectureFileIsForTorchScriptOnly()
{
    // Only the TorchScript target takes a TorchScript file as the architecture: for the others
    // the field, its label and its browse button are disabled, saying why, and a path typed
    // for TorchScript is not given to them (a full model would refuse it); it is kept, and used
    // again when the file goes back to TorchScript.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.show();
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("predict_state_dict.pth"));
    const QString arch = test::fixturePath(QStringLiteral("predict_arch.pt"));
    view.addFiles({input}, PaneTarget::TorchScript);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QLineEdit *script = field(view, "architectureScript");
    auto *browse = view.findChild<QToolButton *>(QStringLiteral("browseArchitectureScript"));
    QVERIFY(script && browse);
    const QString usedTip = script->toolTip();
    const QString browseTip = browse->parentWidget()->toolTip();
    QVERIFY2(browseTip.contains(QStringLiteral("Choose a TorchScript file")), qPrintable(browseTip));
    QVERIFY2(usedTip.contains(QStringLiteral("TorchScript file of the same model")), qPrintable(usedTip));
    typeInto(script, arch);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    QVERIFY2(view.planSummary()->text().contains(QStringLiteral("weights loaded into a TorchScript file")),
             qPrintable(view.planSummary()->text()));

    // The label beside the field, found as a person finds it.
    auto labelOf = [&view](QWidget *w) -> QWidget * {
        for (auto *form : view.findChildren<QFormLayout *>())
            for (QWidget *row = w; row; row = row->parentWidget())
                if (QWidget *label = form->labelForField(row))
                    return label;
        return nullptr;
    };
    QWidget *label = labelOf(script);
    QVERIFY(label);
    QCOMPARE(qobject_cast<QLabel *>(label)->text(), QStringLiteral("Architecture file:"));
    QVERIFY(label->isEnabled());

    auto *target = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("target")));
    for (PaneTarget t : {PaneTarget::StateDict, PaneTarget::Checkpoint, PaneTarget::Inference, PaneTarget::FullModel,
                         PaneTarget::Safetensors}) {
        target->setCurrentIndex(target->findData(static_cast<int>(t)));
        const QString name = convertTargetLabel(t);
        QVERIFY2(!script->isEnabled(), qPrintable(name));
        QVERIFY2(!browse->isEnabled(), qPrintable(name));
        QVERIFY2(!label->isEnabled(), qPrintable(name));
        QCOMPARE(script->text(), arch);  // kept for when the target takes it again
        const QString tip = script->toolTip();
        QVERIFY2(tip != usedTip && tip.contains(QStringLiteral("TorchScript")), qPrintable(tip));
        QCOMPARE(browse->parentWidget()->toolTip(), tip);  // the button's row says why too
        if (t == PaneTarget::FullModel)
            QVERIFY2(tip.contains(QStringLiteral("give its layers in the Architecture field")), qPrintable(tip));
        else
            QVERIFY2(tip.contains(QStringLiteral("Not written by the %1 target").arg(name)), qPrintable(tip));
        QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    }
    // A full model of these weights: the chain of Linear layers they imply, as planConversion
    // plans it without the TorchScript file (which it would refuse).
    target->setCurrentIndex(target->findData(static_cast<int>(PaneTarget::FullModel)));
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    {
        const auto doc = test::readFixture(QStringLiteral("predict_state_dict.pth"));
        const std::string output = view.planModel()->plan()->output;
        const ConversionPlan want = planConversion(*doc, output, ConvertOptions().target(ConvertTarget::FullModel));
        QCOMPARE(view.planModel()->entries(ConversionPlanModel::Change::Kept), qt(want.kept));
        QStringList warnings;
        for (const auto &w : want.warnings)
            warnings << panelWording(w);
        QCOMPARE(view.planModel()->entries(ConversionPlanModel::Change::Warning), warnings);
        bool refused = false;
        try {
            planConversion(*doc, output,
                           ConvertOptions().target(ConvertTarget::FullModel).arch(
                               ArchitectureRequest().script(arch.toStdString())));
        } catch (const FormatError &) {
            refused = true;
        }
        QVERIFY(refused);  // what the disabled field keeps from it
    }

    target->setCurrentIndex(target->findData(static_cast<int>(PaneTarget::TorchScript)));
    QVERIFY(script->isEnabled() && browse->isEnabled() && label->isEnabled());
    QCOMPARE(script->toolTip(), usedTip);
    QCOMPARE(browse->parentWidget()->toolTip(), browseTip);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    QVERIFY2(view.planSummary()->text().contains(QStringLiteral("weights loaded into a TorchScript file (exact)")),
             qPrintable(view.planSummary()->text()));
}

void TestConversionView::architectureFileLoadedOncePerState()
{
    // Planning with a TorchScript architecture file loads it with the weights once; replans for
    // settings that leave the file and the weights as they were reuse what it found. A file
    // touched or replaced on disk is loaded again, and what the new one says is what the row says.
    QTemporaryDir out, other, archDir;
    QVERIFY(out.isValid() && other.isValid() && archDir.isValid());
    const QString arch = archDir.filePath(QStringLiteral("gated_arch.pt"));
    QVERIFY(QFile::copy(test::fixturePath(QStringLiteral("gated_arch.pt")), arch));
    ConversionView view;
    view.show();
    typeInto(field(view, "outDir"), out.path());
    view.addFiles({test::fixturePath(QStringLiteral("gated_state_dict.pth"))}, PaneTarget::TorchScript);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QCOMPARE(view.architectureLoads(), 0);
    typeInto(field(view, "architectureScript"), arch);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    QCOMPARE(view.architectureLoads(), 1);
    const QString planned = planOf(view, 0);

    auto *dtype = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("dtype")));
    QVERIFY(dtype && dtype->isEnabled());
    auto replanWith = [&](auto change) {
        change();
        QCOMPARE(statusOf(view, 0), Status::Planning);
        QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    };
    replanWith([&] { dtype->setCurrentIndex(dtype->findData(QStringLiteral("float16"))); });
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    replanWith([&] { typeInto(field(view, "outDir"), other.path()); });
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    QCOMPARE(view.architectureLoads(), 1);  // the same file, the same weights: not loaded again

    // Touched: another modification time, the same bytes: loaded again.
    {
        QFile f(arch);
        QVERIFY(f.open(QIODevice::ReadWrite));
        QVERIFY(f.setFileTime(QFileInfo(arch).lastModified().addSecs(60), QFileDevice::FileModificationTime));
    }
    replanWith([&] { dtype->setCurrentIndex(0); });
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    QCOMPARE(view.architectureLoads(), 2);
    QCOMPARE(planOf(view, 0), planned);

    // Replaced by another model's file: loaded again, and the row says these weights do not fit it.
    QVERIFY(QFile::remove(arch));
    QVERIFY(QFile::copy(test::fixturePath(QStringLiteral("predict_arch.pt")), arch));
    replanWith([&] { typeInto(field(view, "outDir"), out.path()); });
    QCOMPARE(statusOf(view, 0), Status::Invalid);
    QVERIFY2(planOf(view, 0).contains(QStringLiteral("the weights do not fit the architecture")), qPrintable(planOf(view, 0)));
    QCOMPARE(view.architectureLoads(), 3);
    const QString refused = planOf(view, 0);
    replanWith([&] { dtype->setCurrentIndex(dtype->findData(QStringLiteral("float16"))); });
    QCOMPARE(planOf(view, 0), refused);  // what that file said, without loading it again
    QCOMPARE(view.architectureLoads(), 3);
}

void TestConversionView::architectureFileIsNeverWrittenOver()
{
    // The TorchScript file given as the architecture where the output would go: refused on the
    // row, as `ckpt convert` refuses to write over one of its inputs, and left as it was.
    QTemporaryDir out;
    QVERIFY(out.isValid());
    const QString arch = QDir(out.path()).filePath(QStringLiteral("gated_state_dict_torchscript.pt"));
    QVERIFY(QFile::copy(test::fixturePath(QStringLiteral("gated_arch.pt")), arch));
    QFile original(arch);
    QVERIFY(original.open(QIODevice::ReadOnly));
    const QByteArray bytes = original.readAll();
    original.close();
    ConversionView view;
    view.setOverwritePolicy([](const QString &, const QString &) { return true; });
    view.show();
    typeInto(field(view, "outDir"), out.path());
    view.addFiles({test::fixturePath(QStringLiteral("gated_state_dict.pth"))}, PaneTarget::TorchScript);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    typeInto(field(view, "architectureScript"), arch);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QCOMPARE(statusOf(view, 0), Status::Invalid);
    QCOMPARE(planOf(view, 0), QStringLiteral("%1: is an input file; it is never overwritten").arg(arch));
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QCOMPARE(done.count(), 1);
    QCOMPARE(filesIn(out.path()), QStringList{QFileInfo(arch).fileName()});
    QVERIFY(original.open(QIODevice::ReadOnly));
    QCOMPARE(original.readAll(), bytes);
}

// In a 1024x700 window (the pane about 1024x640 of it), the queue shows five files at least, and
// each column that says what a file becomes (file, target, status, plan, verification, output) is
// in view side by side, the file names and verifications whole.
void TestConversionView::queueUsableAt1024x700()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.resize(1024, 640);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    typeInto(field(view, "outDir"), out.path());
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::StateDict),
                      {test::fixturePath(QStringLiteral("state_dict.pth")),
                       test::fixturePath(QStringLiteral("training_checkpoint.pth"))}));
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::Inference),
                      {test::fixturePath(QStringLiteral("predict_cnn_package.pth")),
                       test::fixturePath(QStringLiteral("inference_package.pth"))}));
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::Safetensors),
                      {test::fixturePath(QStringLiteral("bn_sgd_checkpoint.pth")),
                       test::fixturePath(QStringLiteral("nan_inf.pth"))}));
    const int rows = view.queueModel()->rowCount();
    QCOMPARE(rows, 6);
    for (int r = 0; r < rows; ++r)
        QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, r) == Status::Ready || statusOf(view, r) == Status::Invalid, kWait);
    QSignalSpy done(&view, &ConversionView::queueFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, kWait);
    QTest::qWait(50);

    auto *queue = view.findChild<QTableView *>(QStringLiteral("queue"));
    QVERIFY(queue);
    const int rowHeight = queue->rowHeight(0);
    QVERIFY2(queue->viewport()->height() >= 5 * rowHeight,
             qPrintable(QStringLiteral("%1 px for rows of %2 px").arg(queue->viewport()->height()).arg(rowHeight)));
    QVERIFY(queue->isColumnHidden(ConversionQueueModel::ProgressColumn));  // the bar is in the status column
    const QFontMetrics fm = queue->fontMetrics();
    for (int c : {ConversionQueueModel::FileColumn, ConversionQueueModel::TargetColumn, ConversionQueueModel::StatusColumn,
                  ConversionQueueModel::PlanColumn, ConversionQueueModel::ResultColumn, ConversionQueueModel::OutputColumn}) {
        const int right = queue->columnViewportPosition(c) + queue->columnWidth(c);
        QVERIFY2(queue->columnViewportPosition(c) >= 0 && right <= queue->viewport()->width(),
                 qPrintable(QStringLiteral("column %1 ends at %2 of %3").arg(c).arg(right).arg(queue->viewport()->width())));
    }
    // The plan's count of tensors is read whole ("will write 16 tensors"), the rest as room allows.
    QVERIFY(queue->columnWidth(ConversionQueueModel::PlanColumn) >= fm.horizontalAdvance(QStringLiteral("will write 16 tensors")) + 8);
    for (int r = 0; r < rows; ++r)
        for (int c : {ConversionQueueModel::FileColumn, ConversionQueueModel::TargetColumn, ConversionQueueModel::StatusColumn,
                      ConversionQueueModel::ResultColumn}) {
            const QString text = view.queueModel()->index(r, c).data().toString();
            QVERIFY2(fm.horizontalAdvance(text) + 8 <= queue->columnWidth(c),
                     qPrintable(QStringLiteral("'%1' is cut in a column of %2 px").arg(text).arg(queue->columnWidth(c))));
        }
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/conversion-1024.png"));
}

// A PEFT LoRA adapter given in the "Merge LoRA adapter" field is merged into the weights as
// `ckpt convert --merge-lora` merges it; PyTorch, following PEFT's merge, judges the output. Not
// for TorchScript (the field is disabled there, as the command line refuses it).
void TestConversionView::loraAdapterMergedAsPeftDoes()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QString log;
    QVERIFY2(pythonCheck("check_lora_merge.py", {QStringLiteral("make"), dir.path()}, &log), qPrintable(log));
    const QString out = QDir(dir.path()).filePath(QStringLiteral("out"));
    QVERIFY(QDir().mkpath(out));
    ConversionView view;
    view.resize(1280, 820);
    view.show();
    typeInto(field(view, "outDir"), out);
    view.addFiles({QDir(dir.path()).filePath(QStringLiteral("base.pth"))}, PaneTarget::StateDict);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QVERIFY(field(view, "loraAdapter")->isEnabled());
    typeInto(field(view, "loraAdapter"), QDir(dir.path()).filePath(QStringLiteral("adapter")));
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    QVERIFY(view.planModel()->plan());
    QCOMPARE(view.planModel()->plan()->lora.merged.size(), std::size_t(3));
    int mergedRows = 0;  // the plan's table says which weights the adapter changes
    for (int r = 0; r < view.planModel()->rowCount(); ++r)
        mergedRows += view.planModel()->index(r, ConversionPlanModel::DetailColumn).data().toString().startsWith(QStringLiteral("LoRA merged"));
    QCOMPARE(mergedRows, 3);
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/conversion-lora.png"));
    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Done, qPrintable(resultOf(view, 0)));
    const QStringList written = filesIn(out);
    QCOMPARE(written.size(), 1);
    QVERIFY2(pythonCheck("check_lora_merge.py",
                         {QStringLiteral("check"), QDir(out).filePath(written.first()), dir.path()}, &log),
             qPrintable(log));
    // TorchScript takes no adapter (the command line refuses --merge-lora there): the field is disabled.
    auto *target = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("target")));
    target->setCurrentIndex(target->findData(static_cast<int>(PaneTarget::TorchScript)));
    QTRY_VERIFY_WITH_TIMEOUT(!field(view, "loraAdapter")->isEnabled(), kWait);
}

// The "Max shard size" field writes the state dict as Hub shards with an index, as `ckpt convert
// --max-shard-size` does: the plan lists the shards, the Output column names the index, and PyTorch
// loads each shard alone and judges them together against the source. A size the engine's parser
// refuses is said on the row in its words, and nothing is written. One file for the other targets.
void TestConversionView::maxShardSizeWritesHubShards()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    ConversionView view;
    view.resize(1280, 820);
    view.show();
    typeInto(field(view, "outDir"), out.path());
    const QString input = test::fixturePath(QStringLiteral("training_checkpoint.pth"));
    view.addFiles({input}, PaneTarget::StateDict);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QVERIFY(field(view, "maxShardSize"));
    QVERIFY(field(view, "maxShardSize")->isEnabled());
    QVERIFY(field(view, "maxShardSize")->placeholderText().startsWith(QStringLiteral("one file")));

    // A size the parser refuses: the row says why in the field's name, and Convert All writes nothing.
    typeInto(field(view, "maxShardSize"), QStringLiteral("1Kb"));
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QCOMPARE(statusOf(view, 0), Status::Invalid);
    QString why;
    try {
        parseShardSize("1Kb");
    } catch (const std::exception &e) {
        why = panelWording(e.what(), PaneTarget::StateDict);
    }
    QVERIFY(why.startsWith(QStringLiteral("Max shard size '1Kb'")));
    QCOMPARE(planOf(view, 0), why);
    view.runQueue();
    QTest::qWait(200);
    QVERIFY2(filesIn(out.path()).isEmpty(), qPrintable(filesIn(out.path()).join(QLatin1Char(' '))));

    typeInto(field(view, "maxShardSize"), QStringLiteral("1KB"));
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 0) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Ready, qPrintable(planOf(view, 0)));
    // The engine's plan for the same options: its shards are the plan table's first rows.
    const auto doc = test::readFixture(QStringLiteral("training_checkpoint.pth"));
    const auto options = ConvertOptions().target(ConvertTarget::StateDict).shardSize(1000);
    const ConversionPlan want =
        planConversion(*doc, defaultOutputPath(input.toStdString(), options, out.path().toStdString()), options);
    QVERIFY(want.shards.size() > 1);
    QStringList shardFiles;
    for (const auto &shard : want.shards)
        shardFiles << QFileInfo(QString::fromStdString(shard.path)).fileName();
    QCOMPARE(view.planModel()->entries(ConversionPlanModel::Change::Shard), shardFiles);
    for (std::size_t k = 0; k < want.shards.size(); ++k)
        QCOMPARE(view.planModel()->index(static_cast<int>(k), ConversionPlanModel::DetailColumn).data().toString(),
                 QStringLiteral("%1, %2")
                     .arg(valuetext::counted(static_cast<qint64>(want.shards[k].names.size()), QStringLiteral("tensor"), QStringLiteral("tensors")),
                          valuetext::bytes(static_cast<qint64>(want.shards[k].bytes))));
    const QString index = QFileInfo(QString::fromStdString(want.indexPath)).fileName();
    QCOMPARE(view.queueModel()->index(0, ConversionQueueModel::OutputColumn).data().toString(), index);
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/conversion-shards.png"));

    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    QVERIFY2(statusOf(view, 0) == Status::Done, qPrintable(resultOf(view, 0)));
    QStringList written = shardFiles;
    written << index;
    written.sort();
    QCOMPARE(filesIn(out.path()), written);
    QCOMPARE(view.queueModel()->index(0, ConversionQueueModel::OutputColumn).data().toString(), index);
    QString log;
    QVERIFY2(judgedByTorch({QDir(out.path()).filePath(index), input, QStringLiteral("--max-shard-bytes"), QStringLiteral("1000")}, &log),
             qPrintable(log));

    // The same file queued again (the field kept for it) plans although its shards are there, and
    // Convert All asks about them (the index first), as about one file; kept, they are as they were.
    QStringList asked;
    view.setOverwritePolicy([&asked](const QString &path, const QString &) { asked << path; return false; });
    view.addFiles({input}, PaneTarget::StateDict);
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 1) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 1) == Status::Ready, qPrintable(planOf(view, 1)));
    QCOMPARE(field(view, "maxShardSize")->text(), QStringLiteral("1KB"));
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, kWait);
    QCOMPARE(statusOf(view, 1), Status::Skipped);
    QCOMPARE(asked, QStringList{QString::fromStdString(want.indexPath)});
    QCOMPARE(filesIn(out.path()), written);

    // That row as one file (the field cleared) replaces the sharded output under its name: the
    // question asks about the set (its first file) and says its files go; answered yes, the folder
    // holds the one file, which torch reads, and the row's notes name each file removed.
    QString question;
    asked.clear();
    view.setOverwritePolicy([&](const QString &path, const QString &q) {
        asked << path;
        question = q;
        return true;
    });
    typeInto(field(view, "maxShardSize"), QString());
    QTRY_VERIFY_WITH_TIMEOUT(statusOf(view, 1) != Status::Planning, kWait);
    QVERIFY2(statusOf(view, 1) == Status::Ready, qPrintable(planOf(view, 1)));
    const QString single = QString::fromStdString(defaultOutputPath(input.toStdString(), ConvertOptions().target(ConvertTarget::StateDict),
                                                                    out.path().toStdString()));
    QCOMPARE(view.queueModel()->index(1, ConversionQueueModel::OutputColumn).data().toString(),
             QFileInfo(single).fileName());
    // The index first: removed first, so that an interruption leaves no index naming shards gone.
    const QStringList superseded = QStringList{index} + shardFiles;
    QCOMPARE(view.planModel()->entries(ConversionPlanModel::Change::Removes), superseded);
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/conversion-replaces-shards.png"));
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 3, kWait);
    QVERIFY2(statusOf(view, 1) == Status::Done, qPrintable(resultOf(view, 1)));
    QCOMPARE(asked, QStringList{QDir(out.path()).filePath(index)});
    QVERIFY2(question.contains(QStringLiteral("previous output under this name is replaced whole: its %1 files")
                                   .arg(written.size())),
             qPrintable(question));
    QCOMPARE(filesIn(out.path()), QStringList{QFileInfo(single).fileName()});
    QStringList removed;
    for (const QString &f : superseded)
        removed << QStringLiteral("removed %1, of the previous output").arg(QDir(out.path()).filePath(f));
    QCOMPARE(view.queueModel()->item(1).notes, removed);
    QVERIFY2(judgedByTorch({single, input}, &log), qPrintable(log));

    // The other targets write one file: the field is disabled there.
    auto *target = qobject_cast<QComboBox *>(view.optionWidget(QStringLiteral("target")));
    target->setCurrentIndex(target->findData(static_cast<int>(PaneTarget::Checkpoint)));
    QTRY_VERIFY_WITH_TIMEOUT(!field(view, "maxShardSize")->isEnabled(), kWait);
    target->setCurrentIndex(target->findData(static_cast<int>(PaneTarget::Safetensors)));
    QTRY_VERIFY_WITH_TIMEOUT(field(view, "maxShardSize")->isEnabled(), kWait);
}

QTEST_MAIN(TestConversionView)
#include "tst_conversionview.moc"
