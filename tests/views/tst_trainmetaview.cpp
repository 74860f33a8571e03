// The Metadata view offscreen on training frameworks' files real torch writes for this test
// (train_meta_inputs.py): Hugging Face's training_args.bin lists the TrainingArguments' fields as
// Python prints them, and DeepSpeed's global_steps is the step At a glance shows.
#include "document.h"
#include "metadataview.h"
#include "pythoninputs.h"
#include "standarditems.h"

#include <QChart>
#include <QChartView>
#include <QJsonArray>
#include <QJsonObject>
#include <QLineSeries>
#include <QMap>
#include <QValueAxis>

#include <cmath>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>

using namespace ckpt;

namespace {

using test::childNamed;
using test::sectionNamed;

QString valueOf(QStandardItem *keyItem) { return keyItem->parent()->child(keyItem->row(), 2)->text(); }

} // namespace

class TestTrainMetaView : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void trainingArgumentsFields();
    void deepSpeedStep();
    void lossListsCharted();

private:
    QTemporaryDir m_dir;
    QJsonObject m_expected;
    std::shared_ptr<const Document> read(const QString &name)
    {
        return std::make_shared<const Document>(readDocument(m_dir.filePath(name).toStdString()));
    }
};

void TestTrainMetaView::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/train_meta_inputs.py"),
                                         m_dir.path(), error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
}

void TestTrainMetaView::trainingArgumentsFields()
{
    MetadataView view;
    view.setDocument(read(QStringLiteral("training_args.bin")));
    QStandardItem *section = sectionNamed(view.model(), MetadataView::metadataTitle());
    QVERIFY(section);
    // The object's class beside the title, its fields as rows.
    QVERIFY(view.model()->item(section->row(), 2)->text().contains(m_expected.value(QStringLiteral("class")).toString()));
    const QJsonObject fields = m_expected.value(QStringLiteral("training_args")).toObject();
    QVERIFY(!fields.isEmpty());
    for (auto it = fields.begin(); it != fields.end(); ++it) {
        QStandardItem *row = childNamed(section, it.key());
        QVERIFY2(row, qPrintable(it.key()));
        QCOMPARE(valueOf(row), it.value().toString());
    }
    QVERIFY(childNamed(section, QStringLiteral("evaluation_strategy")));
}

void TestTrainMetaView::deepSpeedStep()
{
    MetadataView view;
    view.setDocument(read(QStringLiteral("mp_rank_00_model_states.pt")));
    QStandardItem *glance = sectionNamed(view.model(), MetadataView::summaryTitle());
    QVERIFY(glance);
    QStandardItem *step = childNamed(glance, QStringLiteral("Step"));
    QVERIFY(step);
    QCOMPARE(valueOf(step).toInt(), m_expected.value(QStringLiteral("step")).toInt());
}

// A plain script's checkpoint with its losses in lists: charted by position, one line each, the
// values torch.load gives (a NaN epoch left out of its line), keys that name no list of numbers
// (best_loss, loss_names) not charted.
void TestTrainMetaView::lossListsCharted()
{
    MetadataView view;
    view.resize(900, 700);
    view.show();
    view.setDocument(read(QStringLiteral("loss_lists.pth")));
    QVERIFY(view.lossChart()->isVisible());
    const QJsonObject want = m_expected.value(QStringLiteral("loss_lists")).toObject();
    QMap<QString, QLineSeries *> lines;
    for (auto *s : view.lossChart()->chart()->series())
        if (auto *l = qobject_cast<QLineSeries *>(s))
            lines.insert(l->name(), l);
    QCOMPARE(QStringList(lines.keys()), QStringList(want.keys()));
    for (auto it = want.begin(); it != want.end(); ++it) {
        const QJsonArray values = it.value().toArray();
        QLineSeries *line = lines.value(it.key());
        int k = 0;
        for (int i = 0; i < values.size(); ++i) {
            if (values[i].isNull())
                continue;  // the NaN epoch
            QVERIFY2(k < line->count(), qPrintable(it.key()));
            QCOMPARE(line->at(k).x(), double(i + 1));
            QCOMPARE(line->at(k).y(), values[i].toDouble());
            ++k;
        }
        QCOMPARE(line->count(), k);
    }
    // Ticks fall on whole positions.
    auto *x = qobject_cast<QValueAxis *>(view.lossChart()->chart()->axes(Qt::Horizontal).value(0));
    QVERIFY(x);
    QCOMPARE(x->tickType(), QValueAxis::TicksDynamic);
    QCOMPARE(x->tickAnchor(), 1.0);
    QCOMPARE(x->tickInterval(), std::round(x->tickInterval()));
    // A file without such lists has no chart.
    view.setDocument(read(QStringLiteral("mp_rank_00_model_states.pt")));
    QVERIFY(!view.lossChart()->isVisible());
}

QTEST_MAIN(TestTrainMetaView)
#include "tst_trainmetaview.moc"
