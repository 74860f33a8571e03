// The conversion pane after a reviewer's findings, offscreen: an output folder (--out-dir in the
// panel) that does not exist yet is made as `ckpt convert --out-dir` makes it (only the folders
// missing, said on the row) instead of failing; and the queue's plan of a checkpoint target says
// the entries carried beside the model's tensors (optimizer state), not only the tensor count.
#include "conversionqueuemodel.h"
#include "conversionview.h"
#include "convert.h"
#include "dropevents.h"
#include "testdata.h"

#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMimeData>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>

using namespace ckpt;
using Status = ConversionQueueItem::Status;

namespace {

using test::dropFiles;

constexpr int kWait = 60000;

Status statusOf(const ConversionView &v, int row)
{
    return static_cast<Status>(v.queueModel()->index(row, 0).data(ConversionQueueModel::StatusRole).toInt());
}

void typeInto(QLineEdit *edit, const QString &text)
{
    QVERIFY(edit);
    edit->selectAll();
    QTest::keyClick(edit, Qt::Key_Delete);
    QTest::keyClicks(edit, text);
}

QLineEdit *field(const ConversionView &v, const char *name)
{
    return qobject_cast<QLineEdit *>(v.optionWidget(QLatin1String(name)));
}

} // namespace

class TestConversionReview : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void missingOutputFolderIsMade();
    void checkpointPlanSaysWhatIsCarried();
};

void TestConversionReview::missingOutputFolderIsMade()
{
    QTemporaryDir out;
    QVERIFY(out.isValid());
    const QString folder = out.filePath(QStringLiteral("runs/converted"));  // neither exists yet
    ConversionView view;
    view.resize(1200, 800);
    view.show();
    const QString input = test::fixturePath(QStringLiteral("training_checkpoint.pth"));
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::StateDict), {input}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    typeInto(field(view, "outDir"), folder);
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    QVERIFY(!QFileInfo::exists(out.filePath(QStringLiteral("runs"))));  // nothing made before Convert

    QSignalSpy finished(&view, &ConversionView::itemFinished);
    view.runQueue();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kWait);
    const ConversionQueueItem &item = view.queueModel()->item(0);
    QVERIFY2(statusOf(view, 0) == Status::Done, qPrintable(item.result));
    QVERIFY(QFileInfo(item.output).absolutePath() == QDir(folder).absolutePath());
    QVERIFY(QFile::exists(item.output));
    // The row says which folders were made: from the outermost missing one down.
    const QString notes = item.notes.join(QLatin1Char('\n'));
    QVERIFY2(notes.contains(QStringLiteral("made the folders")) && notes.contains(out.filePath(QStringLiteral("runs"))) &&
                 notes.contains(folder),
             qPrintable(notes));
    QTRY_VERIFY_WITH_TIMEOUT(view.planSummary()->text().contains(QStringLiteral("made the folders")), kWait);
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/conversion-review-folder.png"));
}

void TestConversionReview::checkpointPlanSaysWhatIsCarried()
{
    ConversionView view;
    view.resize(1200, 800);
    view.show();
    const QString input = test::fixturePath(QStringLiteral("training_checkpoint.pth"));
    QVERIFY(dropFiles(view.dropTarget(ConvertTarget::Checkpoint), {input}));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(view, 0), Status::Ready, kWait);
    const ConversionQueueItem &item = view.queueModel()->item(0);
    QVERIFY(item.plan);
    // The engine's plan carries the optimizer state beside the model's tensors: the queue says so.
    const auto &carried = item.plan->carried;
    QVERIFY(std::any_of(carried.begin(), carried.end(),
                        [](const std::string &c) { return c.starts_with("optimizer_state_dict"); }));
    const QString plan = view.queueModel()->index(0, ConversionQueueModel::PlanColumn).data().toString();
    QVERIFY2(plan.contains(QStringLiteral("%1 model tensors").arg(item.plan->kept.size())), qPrintable(plan));
    QVERIFY2(plan.contains(QStringLiteral("%1 entries carried").arg(carried.size())), qPrintable(plan));
    const QString summary = view.planSummary()->text();
    QVERIFY2(summary.contains(QStringLiteral("other entries: %1 carried").arg(carried.size())), qPrintable(summary));
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS"))
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/conversion-review-plan.png"));
}

QTEST_MAIN(TestConversionReview)
#include "tst_conversionreview.moc"
