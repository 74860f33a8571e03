// The inspection views beside the tensor table, offscreen: modules, optimizer, metadata and
// security. Figures are PyTorch's (expected.json, written by the fixture generator): the
// optimizer's hyperparameters and state-tensor norms, the metadata entries, the module sums.
#include "document.h"
#include "metadataview.h"
#include "moduletreemodel.h"
#include "moduleview.h"
#include "optimizerstatemodel.h"
#include "optimizerview.h"
#include "security.h"
#include "securityview.h"
#include "standarditems.h"
#include "testdata.h"
#include "valueitems.h"

#include <QAbstractItemModelTester>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <cmath>
#include <functional>

using namespace ckpt;

namespace {

QJsonObject expected(const QString &section) { return test::expectedListing().value(section).toObject(); }

using test::childNamed;
using test::sectionNamed;

QString valueOf(QStandardItem *keyItem)
{
    QStandardItem *parent = keyItem->parent();
    return parent ? parent->child(keyItem->row(), 2)->text() : keyItem->model()->item(keyItem->row(), 2)->text();
}

} // namespace

class TestInspectorViews : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void optimizerMatchesTorch_data();
    void optimizerMatchesTorch();
    void optimizerCancel();
    void noOptimizer();
    void trainingStates();
    void metadataMatchesTorch();
    void metadataSidecar();
    void metadataAtAGlanceSaysWhatItIs();
    void securityDangerousFirst();
    void hugeSharedKeyStaysBounded();
    void manyMetadataEntriesStayBounded();
    void securityCleanFile();
    void securityRefusedRowsSayWhy_data();
    void securityRefusedRowsSayWhy();
    void securityTorchScriptClasses();
    void moduleViewSelectsTensors();
};

void TestInspectorViews::optimizerMatchesTorch_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("type");
    // torch.optim.Adam in each: the param groups' keys say Adam, not AdamW.
    QTest::newRow("adam") << "training_checkpoint.pth" << "<b>Adam</b>";
    QTest::newRow("sgd momentum, buffers interleaved") << "bn_sgd_checkpoint.pth" << "<b>SGD</b>";
    // A frozen layer of the same shape: only the names the optimizer recorded tell which layers it holds.
    QTest::newRow("param_names") << "optimizer_param_names.pth" << "<b>Adam</b>";
    QTest::newRow("state keyed by name") << "optimizer_fqn.pth" << "<b>Adam</b>";
}

void TestInspectorViews::optimizerMatchesTorch()
{
    QFETCH(QString, file);
    QFETCH(QString, type);
    OptimizerView view;
    QAbstractItemModelTester stateTester(view.stateModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester proxyTester(view.stateProxy(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy finished(&view, &OptimizerView::statisticsFinished);
    view.setDocument(test::readFixture(file));
    QVERIFY2(view.summary()->text().contains(type), qPrintable(view.summary()->text()));

    // Per parameter: the names PyTorch's registration order gives, the step, each state tensor's norm.
    QVERIFY(finished.wait(60000) || !finished.isEmpty());
    QCOMPARE(finished.first().first().toBool(), true);
    const QJsonObject state = expected(QStringLiteral("__optimizer_state__")).value(file).toObject();
    QVERIFY2(!state.isEmpty(), "regenerate the fixtures");
    OptimizerStateModel *m = view.stateModel();
    QCOMPARE(m->rowCount(), state.size());
    const QStringList keys = m->stateKeys();
    for (int r = 0; r < m->rowCount(); ++r) {
        const QString name = m->index(r, OptimizerStateModel::NameColumn).data().toString();
        QVERIFY2(state.contains(name), qPrintable(name));
        const QJsonObject torch = state.value(name).toObject();
        QCOMPARE(m->index(r, OptimizerStateModel::StepColumn).data(OptimizerStateModel::SortRole).toDouble(),
                 torch.value(QStringLiteral("step")).toDouble());
        for (int k = 0; k < keys.size(); ++k) {
            const QVariantMap stats =
                m->index(r, OptimizerStateModel::FirstStateColumn + k).data(OptimizerStateModel::StatisticsRole).toMap();
            QVERIFY2(!stats.isEmpty(), qPrintable(name + "/" + keys[k]));
            const double want = torch.value(keys[k]).toDouble();
            QVERIFY2(std::fabs(stats.value(QStringLiteral("l2")).toDouble() - want) <= 1e-6 * std::max(1.0, want),
                     qPrintable(QStringLiteral("%1/%2: %3 vs torch %4").arg(name, keys[k]).arg(stats.value("l2").toDouble()).arg(want)));
        }
        QVERIFY(!m->index(r, 0).data(OptimizerStateModel::MismatchRole).toBool());
    }
    QVERIFY(m->mappingCertain());

    // Param groups: PyTorch's hyperparameters, one column each.
    const QJsonObject listing = test::expectedListing().value(file).toObject();
    const QJsonArray groups = listing.value(QStringLiteral("optimizer")).toObject().value(QStringLiteral("param_groups")).toArray();
    QStandardItemModel *g = view.groupsModel();
    if (!groups.isEmpty()) {
        QCOMPARE(g->rowCount(), groups.size());
        const QJsonObject g0 = groups.first().toObject();
        for (auto it = g0.begin(); it != g0.end(); ++it) {
            if (it.key() == QLatin1String("params")) {
                QCOMPARE(g->item(0, 1)->text().toInt(), it.value().toArray().size());
                continue;
            }
            int col = -1;
            for (int c = 0; c < g->columnCount(); ++c)
                if (g->horizontalHeaderItem(c)->text() == it.key())
                    col = c;
            QVERIFY2(col >= 0, qPrintable(it.key()));
            if (it.value().isDouble())
                QCOMPARE(g->item(0, col)->text().toDouble(), it.value().toDouble());
        }
    } else {
        QVERIFY(g->rowCount() >= 1);
    }
}

void TestInspectorViews::optimizerCancel()
{
    OptimizerView view;
    QSignalSpy finished(&view, &OptimizerView::statisticsFinished);
    view.setDocument(test::readFixture(QStringLiteral("training_checkpoint.pth")));
    QVERIFY(view.statisticsRunning());
    view.cancelStatistics();
    QVERIFY(!view.statisticsRunning());
    QCOMPARE(finished.size(), 1);
    QCOMPARE(finished.first().first().toBool(), false);
    // A new document while nothing runs, then none: no crash, nothing left running.
    view.setDocument(test::readFixture(QStringLiteral("bn_sgd_checkpoint.pth")));
    view.setDocument(nullptr);
    QVERIFY(!view.statisticsRunning());
}

void TestInspectorViews::noOptimizer()
{
    OptimizerView view;
    view.setDocument(test::readFixture(QStringLiteral("state_dict.pth")));
    QVERIFY(view.summary()->text().contains(QStringLiteral("no optimizer")));
    QCOMPARE(view.stateModel()->rowCount(), 0);
    QVERIFY(!view.statisticsRunning());
}

void TestInspectorViews::trainingStates()
{
    OptimizerView view;
    view.setDocument(test::readFixture(QStringLiteral("conv_training_state.pth")));
    QStandardItemModel *t = view.trainingStateModel();
    QStringList kinds;
    for (int r = 0; r < t->rowCount(); ++r)
        kinds << t->item(r, 0)->text() + QLatin1Char('=') + t->item(r, 1)->text();
    QCOMPARE(kinds, (QStringList{"scheduler=LR scheduler", "scaler=GradScaler", "rng_state=RNG"}));
    // The scaler's values as saved.
    QStandardItem *scaler = t->item(1, 0);
    QCOMPARE(valueOf(childNamed(scaler, QStringLiteral("scale"))), QStringLiteral("65536.0"));

    view.setDocument(test::readFixture(QStringLiteral("conv_lightning.ckpt")));
    QCOMPARE(view.trainingStateModel()->rowCount(), 1);
    QCOMPARE(view.trainingStateModel()->item(0, 0)->text(), QStringLiteral("lr_schedulers/0"));
}

void TestInspectorViews::metadataMatchesTorch()
{
    MetadataView view;
    view.setDocument(test::readFixture(QStringLiteral("training_checkpoint.pth")));
    const QJsonObject meta = test::expectedListing().value(QStringLiteral("training_checkpoint.pth")).toObject()
                                 .value(QStringLiteral("metadata")).toObject();
    QVERIFY(!meta.isEmpty());
    QStandardItem *section = sectionNamed(view.model(), MetadataView::metadataTitle());
    QVERIFY(section);
    for (auto it = meta.begin(); it != meta.end(); ++it) {
        QStandardItem *row = childNamed(section, it.key());
        QVERIFY2(row, qPrintable(it.key()));
        if (it.value().isDouble())
            QCOMPARE(valueOf(row).toDouble(), it.value().toDouble());
        if (it.value().isObject())
            QCOMPARE(row->rowCount(), it.value().toObject().size());
    }
    // The weights and the optimizer are not metadata.
    QVERIFY(!childNamed(section, QStringLiteral("model_state_dict")));
    QVERIFY(!childNamed(section, QStringLiteral("optimizer_state_dict")));

    // At a glance: the fields a researcher looks for, from the same values.
    QStandardItem *glance = sectionNamed(view.model(), MetadataView::summaryTitle());
    QVERIFY(glance);
    QCOMPARE(valueOf(childNamed(glance, QStringLiteral("Epoch"))).toInt(), meta.value(QStringLiteral("epoch")).toInt());
    QCOMPARE(valueOf(childNamed(glance, QStringLiteral("Training loss"))).toDouble(), meta.value(QStringLiteral("train_loss")).toDouble());
    QCOMPARE(valueOf(childNamed(glance, QStringLiteral("Validation loss"))).toDouble(), meta.value(QStringLiteral("val_loss")).toDouble());
    QVERIFY(childNamed(glance, QStringLiteral("Model config")));

    view.setDocument(test::readFixture(QStringLiteral("inference_package.pth")));
    glance = sectionNamed(view.model(), MetadataView::summaryTitle());
    QStandardItem *classes = childNamed(glance, QStringLiteral("Class names"));
    QVERIFY(classes);
    QCOMPARE(classes->rowCount(), 2);
    QCOMPARE(valueOf(classes->child(0, 0)), QStringLiteral("'Class A'"));
    QVERIFY(childNamed(glance, QStringLiteral("Input mean")));
}

// A hostile pickle: one key 256 KiB long holding a list of 4096 references to one posix.system
// call. Each row under it once carried the whole path (4096 copies of the key: 2 GiB here, 64 GiB
// for an 8 MiB key), and so did each place the Security view looked. Every text and datum of both
// views stays small whatever the file holds.
void TestInspectorViews::hugeSharedKeyStaysBounded()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    auto le32 = [](QByteArray &b, quint32 n) {
        for (int i = 0; i < 4; ++i)
            b += char((n >> (8 * i)) & 0xff);
    };
    const QByteArray key(256 * 1024, 'k');
    QByteArray p("\x80\x02}", 3);                   // PROTO 2, EMPTY_DICT
    p += 'X';
    le32(p, quint32(key.size()));
    p += key;                                       // the key
    p += "](cposix\nsystem\nX";                     // EMPTY_LIST, MARK, GLOBAL, BINUNICODE 'x'
    le32(p, 1);
    p += "x\x85Rq";                                 // TUPLE1, REDUCE, BINPUT 0
    p += '\0';
    for (int i = 1; i < 4096; ++i)
        p += QByteArray("h\0", 2);                  // BINGET 0
    p += "es.";                                     // APPENDS, SETITEM, STOP
    const QString path = dir.filePath(QStringLiteral("big_key.pkl"));
    {
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(p);
    }
    auto doc = std::make_shared<const Document>(readDocument(path.toStdString()));
    QVERIFY(!doc->globals.empty());
    MetadataView meta;
    meta.setDocument(doc);
    SecurityView security;
    security.setReport(std::make_shared<const SecurityReport>(securityReport(*doc)), false, doc.get());
    qsizetype longest = 0;
    int items = 0;
    std::function<void(const QStandardItem *)> walk = [&](const QStandardItem *item) {
        if (!item)
            return;
        ++items;
        for (int role : {int(Qt::DisplayRole), int(Qt::ToolTipRole), int(Qt::UserRole) + 1, int(Qt::UserRole) + 2})
            longest = std::max(longest, item->data(role).toString().size());
        for (int r = 0; r < item->rowCount(); ++r)
            for (int c = 0; c < item->columnCount(); ++c)
                walk(item->child(r, c));
    };
    for (QStandardItemModel *m : {meta.model(), security.model()})
        for (int r = 0; r < m->rowCount(); ++r)
            for (int c = 0; c < m->columnCount(); ++c)
                walk(m->item(r, c));
    QVERIFY(items > 10);
    QVERIFY2(longest <= 5000, qPrintable(QString::number(longest)));
    // The call is still shown, with its argument.
    bool called = false;
    for (int r = 0; r < security.model()->rowCount(); ++r)
        for (int c = 0; c < security.model()->columnCount(); ++c)
            called = called || security.model()->item(r, c)->text().contains(QLatin1String("posix.system('x')"));
    QVERIFY(called);
}

// A safetensors header of 30,000 `__metadata__` entries and a pickle whose top-level dict holds
// 30,000 numbers (either can hold 262,144 and more): each entry once made a row of three items, a
// few hundred megabytes for the larger, built whether or not the view is looked at. Rows stop at
// the views' budget, in file order, and one last row counts the rest.
void TestInspectorViews::manyMetadataEntriesStayBounded()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    constexpr int kEntries = 30000;
    const auto key = [](int i) { return QStringLiteral("k%1").arg(i, 6, 10, QLatin1Char('0')); };

    QByteArray header = "{\"__metadata__\":{";
    for (int i = 0; i < kEntries; ++i)
        header += (i ? ",\"" : "\"") + key(i).toLatin1() + "\":\"v" + QByteArray::number(i) + "\"";
    header += "},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    while (header.size() % 8)
        header += ' ';
    QByteArray st;
    for (int i = 0; i < 8; ++i)
        st += char((quint64(header.size()) >> (8 * i)) & 0xff);
    st += header;
    st += QByteArray(4, '\0');

    QByteArray p("\x80\x02}(", 4);  // PROTO 2, EMPTY_DICT, MARK
    for (int i = 0; i < kEntries; ++i) {
        const QByteArray k = key(i).toLatin1();
        p += 'X';
        for (int b = 0; b < 4; ++b)
            p += char((quint32(k.size()) >> (8 * b)) & 0xff);
        p += k;
        p += 'J';  // BININT
        for (int b = 0; b < 4; ++b)
            p += char((quint32(i) >> (8 * b)) & 0xff);
    }
    p += "u.";  // SETITEMS, STOP

    struct Case {
        QString file;
        QByteArray bytes;
        QString section;
    };
    const Case cases[] = {{QStringLiteral("many.safetensors"), st, QStringLiteral("Safetensors __metadata__")},
                          {QStringLiteral("many.pkl"), p, MetadataView::metadataTitle()}};
    for (const Case &c : cases) {
        const QString path = dir.filePath(c.file);
        {
            QFile f(path);
            QVERIFY(f.open(QIODevice::WriteOnly));
            QCOMPARE(f.write(c.bytes), c.bytes.size());
        }
        auto doc = std::make_shared<const Document>(readDocument(path.toStdString()));
        MetadataView view;
        view.setDocument(doc);
        QStandardItem *section = sectionNamed(view.model(), c.section);
        QVERIFY2(section, qPrintable(c.file));
        const int rows = section->rowCount();
        QVERIFY2(rows > 1000 && rows <= ValueItemsBudget{}.rows + 1, qPrintable(QStringLiteral("%1: %2 rows").arg(c.file).arg(rows)));
        for (int i : {0, 1, rows / 2, rows - 2})
            QCOMPARE(section->child(i, 0)->text(), key(i));
        QCOMPARE(section->child(rows - 1, 0)->text(), QStringLiteral("\u2026"));
        QCOMPARE(section->child(rows - 1, 2)->text(), QStringLiteral("%L1 more items").arg(kEntries - (rows - 1)));
    }
}

void TestInspectorViews::metadataSidecar()
{
    MetadataView view;
    const QString path = QStringLiteral(CKPT_EXAMPLES_DIR "/simple_nn_inference.pth");
    auto doc = std::make_shared<const Document>(readDocument(path.toStdString()));
    QVERIFY(doc->sidecar);
    view.setDocument(doc);
    QStandardItem *sidecar = sectionNamed(view.model(), MetadataView::sidecarTitle());
    QVERIFY(sidecar);
    QCOMPARE(view.model()->item(sidecar->row(), 2)->text(), QStringLiteral("simple_nn_inference_metadata.json"));
    QCOMPARE(sidecar->rowCount(), static_cast<int>(doc->sidecar->entries().size()));
}

// "At a glance" calls a value best only when its key says so (val_acc is this epoch's accuracy), shows
// arguments, class names and preprocessing inline as Python prints them (as `ckpt meta` does; judged
// by Python's repr of what torch.load returns), and says where each came from in words.
void TestInspectorViews::metadataAtAGlanceSaysWhatItIs()
{
    const QJsonObject section = expected(QStringLiteral("__guiviews__")).value(QStringLiteral("glance")).toObject();
    QVERIFY2(!section.isEmpty(), "regenerate the fixtures");
    const QJsonObject repr = section.value(QStringLiteral("repr")).toObject();
    MetadataView view;
    view.resize(1000, 500);
    view.show();
    view.setDocument(test::readFixture(section.value(QStringLiteral("file")).toString()));
    QStandardItem *glance = sectionNamed(view.model(), MetadataView::summaryTitle());
    QVERIFY(glance);
    QVERIFY(!childNamed(glance, QStringLiteral("Best metric")));
    QStandardItem *metric = childNamed(glance, QStringLiteral("Accuracy"));
    QVERIFY(metric);
    QCOMPARE(glance->child(metric->row(), 1)->text(), QStringLiteral("saved as val_acc"));
    const std::pair<const char *, const char *> inlineValues[] = {
        {"Arguments", "args"}, {"Class names", "class_names"}, {"Preprocessing", "preprocessing"}};
    for (const auto &[label, key] : inlineValues) {
        QStandardItem *row = childNamed(glance, QLatin1String(label));
        QVERIFY2(row, label);
        QCOMPARE(valueOf(row), repr.value(QLatin1String(key)).toString());
        QCOMPARE(glance->child(row->row(), 1)->text(), QStringLiteral("saved as %1").arg(QLatin1String(key)));
    }
    for (int r = 0; r < glance->rowCount(); ++r)
        QVERIFY2(!glance->child(r, 1)->text().startsWith(QLatin1String("key:")), qPrintable(glance->child(r, 1)->text()));
    // The same values in the Metadata section, under their keys.
    QStandardItem *meta = sectionNamed(view.model(), MetadataView::metadataTitle());
    QVERIFY(meta);
    QCOMPARE(valueOf(childNamed(meta, QStringLiteral("args"))), repr.value(QStringLiteral("args")).toString());
    // A key that says best keeps the word.
    view.setDocument(test::readFixture(QStringLiteral("conv_yolo_style.pt")));
    glance = sectionNamed(view.model(), MetadataView::summaryTitle());
    QVERIFY(glance && childNamed(glance, QStringLiteral("Best metric")));
    if (!qEnvironmentVariableIsEmpty("CKPT_VIEW_SCREENSHOTS")) {
        view.setDocument(test::readFixture(section.value(QStringLiteral("file")).toString()));
        view.grab().save(qEnvironmentVariable("CKPT_VIEW_SCREENSHOTS") + QStringLiteral("/metadata-glance.png"));
    }
}

void TestInspectorViews::securityDangerousFirst()
{
    auto doc = test::readFixture(QStringLiteral("os_system.pth"));
    auto report = std::make_shared<const SecurityReport>(securityReport(*doc));
    SecurityView view;
    QAbstractItemModelTester tester(view.proxy(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    view.setReport(report);
    QVERIFY(view.verdict()->text().contains(QStringLiteral("would run code")));
    QCOMPARE(view.model()->rowCount(), static_cast<int>(report->globals.size()));
    QCOMPARE(view.proxy()->index(0, SecurityView::VerdictColumn).data().toString(), QStringLiteral("dangerous"));
    QCOMPARE(view.proxy()->index(0, SecurityView::NameColumn).data().toString(), QStringLiteral("posix.system"));
    QVERIFY(!view.proxy()->index(0, SecurityView::ReasonColumn).data().toString().isEmpty());
    QVERIFY(view.verdict()->text().contains(QStringLiteral("would refuse")));
}

// Every row says why: a global torch.load(weights_only=True) refuses names the allow-list, whatever
// this reader makes of it (a pickled nn.Module's classes are understood here, refused there).
void TestInspectorViews::securityRefusedRowsSayWhy_data()
{
    QTest::addColumn<QString>("fixture");
    QTest::newRow("full model") << QStringLiteral("full_model.pth");
    QTest::newRow("dangerous") << QStringLiteral("os_system.pth");
}

void TestInspectorViews::securityRefusedRowsSayWhy()
{
    QFETCH(QString, fixture);
    auto doc = test::readFixture(fixture);
    SecurityView view;
    view.setReport(std::make_shared<const SecurityReport>(securityReport(*doc)));
    int refused = 0;
    for (int r = 0; r < view.model()->rowCount(); ++r) {
        const QString name = view.model()->item(r, SecurityView::NameColumn)->text();
        const QString why = view.model()->item(r, SecurityView::ReasonColumn)->text();
        QVERIFY2(!why.isEmpty(), qPrintable(name));
        if (view.model()->item(r, SecurityView::WeightsOnlyColumn)->text() == QStringLiteral("refused")) {
            ++refused;
            if (view.model()->item(r, SecurityView::VerdictColumn)->text() != QStringLiteral("dangerous"))
                QVERIFY2(why.contains(QStringLiteral("allow-list")), qPrintable(name + QStringLiteral(": ") + why));
        }
    }
    QVERIFY(refused > 0);
}

void TestInspectorViews::securityCleanFile()
{
    auto doc = test::readFixture(QStringLiteral("state_dict.pth"));
    SecurityView view;
    view.setReport(std::make_shared<const SecurityReport>(securityReport(*doc)));
    QVERIFY(view.verdict()->text().contains(QStringLiteral("No dangerous global")));
    QVERIFY(view.verdict()->text().contains(QStringLiteral("would accept")));
    for (int r = 0; r < view.model()->rowCount(); ++r)
        QCOMPARE(view.model()->item(r, SecurityView::VerdictColumn)->text(), QStringLiteral("understood"));
    view.setReport(nullptr);
    QCOMPARE(view.model()->rowCount(), 0);
}

// A TorchScript archive's __torch__ classes are compiled by torch.jit.load from the archive's own
// code: nothing says Python would import them, and the safe loader's refusal names the archive.
void TestInspectorViews::securityTorchScriptClasses()
{
    auto doc = test::readFixture(QStringLiteral("scripted.pt"));
    const auto report = std::make_shared<const SecurityReport>(securityReport(*doc));
    QVERIFY(!report->weightsOnlyFileReason.empty());
    SecurityView view;
    view.setReport(report, true);
    const QString verdict = view.verdict()->text();
    QVERIFY2(!verdict.contains(QStringLiteral("Python would import")), qPrintable(verdict));
    QVERIFY2(verdict.contains(QStringLiteral("TorchScript class")), qPrintable(verdict));
    QVERIFY2(verdict.contains(QString::fromStdString(report->weightsOnlyFileReason).toHtmlEscaped()), qPrintable(verdict));
    int classes = 0;
    for (int r = 0; r < view.model()->rowCount(); ++r)
        if (view.model()->item(r, SecurityView::NameColumn)->text().startsWith(QStringLiteral("__torch__."))) {
            ++classes;
            QVERIFY(view.model()->item(r, SecurityView::ReasonColumn)->text().contains(QStringLiteral("compiles it")));
        }
    QVERIFY(classes > 0);
}

void TestInspectorViews::moduleViewSelectsTensors()
{
    ModuleView view;
    QSignalSpy selected(&view, &ModuleView::tensorSelected);
    view.setDocument(test::readFixture(QStringLiteral("training_checkpoint.pth")));
    QCOMPARE(view.model()->headerData(ModuleTreeModel::ElementsColumn, Qt::Horizontal).toString(),
             QStringLiteral("Elements"));
    const QModelIndex weight = view.proxy()->mapFromSource(view.model()->indexOfPath(QStringLiteral("fc2.weight")));
    QVERIFY(weight.isValid());
    view.view()->setCurrentIndex(weight);
    QCOMPARE(selected.size(), 1);
    QCOMPARE(selected.first().first().toString(), QStringLiteral("fc2.weight"));
    view.filter()->setText(QStringLiteral("fc1"));
    QCOMPARE(view.proxy()->rowCount(), 1);
}

QTEST_MAIN(TestInspectorViews)
#include "tst_inspectorviews.moc"
