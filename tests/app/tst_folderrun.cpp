// Folders and runs in the window, on inputs torch 1.13 writes (folder_run_inputs.py):
// - a Trainer checkpoint folder's Optimizer tab shows the AdamW state kept in its optimizer.pt
//   (param groups, per-parameter state by the weights' names, the state tensors' norms torch gives);
// - the optimizer chooser says when the file holds more optimizers than are read;
// - the Metadata view keeps its Key column narrow beside a long convention sentence;
// - a Trainer output_dir (checkpoint-N folders, no checkpoint of its own) lists its checkpoints by
//   step and offers to open one, or the whole run in the Run view;
// - an output_dir that also holds the final model shows that model, and names the run beside it.
#include "checkpointfolder.h"
#include "comparison.h"
#include "document.h"
#include "documentview.h"
#include "isolatedsettings.h"
#include "mainwindow.h"
#include "metadataview.h"
#include "optimizermap.h"
#include "optimizerstatemodel.h"
#include "optimizerview.h"
#include "pythoninputs.h"
#include "seriesview.h"
#include "standarditems.h"

#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSettings>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <cmath>

using namespace ckpt;

class TestFolderRun : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init() { QSettings().clear(); }
    void folderOptimizerIsShown();
    void optimizerChoiceSaysWhenCut();
    void metadataKeyColumnStaysNarrow();
    void runFolderOffersItsCheckpoints();
    void outputDirNamesItsRun();

private:
    QTemporaryDir m_dir;
    QJsonObject m_expected;
    QString input(const char *key) const { return m_expected.value(QLatin1String(key)).toString(); }
    static void shoot(QWidget &w, const QString &name);
};

void TestFolderRun::initTestCase()
{
    test::isolateSettings(QStringLiteral("Checkpoint Studio"), QStringLiteral("Checkpoint Studio Folder Run Test"));
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/app/folder_run_inputs.py"),
                                         m_dir.path(), error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
}

void TestFolderRun::shoot(QWidget &w, const QString &name)
{
    QTest::qWait(200);
    QDir().mkpath(QStringLiteral(CKPT_SCREENSHOT_DIR));
    const QString path = QStringLiteral(CKPT_SCREENSHOT_DIR "/") + name;
    QVERIFY2(w.grab().save(path), qPrintable(path));
}

void TestFolderRun::folderOptimizerIsShown()
{
    MainWindow w;
    w.resize(1200, 800);
    w.show();
    DocumentView *view = w.openFile(input("folder"));
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Loaded, 30000);
    QCOMPARE(view->viewTabs()->tabText(DocumentView::OptimizerTab), QStringLiteral("Optimizer"));
    OptimizerView *ov = view->optimizerView();
    OptimizerStateModel *state = ov->stateModel();
    QVERIFY(state->hasOptimizer());
    QVERIFY2(ov->summary()->text().contains(QStringLiteral("optimizer.pt")), qPrintable(ov->summary()->text()));
    QVERIFY2(ov->summary()->text().contains(QStringLiteral("AdamW")), qPrintable(ov->summary()->text()));
    // Param groups as torch saved them: their sizes and weight decays.
    const QJsonArray sizes = m_expected.value(QStringLiteral("group_sizes")).toArray();
    const QJsonArray decays = m_expected.value(QStringLiteral("weight_decay")).toArray();
    QStandardItemModel *groups = ov->groupsModel();
    QCOMPARE(groups->rowCount(), sizes.size());
    int decayColumn = -1;
    for (int c = 0; c < groups->columnCount(); ++c)
        if (groups->horizontalHeaderItem(c)->text() == QStringLiteral("weight_decay"))
            decayColumn = c;
    QVERIFY(decayColumn >= 0);
    for (int g = 0; g < groups->rowCount(); ++g) {
        QCOMPARE(groups->item(g, 1)->text().toInt(), sizes[g].toInt());
        QCOMPARE(groups->item(g, decayColumn)->text().toDouble(), decays[g].toDouble());
    }
    // Each id named as torch's parameter objects say (the shapes are unique here: certain).
    const QJsonArray names = m_expected.value(QStringLiteral("parameter_names")).toArray();
    QCOMPARE(state->rowCount(), names.size());
    QVERIFY2(state->mappingCertain(), qPrintable(state->mappingNote()));
    for (int r = 0; r < state->rowCount(); ++r) {
        const int id = state->index(r, OptimizerStateModel::IdColumn).data().toInt();
        QCOMPARE(state->index(r, OptimizerStateModel::NameColumn).data().toString(), names[id].toString());
    }
    QCOMPARE(state->parametersWithState(), m_expected.value(QStringLiteral("states")).toInt());
    // The state tensors' norms, read from optimizer.pt in the background, are torch's.
    QTRY_VERIFY_WITH_TIMEOUT(!ov->statisticsRunning(), 30000);
    const QJsonObject norms = m_expected.value(QStringLiteral("state_norms")).toObject();
    int compared = 0;
    for (int r = 0; r < state->rowCount(); ++r)
        for (int k = 0; k < state->stateKeys().size(); ++k) {
            const QString key = state->index(r, OptimizerStateModel::NameColumn).data().toString() +
                                QLatin1Char('/') + state->stateKeys()[k];
            if (!norms.contains(key))
                continue;
            const QVariantMap stats =
                state->index(r, OptimizerStateModel::FirstStateColumn + k).data(OptimizerStateModel::StatisticsRole).toMap();
            QVERIFY2(!stats.isEmpty(), qPrintable(key));
            const double want = norms.value(key).toDouble();
            QVERIFY2(std::abs(stats.value(QStringLiteral("l2")).toDouble() - want) <= 1e-6 * std::max(1.0, want),
                     qPrintable(key));
            ++compared;
        }
    QCOMPARE(compared, norms.size());
    view->showView(DocumentView::OptimizerTab);
    shoot(w, QStringLiteral("folder_optimizer.png"));

    // A file opened by name keeps its own (here: none), and a folder without optimizer.pt adds none.
    const Document alone = readDocument((input("folder") + QStringLiteral("/model.safetensors")).toStdString());
    QVERIFY(!withFolderOptimizer(alone));
}

void TestFolderRun::optimizerChoiceSaysWhenCut()
{
    OptimizerView view;
    view.resize(1000, 600);
    view.show();
    view.setDocument(std::make_shared<const Document>(readDocument(input("many_optimizers").toStdString())));
    QCOMPARE(view.optimizerChoice()->count(), int(kMaxOptimizers));
    QVERIFY(view.optimizerChoiceCut()->isVisible());
    const QString said = view.optimizerChoiceCut()->text();
    QVERIFY2(said.contains(QStringLiteral("more than these %1 optimizers").arg(kMaxOptimizers)) &&
                 said.contains(QStringLiteral("not read")),
             qPrintable(said));
    shoot(view, QStringLiteral("optimizer_choice_cut.png"));
    // Two optimizers: all offered, nothing said.
    view.setDocument(std::make_shared<const Document>(readDocument(input("two_optimizers").toStdString())));
    QCOMPARE(view.optimizerChoice()->count(), 2);
    QVERIFY(!view.optimizerChoiceCut()->isVisible());
}

void TestFolderRun::metadataKeyColumnStaysNarrow()
{
    MetadataView view;
    view.resize(1000, 600);
    view.show();
    view.setDocument(std::make_shared<const Document>(readDocument(input("lora").toStdString())));
    QStandardItem *section = test::sectionNamed(view.model(), QStringLiteral("Conventions recognised"));
    QVERIFY(section);
    QStandardItem *lora = nullptr;
    for (int r = 0; r < section->rowCount(); ++r)
        if (section->child(r, 2)->text().startsWith(QStringLiteral("LoRA adapter")))
            lora = section->child(r, 2);
    QVERIFY2(lora, "the LoRA sentence is in the Value column");
    QVERIFY(lora->text().contains(QStringLiteral("rank %1").arg(m_expected.value(QStringLiteral("lora_rank")).toInt())));
    QCOMPARE(lora->toolTip(), lora->text());
    // The sentence is far wider than the Key column, which stays within its bound: the values start
    // on screen.
    const int keyWidth = view.view()->columnWidth(0);
    QVERIFY2(keyWidth <= 340, qPrintable(QString::number(keyWidth)));
    QVERIFY(view.view()->fontMetrics().horizontalAdvance(lora->text()) > 340);
    QVERIFY(view.view()->header()->sectionViewportPosition(2) < view.view()->viewport()->width() / 2);
    shoot(view, QStringLiteral("metadata_long_convention.png"));
}

void TestFolderRun::runFolderOffersItsCheckpoints()
{
    MainWindow w;
    w.resize(1100, 700);
    w.show();
    DocumentView *view = w.openFile(input("run"));
    QTRY_COMPARE_WITH_TIMEOUT(view->state(), DocumentView::State::Failed, 30000);
    QVERIFY(view->runBox()->isVisible());
    // By step (5, 10, 100), not by the names' text (checkpoint-10 before checkpoint-5), the last chosen.
    const QJsonArray order = m_expected.value(QStringLiteral("run_order")).toArray();
    const QJsonArray steps = m_expected.value(QStringLiteral("run_steps")).toArray();
    QListWidget *list = view->runCheckpoints();
    QCOMPARE(list->count(), order.size());
    for (int i = 0; i < list->count(); ++i) {
        QVERIFY2(list->item(i)->text().startsWith(order[i].toString() + QStringLiteral(" \u2014 step %1").arg(steps[i].toInt())),
                 qPrintable(list->item(i)->text()));
        QCOMPARE(QDir(list->item(i)->data(Qt::UserRole).toString()).dirName(), order[i].toString());
    }
    QCOMPARE(list->currentRow(), list->count() - 1);
    QVERIFY2(view->errorLabel()->text().contains(QStringLiteral("training run")), qPrintable(view->errorLabel()->text()));
    shoot(w, QStringLiteral("run_folder.png"));

    // The whole run in the Run view, in that order.
    const int tabs = w.tabs()->count();
    view->openRunButton()->click();
    QCOMPARE(w.tabs()->count(), tabs + 1);
    auto *series = qobject_cast<SeriesView *>(w.tabs()->currentWidget());
    QVERIFY(series);
    QTRY_VERIFY_WITH_TIMEOUT(!series->isRunning(), 60000);
    QVERIFY(series->series());
    QCOMPARE(int(series->series()->points.size()), order.size());
    for (int i = 0; i < order.size(); ++i)
        QCOMPARE(QFileInfo(QString::fromStdString(series->series()->points[static_cast<std::size_t>(i)].file)).dir().dirName(),
                 order[i].toString());  // each folder's model.safetensors

    // The chosen checkpoint (the last) in a tab of its own.
    view->openCheckpointButton()->click();
    auto *opened = qobject_cast<DocumentView *>(w.tabs()->currentWidget());
    QVERIFY(opened && opened != view);
    QCOMPARE(QDir(opened->path()).dirName(), order.last().toString());
    QTRY_COMPARE_WITH_TIMEOUT(opened->state(), DocumentView::State::Loaded, 30000);
}

void TestFolderRun::outputDirNamesItsRun()
{
    MetadataView view;
    view.resize(1000, 600);
    view.show();
    const QString dir = m_expected.value(QStringLiteral("output_dir")).toString();
    view.setDocument(std::make_shared<const Document>(readDocument(dir.toStdString())));
    QStandardItem *section = test::sectionNamed(view.model(), MetadataView::folderTitle());
    QVERIFY(section);
    QCOMPARE(section->child(0, 0)->text(), QStringLiteral("model.safetensors"));  // the final model is read
    const QJsonArray runs = m_expected.value(QStringLiteral("output_dir_runs")).toArray();
    const QString span = runs.first().toString() + QStringLiteral("/ \u2026 ") + runs.last().toString() + QStringLiteral("/");
    QStandardItem *row = nullptr;
    for (int r = 0; r < section->rowCount(); ++r)
        if (section->child(r, 0)->text() == span)
            row = section->child(r, 0);
    QVERIFY2(row, qPrintable(QStringLiteral("no row %1").arg(span)));
    QCOMPARE(section->child(row->row(), 1)->text(), QStringLiteral("%1 checkpoint folders the run saved").arg(runs.size()));
    QVERIFY(section->child(row->row(), 2)->text().contains(QStringLiteral("ckpt series ") + dir));
}

QTEST_MAIN(TestFolderRun)
#include "tst_folderrun.moc"
