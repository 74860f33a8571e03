// A checkpoint folder in the window: dropped on it or opened by path, it opens as the model it holds
// (a Hugging Face Trainer's checkpoint-500/ that torch writes for this test, folder_inputs.py), and
// the Metadata view lists the folder's parts and the trainer state, with the losses by step charted
// as trainer_state.json logged them.
#include "checkpointfolder.h"
#include "document.h"
#include "documentview.h"
#include "dropevents.h"
#include "isolatedsettings.h"
#include "mainwindow.h"
#include "metadataview.h"
#include "pythoninputs.h"
#include "security.h"
#include "securityview.h"
#include "standarditems.h"
#include "tensortablemodel.h"
#include "valuetext.h"

#include <QAction>
#include <QChart>
#include <QChartView>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineSeries>
#include <QMimeData>
#include <QSettings>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>

using namespace ckpt;

namespace {

using test::childNamed;
using test::dropUrls;
using test::sectionNamed;

QString valueOf(QStandardItem *keyItem) { return keyItem->parent()->child(keyItem->row(), 2)->text(); }
QString roleOf(QStandardItem *keyItem) { return keyItem->parent()->child(keyItem->row(), 1)->text(); }

} // namespace

class TestFolderOpen : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init() { QSettings().clear(); }
    void menuOffersOpenFolder();
    void droppedFolderShowsItsModel();
    void metadataShowsFolderAndTraining();
    void securityViewCoversTheFolder();
    void screenshot();

private:
    QTemporaryDir m_dir;
    QJsonObject m_expected;
    QString folder() const { return m_expected.value(QStringLiteral("folder")).toString(); }
};

void TestFolderOpen::initTestCase()
{
    test::isolateSettings(QStringLiteral("Checkpoint Studio"), QStringLiteral("Checkpoint Studio Folder Test"));
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/app/folder_inputs.py"), m_dir.path(),
                                         error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
}

void TestFolderOpen::menuOffersOpenFolder()
{
    MainWindow w;
    auto *action = w.findChild<QAction *>(QStringLiteral("openFolderAction"));
    QVERIFY(action);
    QVERIFY(action->text().remove(QLatin1Char('&')).startsWith(QStringLiteral("Open Folder")));
}

void TestFolderOpen::droppedFolderShowsItsModel()
{
    MainWindow w;
    w.resize(1100, 750);
    w.show();
    QVERIFY(dropUrls(w, {QUrl::fromLocalFile(folder())}));
    QCOMPARE(w.viewCount(), 1);
    DocumentView *view = w.viewAt(0);
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    QCOMPARE(w.tabs()->tabText(0), QStringLiteral("checkpoint-500"));
    // The model is the safetensors file's, every tensor torch wrote, in its order.
    const QJsonArray names = m_expected.value(QStringLiteral("names")).toArray();
    QCOMPARE(view->tableModel()->rowCount(), names.size());
    QStringList shown;
    for (int r = 0; r < view->tableModel()->rowCount(); ++r)
        shown << view->tableModel()->index(r, TensorTableModel::NameColumn).data().toString();
    for (const auto &n : names)
        QVERIFY2(shown.contains(n.toString()), qPrintable(n.toString()));
    QVERIFY(view->document()->folder);
    QVERIFY(QString::fromStdString(view->document()->folder->modelFile).endsWith(QStringLiteral("model.safetensors")));
    // The header gives the weights file's size, not the folder entry's few KiB.
    auto *details = view->findChild<QLabel *>(QStringLiteral("details"));
    QVERIFY(details);
    const QString weights =
        valuetext::bytes(QFileInfo(QString::fromStdString(view->document()->folder->modelFile)).size());
    QVERIFY2(details->text().contains(QStringLiteral("weights file %1").arg(weights)), qPrintable(details->text()));
    // The same folder with a trailing slash is the same tab.
    w.openFile(folder() + QStringLiteral("/"));
    QCOMPARE(w.viewCount(), 1);
}

void TestFolderOpen::metadataShowsFolderAndTraining()
{
    auto doc = std::make_shared<const Document>(readDocument(folder().toStdString()));
    MetadataView view;
    view.resize(900, 700);
    view.show();
    view.setDocument(doc);
    QStandardItem *section = sectionNamed(view.model(), MetadataView::folderTitle());
    QVERIFY(section);
    QStandardItem *model = childNamed(section, QStringLiteral("model.safetensors"));
    QVERIFY(model);
    QCOMPARE(roleOf(model), QStringLiteral("model weights"));
    // Every file torch wrote into the folder is listed with its role.
    for (const auto &name : m_expected.value(QStringLiteral("parts")).toArray())
        QVERIFY2(childNamed(section, name.toString()), qPrintable(name.toString()));
    QStandardItem *optimizer = childNamed(section, QStringLiteral("optimizer.pt"));
    QVERIFY(valueOf(optimizer).contains(
        QStringLiteral("step %1").arg(m_expected.value(QStringLiteral("optimizer_step")).toInt())));
    QStandardItem *training = sectionNamed(view.model(), MetadataView::trainingTitle());
    QVERIFY(training);
    QVERIFY(valueOf(childNamed(training, QStringLiteral("Step")))
                .startsWith(QString::number(m_expected.value(QStringLiteral("global_step")).toInt())));
    // The chart: training and eval loss at the steps trainer_state.json logged them.
    QVERIFY(view.lossChart()->isVisible());
    QList<QLineSeries *> lines;
    for (auto *s : view.lossChart()->chart()->series())
        if (auto *l = qobject_cast<QLineSeries *>(s); l && s->type() == QAbstractSeries::SeriesTypeLine)
            lines << l;
    QCOMPARE(lines.size(), 2);
    for (const auto &[series, key] : {std::pair{lines[0], "losses"}, std::pair{lines[1], "eval_losses"}}) {
        const QJsonArray points = m_expected.value(QLatin1String(key)).toArray();
        QCOMPARE(series->count(), points.size());
        for (int i = 0; i < points.size(); ++i) {
            QCOMPARE(series->at(i).x(), points[i].toArray()[0].toDouble());
            QCOMPARE(series->at(i).y(), points[i].toArray()[1].toDouble());
        }
    }
    // A file opened by name has no folder: no folder rows, no chart.
    view.setDocument(std::make_shared<const Document>(
        readDocument((folder() + QStringLiteral("/pytorch_model.bin")).toStdString())));
    QVERIFY(!sectionNamed(view.model(), MetadataView::folderTitle()));
    QVERIFY(!view.lossChart()->isVisible());
}

// The Security view of a folder speaks for every pickle in it that Python would load, not only the
// weights: safetensors are clean while training_args.bin would run a command.
void TestFolderOpen::securityViewCoversTheFolder()
{
    const Document clean = readDocument(folder().toStdString());
    const int pickled = m_expected.value(QStringLiteral("pickled_parts")).toArray().size();
    QVERIFY(pickled >= 4);
    SecurityView view;
    view.setReport(std::make_shared<const SecurityReport>(securityReport(clean)), false, &clean);
    QVERIFY2(view.verdict()->text().contains(QStringLiteral("The folder's %1 other pickles name no dangerous global")
                                                 .arg(pickled)),
             qPrintable(view.verdict()->text()));

    const Document dangerous =
        readDocument(m_expected.value(QStringLiteral("dangerous_folder")).toString().toStdString());
    const auto report = std::make_shared<const SecurityReport>(securityReport(dangerous));
    QVERIFY(!report->dangerous);  // the weights themselves are safetensors
    view.setReport(report, false, &dangerous);
    const QString text = view.verdict()->text();
    QVERIFY2(text.contains(QStringLiteral("another file of this folder")) &&
                 text.contains(QStringLiteral("training_args.bin (names posix.system)")),
             qPrintable(text));
    // The weights' own sentence: safetensors' reason once in parentheses, not twice.
    QVERIFY2(text.contains(QStringLiteral("would refuse it (safetensors: no pickle")) && !text.contains(QStringLiteral("((")),
             qPrintable(text));
}

void TestFolderOpen::screenshot()
{
    MainWindow w;
    w.resize(1100, 800);
    w.show();
    DocumentView *view = w.openFile(folder());
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 20000);
    view->showView(DocumentView::MetadataTab);
    QTest::qWait(200);
    QDir().mkpath(QStringLiteral(CKPT_SCREENSHOT_DIR));
    const QString path = QStringLiteral(CKPT_SCREENSHOT_DIR "/folder_metadata.png");
    QVERIFY2(w.grab().save(path), qPrintable(path));
}

QTEST_MAIN(TestFolderOpen)
#include "tst_folderopen.moc"
