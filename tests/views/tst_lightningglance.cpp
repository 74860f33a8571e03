// The Metadata view's At a glance on a Lightning checkpoint real torch writes for this test
// (lightning_glance_inputs.py): what its ModelCheckpoint and EarlyStopping callbacks tracked (the
// monitored metric, the best score, a 0-d tensor shown as its value, the best checkpoint's path and
// the wait count), each as Python prints it.
#include "document.h"
#include "metadataview.h"
#include "pythoninputs.h"
#include "standarditems.h"

#include <QJsonObject>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>

using namespace ckpt;

class TestLightningGlance : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void callbacksAtAGlance();
};

void TestLightningGlance::callbacksAtAGlance()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QString error;
    const QJsonObject want = test::writePythonInputs(
        QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/lightning_glance_inputs.py"), dir.path(), error);
    QVERIFY2(!want.isEmpty(), qPrintable(error));
    MetadataView view;
    view.setDocument(std::make_shared<const Document>(readDocument(dir.filePath("lightning.ckpt").toStdString())));
    QStandardItem *glance = test::sectionNamed(view.model(), MetadataView::summaryTitle());
    QVERIFY(glance);
    for (auto it = want.begin(); it != want.end(); ++it) {
        QStandardItem *row = test::childNamed(glance, it.key());
        QVERIFY2(row, qPrintable(it.key()));
        const QString value = glance->child(row->row(), 2)->text();
        QVERIFY2(value == it.value().toString(), qPrintable(it.key() + ": " + value + " vs " + it.value().toString()));
    }
}

QTEST_MAIN(TestLightningGlance)
#include "tst_lightningglance.moc"
