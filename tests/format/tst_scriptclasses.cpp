// TorchScript parameters and buffers: each module class's code record declares them
// (`__parameters__ = [...]`, `__buffers__ = [...]`), and a TorchScript file's state dict must be the
// one torch.jit.load(...).state_dict() gives, its parameters the ones named_parameters() lists
// (fixtures/expected.json, "__script_declarations__", is torch's own account). The declarations
// reader reads those two lines only and must survive any text.
#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "scriptclasses.h"

#include <QJsonArray>
#include <QtTest>

#include "testdata.h"

using namespace ckpt;

namespace {
QStringList names(const std::vector<NamedTensor> &tensors, bool parametersOnly = false)
{
    QStringList out;
    for (const auto &t : tensors)
        if (!parametersOnly || t.ref().isParameter)
            out << QString::fromStdString(t.name);
    return out;
}

QStringList strings(const QJsonValue &v)
{
    QStringList out;
    for (const auto &s : v.toArray())
        out << s.toString();
    return out;
}

std::vector<std::string> list(std::initializer_list<const char *> items) { return {items.begin(), items.end()}; }
} // namespace

class TestScriptClasses : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void readsTorchsDeclarations();
    void recordPathNamesTheModule();
    void oddTextIsLeftOut_data();
    void oddTextIsLeftOut();
    void hostileTextIsBounded();
    void stateDictIsTorchs_data();
    void stateDictIsTorchs();
    void missingRecordFallsBack();
};

void TestScriptClasses::readsTorchsDeclarations()
{
    // As torch 1.13 writes a record: two classes, a mangled one's path, names that need quoting.
    const char *source = "class Outer(Module):\n"
                         "  __parameters__ = [\"gain\", ]\n"
                         "  __buffers__ = [\"count\", \"tmp\", ]\n"
                         "  gain : Tensor\n"
                         "  def forward(self: __torch__.Outer,\n"
                         "    x: Tensor) -> Tensor:\n"
                         "    __parameters__ = [\"not\", \"this\"]\n"  // a method's line, not a declaration
                         "    return x\n"
                         "class Seq(Module):\r\n"
                         "  __parameters__ = [\"0\", 'q\\'s', \"a\\\\b\\n\\101\"]\r\n"
                         "  __buffers__ = []\r\n"
                         "def relu(input: Tensor) -> Tensor:\n"
                         "  __buffers__ = [\"ignored\", ]\n";
    ScriptClasses classes;
    readScriptClasses(source, "code/__torch__.py", classes);
    const ScriptClassDecl *outer = classes.find("__torch__.Outer");
    QVERIFY(outer);
    QCOMPARE(outer->parameters, list({"gain"}));
    QCOMPARE(outer->buffers, list({"count", "tmp"}));
    const ScriptClassDecl *seq = classes.find("__torch__.Seq");
    QVERIFY(seq);
    QCOMPARE(seq->parameters, list({"0", "q's", "a\\b\nA"}));
    QVERIFY(seq->buffers.empty());
    QVERIFY(!classes.find("__torch__.relu"));
    QCOMPARE(classes.names, std::size_t(6));

    ScriptClasses linear;
    readScriptClasses("class Linear(Module):\n  __parameters__ = [\"weight\", \"bias\", ]\n  __buffers__ = []\n",
                      "code/__torch__/torch/nn/modules/linear/___torch_mangle_0.py", linear);
    const ScriptClassDecl *l = linear.find("__torch__.torch.nn.modules.linear.___torch_mangle_0.Linear");
    QVERIFY(l);
    QCOMPARE(l->parameters, list({"weight", "bias"}));
}

void TestScriptClasses::recordPathNamesTheModule()
{
    QCOMPARE(scriptRecordModule("code/__torch__/torch/nn/modules/linear.py"), std::string("__torch__.torch.nn.modules.linear"));
    QCOMPARE(scriptRecordModule("code/__torch__.py"), std::string("__torch__"));
    QCOMPARE(scriptRecordModule("code/.py"), std::string());
    QCOMPARE(scriptRecordModule("data.pkl"), std::string());
    QCOMPARE(scriptRecordModule("code/x.py.debug_pkl"), std::string());
}

void TestScriptClasses::oddTextIsLeftOut_data()
{
    QTest::addColumn<QByteArray>("source");
    QTest::newRow("no buffers line") << QByteArray("class A(Module):\n  __parameters__ = []\n");
    QTest::newRow("unterminated string") << QByteArray("class A(Module):\n  __parameters__ = [\"w]\n  __buffers__ = []\n");
    QTest::newRow("unterminated list") << QByteArray("class A(Module):\n  __parameters__ = [\"w\", \n  __buffers__ = []\n");
    QTest::newRow("code after the list") << QByteArray("class A(Module):\n  __parameters__ = [\"w\"] + x\n  __buffers__ = []\n");
    QTest::newRow("not a string") << QByteArray("class A(Module):\n  __parameters__ = [w]\n  __buffers__ = []\n");
    QTest::newRow("missing comma") << QByteArray("class A(Module):\n  __parameters__ = [\"a\" \"b\"]\n  __buffers__ = []\n");
    QTest::newRow("bad escape") << QByteArray("class A(Module):\n  __parameters__ = [\"\\x41\"]\n  __buffers__ = []\n");
    QTest::newRow("octal past a byte") << QByteArray("class A(Module):\n  __parameters__ = [\"\\777\"]\n  __buffers__ = []\n");
    QTest::newRow("trailing backslash") << QByteArray("class A(Module):\n  __parameters__ = [\"\\");
    QTest::newRow("empty") << QByteArray();
    QTest::newRow("class without name") << QByteArray("class (Module):\n  __parameters__ = []\n  __buffers__ = []\n");
    static const char nul[] = "class A(Module):\n  __parameters__ = [\"\0\"]\n  __buffers__ = [\0]\n";
    QTest::newRow("nul bytes") << QByteArray(nul, sizeof(nul) - 1);
    QTest::newRow("declared twice")
        << QByteArray("class A(Module):\n  __parameters__ = []\n  __buffers__ = []\n  __buffers__ = []\n");
}

void TestScriptClasses::oddTextIsLeftOut()
{
    QFETCH(QByteArray, source);
    ScriptClasses classes;
    readScriptClasses(std::string_view(source.constData(), static_cast<std::size_t>(source.size())), "code/__torch__.py",
                      classes);
    QVERIFY(classes.classes.empty());
    QCOMPARE(classes.names, std::size_t(0));
}

void TestScriptClasses::hostileTextIsBounded()
{
    // More names than any model has, in one list: the reader stops at its limit and keeps nothing
    // of that class, without growing past it.
    std::string many = "class A(Module):\n  __parameters__ = [";
    for (std::size_t i = 0; i < kMaxScriptNames + 10; ++i)
        many += "\"p\",";
    many += "]\n  __buffers__ = []\n";
    ScriptClasses classes;
    readScriptClasses(many, "code/__torch__.py", classes);
    QVERIFY(!classes.find("__torch__.A"));
    QVERIFY(classes.truncated);

    // More classes than the limit: the first ones are kept, the rest dropped.
    std::string lots;
    for (std::size_t i = 0; i < kMaxScriptClasses + 5; ++i)
        lots += "class C" + std::to_string(i) + "(Module):\n  __parameters__ = []\n  __buffers__ = []\n";
    ScriptClasses bounded;
    readScriptClasses(lots, "code/__torch__.py", bounded);
    QCOMPARE(bounded.classes.size(), kMaxScriptClasses);
    QVERIFY(bounded.truncated);

    // A line of a hundred megabytes that never closes its string.
    std::string longLine = "class A(Module):\n  __parameters__ = [\"" + std::string(100u << 20, 'x');
    ScriptClasses open;
    readScriptClasses(longLine, "code/__torch__.py", open);
    QVERIFY(open.classes.empty());
}

void TestScriptClasses::stateDictIsTorchs_data()
{
    QTest::addColumn<QString>("file");
    const QJsonObject all = test::expectedListing().value(QStringLiteral("__script_declarations__")).toObject();
    QVERIFY2(!all.isEmpty(), "expected.json has no __script_declarations__: rebuild the ckpt_fixtures target");
    for (auto it = all.begin(); it != all.end(); ++it)
        QTest::newRow(qPrintable(it.key())) << it.key();
}

// The state dict is torch.jit.load(f).state_dict(), key by key in its order; the tensors marked
// parameters are named_parameters()'s; `info --json` counts sum(p.numel() for p in parameters())
// and says the count is exact. A frozen module has no parameters: its constants are listed after.
void TestScriptClasses::stateDictIsTorchs()
{
    QFETCH(QString, file);
    const QJsonObject want =
        test::expectedListing().value(QStringLiteral("__script_declarations__")).toObject().value(file).toObject();
    const Document doc = readDocument(test::fixturePath(file).toStdString());
    QCOMPARE(doc.kind, DocumentKind::ScriptModule);
    QVERIFY(doc.scriptDeclared);
    const QStringList torchKeys = strings(want.value(QStringLiteral("state_dict")));
    QStringList got = names(doc.stateDict);
    // Frozen weights are constants, which torch's state_dict() leaves out: the product lists them after.
    QStringList constants;
    while (!got.isEmpty() && got.last().startsWith(QLatin1String("constants.")))
        constants.prepend(got.takeLast());
    QCOMPARE(got, torchKeys);
    QCOMPARE(names(doc.stateDict, true), strings(want.value(QStringLiteral("parameters"))));
    if (file == QLatin1String("frozen.pt"))
        QVERIFY(!constants.isEmpty());
    else
        QVERIFY(constants.isEmpty());
    const auto j = documentToJson(doc);
    QCOMPARE(j["state_dict"]["source"].get<std::string>(), std::string("script_module"));
    QCOMPARE(j["state_dict"]["parameters"].get<std::int64_t>(), want.value(QStringLiteral("parameter_elements")).toInteger());
    QVERIFY(j["state_dict"]["parameters_exact"].get<bool>());
    // Buffers are neither parameters nor missing: the elements count every listed tensor.
    if (constants.isEmpty())
        QCOMPARE(j["state_dict"]["elements"].get<std::int64_t>(), want.value(QStringLiteral("state_dict_elements")).toInteger());
}

// Without one class's code record the file still opens and lists every tensor as before, but it
// no longer claims to know which are parameters.
void TestScriptClasses::missingRecordFallsBack()
{
    const QJsonObject want = test::expectedListing()
                                 .value(QStringLiteral("__script_declarations__"))
                                 .toObject()
                                 .value(QStringLiteral("script_declared.pt"))
                                 .toObject();
    const Document doc = readDocument(test::fixturePath(QStringLiteral("script_declared_partial.pt")).toStdString());
    QCOMPARE(doc.kind, DocumentKind::ScriptModule);
    QVERIFY(!doc.scriptDeclared);
    QVERIFY(!doc.scriptClasses.classes.empty());  // the other records were read
    const QStringList got = names(doc.stateDict);
    for (const QString &k : strings(want.value(QStringLiteral("state_dict"))))
        QVERIFY2(got.contains(k), qPrintable(k));
    QVERIFY(got.contains(QStringLiteral("inner.anchors")));  // every tensor reachable, as without declarations
    QVERIFY(names(doc.stateDict, true).isEmpty());
    QVERIFY(!documentToJson(doc)["state_dict"]["parameters_exact"].get<bool>());
}

QTEST_GUILESS_MAIN(TestScriptClasses)
#include "tst_scriptclasses.moc"
