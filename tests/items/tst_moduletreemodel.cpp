// ModuleTreeModel against PyTorch's own figures: for every module of the fixture models the
// generator writes (expected.json "__modules__"), the elements, bytes and tensor count of
// module.state_dict() with tied tensors counted once, and the module's class for pickled models.
#include "document.h"
#include "moduletreemodel.h"

#include <QAbstractItemModelTester>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSet>
#include <QSortFilterProxyModel>
#include <QTest>

#include <functional>

#include "testdata.h"

using namespace ckpt;

class TestModuleTreeModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void modulesMatchTorch_data();
    void modulesMatchTorch();
    void scriptModuleClassesMatchTorch_data();
    void scriptModuleClassesMatchTorch();
    void scriptTensorsAreParametersOrBuffers_data();
    void scriptTensorsAreParametersOrBuffers();
    void tiedWeightsAreAliases();
    void naturalSort();
    void sortBySizeAndFilter();
    void emptyAndReset();
};

void TestModuleTreeModel::modulesMatchTorch_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<bool>("classes");  // a pickled module tree names each module's class
    QTest::newRow("full model") << "full_model.pth" << true;
    QTest::newRow("tied full model") << "tied_full_model.pth" << true;
    QTest::newRow("tied state dict") << "tied_state_dict.pth" << false;
}

void TestModuleTreeModel::modulesMatchTorch()
{
    QFETCH(QString, file);
    QFETCH(bool, classes);
    const QJsonObject modules = test::expectedListing().value(QStringLiteral("__modules__")).toObject().value(file).toObject();
    QVERIFY2(!modules.isEmpty(), "expected.json has no __modules__ entry: regenerate the fixtures");

    ModuleTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setDocument(test::readFixture(file));
    // Leaf modules without tensors (ReLU) have no row in a plain state dict: only modules that hold tensors.
    int withTensors = 0;
    for (auto it = modules.begin(); it != modules.end(); ++it) {
        const QJsonObject m = it.value().toObject();
        const QModelIndex idx = model.indexOfPath(it.key());
        if (m.value(QStringLiteral("tensors")).toInt() == 0) {
            if (classes)
                QVERIFY2(idx.isValid(), qPrintable(it.key()));  // the module tree lists it anyway
            continue;
        }
        ++withTensors;
        QVERIFY2(idx.isValid(), qPrintable(it.key()));
        QCOMPARE(idx.data(ModuleTreeModel::ElementsRole).toLongLong(), m.value(QStringLiteral("elements")).toInteger());
        QCOMPARE(idx.data(ModuleTreeModel::BytesRole).toLongLong(), m.value(QStringLiteral("bytes")).toInteger());
        QCOMPARE(idx.siblingAtColumn(ModuleTreeModel::TensorsColumn).data(ModuleTreeModel::SortRole).toLongLong(),
                 m.value(QStringLiteral("tensors")).toInteger());
        QVERIFY(!idx.data(ModuleTreeModel::IsTensorRole).toBool());
        if (classes)
            QCOMPARE(idx.siblingAtColumn(ModuleTreeModel::ClassColumn).data().toString(),
                     m.value(QStringLiteral("class")).toString());
    }
    QVERIFY(withTensors > 0);
}

void TestModuleTreeModel::scriptModuleClassesMatchTorch_data()
{
    QTest::addColumn<QString>("file");
    // Fixtures whose compiled classes carry the compiler's ___torch_mangle_N (a second Linear of
    // another shape, a wider copy of a model) and one frozen to a single module.
    for (const char *f : {"predict_arch.pt", "predict_arch_wide.pt", "gated_scripted.pt", "scripted.pt", "frozen.pt",
                          "script_declared.pt"})
        QTest::newRow(f) << QString::fromLatin1(f);
}

// A TorchScript file's modules are the ones torch.jit.load(...).named_modules() lists, each with
// the class torch reports as its original_name ("Linear", not a mangled compiled name).
void TestModuleTreeModel::scriptModuleClassesMatchTorch()
{
    QFETCH(QString, file);
    QProcess python;
    python.start(QStringLiteral(CKPT_PYTHON),
                 {QStringLiteral(CKPT_TESTS_SOURCE_DIR "/items/torch_modules.py"), test::fixturePath(file)});
    QVERIFY(python.waitForFinished(120000));
    QVERIFY2(python.exitCode() == 0, python.readAllStandardError().constData());
    const QJsonObject torchModules = QJsonDocument::fromJson(python.readAllStandardOutput()).object();
    QVERIFY(torchModules.contains(QString()));  // the root

    ModuleTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setDocument(test::readFixture(file));
    QSet<QString> want;
    for (auto it = torchModules.begin(); it != torchModules.end(); ++it) {
        if (it.key().isEmpty())
            continue;  // the root is the tree itself, not a row
        want.insert(it.key());
        const QModelIndex idx = model.indexOfPath(it.key());
        QVERIFY2(idx.isValid(), qPrintable(it.key()));
        QCOMPARE(idx.siblingAtColumn(ModuleTreeModel::ClassColumn).data().toString(), it.value().toString());
    }
    // Every row that names a module class is one of torch's modules (the constants table is not).
    QSet<QString> shown;
    std::function<void(const QModelIndex &)> walk = [&](const QModelIndex &parent) {
        for (int r = 0; r < model.rowCount(parent); ++r) {
            const QModelIndex i = model.index(r, 0, parent);
            const QString cls = i.siblingAtColumn(ModuleTreeModel::ClassColumn).data().toString();
            if (!i.data(ModuleTreeModel::IsTensorRole).toBool() && !cls.isEmpty() && cls != QLatin1String("constants"))
                shown.insert(i.data(ModuleTreeModel::PathRole).toString());
            QVERIFY2(!cls.contains(QLatin1String("mangle")) && !cls.contains(QLatin1String("__torch__")), qPrintable(cls));
            walk(i);
        }
    };
    walk({});
    QCOMPARE(shown, want);
}

void TestModuleTreeModel::scriptTensorsAreParametersOrBuffers_data()
{
    QTest::addColumn<QString>("file");
    for (const char *f : {"script_declared.pt", "scripted.pt", "frozen.pt"})
        QTest::newRow(f) << QString::fromLatin1(f);
}

// A TorchScript file's tensor rows are torch.jit.load(f).state_dict()'s (expected.json
// "__script_declarations__"), labelled Parameter where named_parameters() lists them and Tensor
// otherwise; a plain tensor attribute is no row, and a frozen module's constants are no parameters.
void TestModuleTreeModel::scriptTensorsAreParametersOrBuffers()
{
    QFETCH(QString, file);
    const QJsonObject want =
        test::expectedListing().value(QStringLiteral("__script_declarations__")).toObject().value(file).toObject();
    QVERIFY2(!want.isEmpty(), "expected.json has no __script_declarations__: rebuild the ckpt_fixtures target");
    QSet<QString> parameters;
    for (const auto &p : want.value(QStringLiteral("parameters")).toArray())
        parameters.insert(p.toString());
    QSet<QString> keys;
    for (const auto &k : want.value(QStringLiteral("state_dict")).toArray())
        keys.insert(k.toString());

    ModuleTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setDocument(test::readFixture(file));
    int rows = 0;
    std::function<void(const QModelIndex &)> walk = [&](const QModelIndex &parent) {
        for (int r = 0; r < model.rowCount(parent); ++r) {
            const QModelIndex i = model.index(r, 0, parent);
            walk(i);
            if (!i.data(ModuleTreeModel::IsTensorRole).toBool())
                continue;
            const QString path = i.data(ModuleTreeModel::PathRole).toString();
            const QString cls = i.siblingAtColumn(ModuleTreeModel::ClassColumn).data().toString();
            if (path.startsWith(QLatin1String("constants."))) {
                QCOMPARE(cls, QStringLiteral("Tensor"));  // frozen weights
                continue;
            }
            ++rows;
            QVERIFY2(keys.contains(path), qPrintable(path + QLatin1String(" is not in torch's state_dict()")));
            QCOMPARE(cls, parameters.contains(path) ? QStringLiteral("Parameter") : QStringLiteral("Tensor"));
        }
    };
    walk({});
    QCOMPARE(rows, keys.size());
}

void TestModuleTreeModel::tiedWeightsAreAliases()
{
    ModuleTreeModel model;
    model.setDocument(test::readFixture(QStringLiteral("tied_state_dict.pth")));
    const QModelIndex head = model.indexOfPath(QStringLiteral("2.weight"));
    QVERIFY(head.isValid());
    QCOMPARE(head.data(ModuleTreeModel::AliasOfRole).toString(), QStringLiteral("0.weight"));
    QVERIFY(head.siblingAtColumn(ModuleTreeModel::NoteColumn).data().toString().contains(QStringLiteral("0.weight")));
    QVERIFY(model.indexOfPath(QStringLiteral("0.weight")).data(ModuleTreeModel::AliasOfRole).toString().isEmpty());
    // The tensor row keeps its own size; the module that holds it alone counts it too.
    QCOMPARE(head.data(ModuleTreeModel::ElementsRole).toLongLong(), 20 * 8);
    QCOMPARE(model.indexOfPath(QStringLiteral("2")).data(ModuleTreeModel::ElementsRole).toLongLong(), 20 * 8);
}

void TestModuleTreeModel::naturalSort()
{
    QVERIFY(naturalSortKey(QStringLiteral("layer9")) < naturalSortKey(QStringLiteral("layer10")));
    QVERIFY(naturalSortKey(QStringLiteral("2")) < naturalSortKey(QStringLiteral("10")));
    QVERIFY(naturalSortKey(QStringLiteral("Alpha")) < naturalSortKey(QStringLiteral("beta")));
    QCOMPARE(naturalSortKey(QStringLiteral("a1b")), naturalSortKey(QStringLiteral("A1B")));
}

void TestModuleTreeModel::sortBySizeAndFilter()
{
    ModuleTreeModel model;
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&model);
    proxy.setSortRole(ModuleTreeModel::SortRole);
    proxy.setRecursiveFilteringEnabled(true);
    proxy.setFilterKeyColumn(ModuleTreeModel::NameColumn);
    QAbstractItemModelTester tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setDocument(test::readFixture(QStringLiteral("full_model.pth")));
    QVERIFY(proxy.rowCount() >= 2);

    proxy.sort(ModuleTreeModel::BytesColumn, Qt::DescendingOrder);
    for (int r = 1; r < proxy.rowCount(); ++r)
        QVERIFY(proxy.index(r - 1, ModuleTreeModel::BytesColumn).data(ModuleTreeModel::SortRole).toLongLong() >=
                proxy.index(r, ModuleTreeModel::BytesColumn).data(ModuleTreeModel::SortRole).toLongLong());

    // Filtering by a tensor's name keeps the modules on its way.
    proxy.setFilterFixedString(QStringLiteral("bias"));
    QVERIFY(proxy.rowCount() >= 2);
    for (int r = 0; r < proxy.rowCount(); ++r) {
        const QModelIndex m = proxy.index(r, 0);
        QVERIFY(proxy.rowCount(m) >= 1);
        for (int c = 0; c < proxy.rowCount(m); ++c)
            QCOMPARE(proxy.index(c, 0, m).data().toString(), QStringLiteral("bias"));
    }
}

void TestModuleTreeModel::emptyAndReset()
{
    ModuleTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(model.rowCount(), 0);
    model.setDocument(test::readFixture(QStringLiteral("state_dict.pth")));
    QVERIFY(model.rowCount() > 0);
    QVERIFY(model.moduleCount() >= 2);
    model.setDocument(nullptr);
    QCOMPARE(model.rowCount(), 0);
    QVERIFY(!model.indexOfPath(QStringLiteral("fc1")).isValid());
}

QTEST_GUILESS_MAIN(TestModuleTreeModel)
#include "tst_moduletreemodel.moc"
