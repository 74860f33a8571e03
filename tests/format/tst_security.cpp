// Global names classified as a scanner must: understood, unknown (kept opaque) or dangerous,
// and whether PyTorch's weights-only loader would take them.
#include "document.h"
#include "security.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

using namespace ckpt;

class TestSecurity : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void classify_data();
    void classify();
    void nestedGlobalJudgedByItsName();
    void moduleObjectReasons();
    void fixtureReports_data();
    void fixtureReports();
    void corpusAdversarialIsFlagged();
    void pythonEnumIsALookup();
    void getattrMisuse_data();
    void getattrMisuse();
};

void TestSecurity::classify_data()
{
    QTest::addColumn<QString>("module");
    QTest::addColumn<QString>("name");
    QTest::addColumn<QString>("cls");
    QTest::addColumn<bool>("weightsOnly");
    QTest::newRow("os.system") << "os" << "system" << "dangerous" << false;
    QTest::newRow("posix.system") << "posix" << "system" << "dangerous" << false;
    QTest::newRow("nt.system") << "nt" << "system" << "dangerous" << false;
    QTest::newRow("os.path submodule") << "os.path" << "join" << "dangerous" << false;
    QTest::newRow("subprocess.Popen") << "subprocess" << "Popen" << "dangerous" << false;
    QTest::newRow("runpy._run_code") << "runpy" << "_run_code" << "dangerous" << false;
    QTest::newRow("builtins.exec") << "builtins" << "exec" << "dangerous" << false;
    QTest::newRow("builtins.eval") << "builtins" << "eval" << "dangerous" << false;
    QTest::newRow("builtins.getattr") << "builtins" << "getattr" << "dangerous" << false;
    QTest::newRow("builtins.__import__") << "builtins" << "__import__" << "dangerous" << false;
    QTest::newRow("operator.attrgetter") << "operator" << "attrgetter" << "dangerous" << false;
    QTest::newRow("functools.partial") << "functools" << "partial" << "dangerous" << false;
    QTest::newRow("venv.main") << "venv" << "main" << "dangerous" << false;
    QTest::newRow("torch.hub.load") << "torch.hub" << "load" << "dangerous" << false;
    QTest::newRow("webbrowser.open") << "webbrowser" << "open" << "dangerous" << false;
    QTest::newRow("dotted name") << "builtins" << "str.join" << "dangerous" << false;
    QTest::newRow("ossify is not os") << "ossify" << "thing" << "unknown" << false;
    QTest::newRow("OrderedDict") << "collections" << "OrderedDict" << "understood" << true;
    // Sets only the attributes it was saved with; torch 2.6's weights-only reader still refuses it.
    QTest::newRow("argparse.Namespace") << "argparse" << "Namespace" << "understood" << false;
    QTest::newRow("rebuild v2") << "torch._utils" << "_rebuild_tensor_v2" << "understood" << true;
    QTest::newRow("rebuild v1") << "torch._utils" << "_rebuild_tensor" << "understood" << true;
    // Each of these ran code, a command or opened a file under torch.load in the audit that found them.
    QTest::newRow("timeit.timeit") << "timeit" << "timeit" << "dangerous" << false;
    QTest::newRow("cProfile.run") << "cProfile" << "run" << "dangerous" << false;
    QTest::newRow("pydoc.pipepager") << "pydoc" << "pipepager" << "dangerous" << false;
    QTest::newRow("pydoc.locate") << "pydoc" << "locate" << "dangerous" << false;
    QTest::newRow("io.open") << "io" << "open" << "dangerous" << false;
    QTest::newRow("fx forward from src") << "torch.fx.graph_module" << "_forward_from_src" << "dangerous" << false;
    QTest::newRow("storage from bytes") << "torch.storage" << "_load_from_bytes" << "dangerous" << false;
    QTest::newRow("collect_env.run") << "torch.utils.collect_env" << "run" << "dangerous" << false;
    QTest::newRow("_operator alias") << "_operator" << "attrgetter" << "dangerous" << false;
    QTest::newRow("computed name") << "<computed at load time>" << "<computed at load time>" << "dangerous" << false;
    QTest::newRow("io.BytesIO is not io.open") << "io" << "BytesIO" << "unknown" << false;
    QTest::newRow("legacy tensor type") << "torch" << "FloatTensor" << "understood" << true;
    QTest::newRow("cuda sparse tensor type") << "torch.cuda.sparse" << "LongTensor" << "understood" << true;
    QTest::newRow("dtype alias") << "torch" << "half" << "understood" << false;
    QTest::newRow("qscheme") << "torch" << "per_channel_affine" << "understood" << true;
    QTest::newRow("Counter") << "collections" << "Counter" << "unknown" << true;
    QTest::newRow("FloatStorage") << "torch" << "FloatStorage" << "understood" << true;
    QTest::newRow("dtype") << "torch" << "bfloat16" << "understood" << true;
    QTest::newRow("TorchVersion") << "torch.torch_version" << "TorchVersion" << "understood" << false;
    QTest::newRow("nn.Linear") << "torch.nn.modules.linear" << "Linear" << "understood" << false;
    QTest::newRow("user class") << "__main__" << "SimpleNN" << "unknown" << false;
    // Globals that are a module object (torch.os is os): BUILD or SETITEM on them changes that
    // module for the whole Python session, as the reviewer's torch.os + BUILD did to os.
    QTest::newRow("torch.os") << "torch" << "os" << "dangerous" << false;
    QTest::newRow("posixpath.os") << "posixpath" << "os" << "dangerous" << false;
    QTest::newRow("torch.sys") << "torch" << "sys" << "dangerous" << false;
    QTest::newRow("collections._sys") << "collections" << "_sys" << "dangerous" << false;
    QTest::newRow("argparse._os") << "argparse" << "_os" << "dangerous" << false;
    QTest::newRow("torch.serialization.pickle") << "torch.serialization" << "pickle" << "dangerous" << false;
    QTest::newRow("torch._utils.torch") << "torch._utils" << "torch" << "dangerous" << false;
    QTest::newRow("torch.hub module") << "torch" << "hub" << "dangerous" << false;
    QTest::newRow("torch._utils module") << "torch" << "_utils" << "dangerous" << false;
    QTest::newRow("logging.config module") << "logging" << "config" << "dangerous" << false;
    QTest::newRow("builtins.__dict__") << "builtins" << "__dict__" << "dangerous" << false;
    QTest::newRow("torch.__builtins__") << "torch" << "__builtins__" << "dangerous" << false;
    QTest::newRow("pip.main") << "pip" << "main" << "dangerous" << false;
    QTest::newRow("pip internal") << "pip._internal.cli.main" << "main" << "dangerous" << false;
    QTest::newRow("pkg_resources") << "pkg_resources" << "load_entry_point" << "dangerous" << false;
    // ... and what must stay as it was: reconstructors, classes named like their module.
    QTest::newRow("copyreg.__newobj__") << "copyreg" << "__newobj__" << "unknown" << false;
    QTest::newRow("datetime.datetime") << "datetime" << "datetime" << "understood" << false;
    QTest::newRow("numpy reconstruct") << "numpy.core.multiarray" << "_reconstruct" << "understood" << false;
    QTest::newRow("torch.nn Linear") << "torch.nn.modules.linear" << "Linear" << "understood" << false;
    QTest::newRow("torch.float32") << "torch" << "float32" << "understood" << true;
    QTest::newRow("torch.device") << "torch" << "device" << "understood" << true;
    QTest::newRow("a user function named trace") << "mylib.utils" << "trace" << "unknown" << false;
    QTest::newRow("a user class named Os") << "mylib" << "Os" << "unknown" << false;
}

void TestSecurity::classify()
{
    QFETCH(QString, module);
    QFETCH(QString, name);
    QFETCH(QString, cls);
    QFETCH(bool, weightsOnly);
    GlobalUse use{module.toStdString() + "." + name.toStdString(), 1, 0, module.toStdString(), name.toStdString()};
    const auto v = classifyGlobal(use);
    QCOMPARE(QString::fromStdString(globalClassName(v.cls)), cls);
    QCOMPARE(v.weightsOnlyAllowed, weightsOnly);
    if (v.cls == GlobalClass::Dangerous)
        QVERIFY(!v.reason.empty());
}

// A module object is called so; a dangerous module's function keeps its module's reason.
void TestSecurity::moduleObjectReasons()
{
    const auto reason = [](const char *module, const char *name) {
        return classifyGlobal(GlobalUse{std::string(module) + "." + name, 1, 0, module, name}).reason;
    };
    QVERIFY(reason("torch", "os").find("is a module") != std::string::npos);
    QVERIFY(reason("torch", "hub").find("is a module") != std::string::npos);
    QVERIFY(reason("os", "system").find("module 'os'") != std::string::npos);
    QVERIFY(reason("torch.hub", "load").find("module 'torch.hub'") != std::string::npos);
}

// A global found in a pickle nested in the file carries a note in its display name; it is judged
// by its module and name all the same.
void TestSecurity::nestedGlobalJudgedByItsName()
{
    GlobalUse use{"builtins.eval (in a pickle passed to pickle.loads)", 1, 0, "builtins", "eval"};
    QCOMPARE(classifyGlobal(use).cls, GlobalClass::Dangerous);
}

void TestSecurity::fixtureReports_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<bool>("dangerous");
    QTest::addColumn<bool>("weightsOnly");
    QTest::newRow("state dict") << "state_dict.pth" << false << true;
    QTest::newRow("training checkpoint") << "training_checkpoint.pth" << false << true;
    QTest::newRow("full model") << "full_model.pth" << false << false;
    QTest::newRow("os.system zip") << "os_system.pth" << true << false;
    QTest::newRow("os.system legacy") << "os_system_legacy.pth" << true << false;
}

void TestSecurity::fixtureReports()
{
    QFETCH(QString, file);
    QFETCH(bool, dangerous);
    QFETCH(bool, weightsOnly);
    const auto doc = readDocument((QStringLiteral(CKPT_FIXTURES_DIR "/") + file).toStdString());
    const auto r = securityReport(doc);
    QCOMPARE(r.dangerous, dangerous);
    QCOMPARE(r.weightsOnlyLoadable, weightsOnly);
    QCOMPARE(r.weightsOnlyBlockers.empty(), weightsOnly);
}

void TestSecurity::corpusAdversarialIsFlagged()
{
    const QString path = QStringLiteral(CKPT_CORPUS_DIR "/ADVERSARIAL_rsac_infected_test_model.bin");
    if (!QFile::exists(path))
        QSKIP("../shared/corpus/files is absent");
    const auto doc = readDocument(path.toStdString());
    const auto r = securityReport(doc);
    QVERIFY(r.dangerous);
    bool venv = false;
    for (const auto &g : r.globals)
        venv = venv || (g.use.name == "venv.main" && g.cls == GlobalClass::Dangerous);
    QVERIFY(venv);
    // Still a reading: its 23 half-precision tensors are listed.
    QCOMPARE(doc.stateDict.size(), std::size_t(23));
    QCOMPARE(doc.stateDict.front().ref().dtype, DType::Float16);
}

namespace {
// Pickle opcodes, spelled out (each checked with pickletools.dis when written).
std::string glob(const std::string &module, const std::string &name) { return "c" + module + "\n" + name + "\n"; }
std::string str(const std::string &s) { return "\x8c" + std::string(1, char(s.size())) + s; }  // SHORT_BINUNICODE
std::string put(int i) { return "q" + std::string(1, char(i)); }                                // BINPUT
std::string get(int i) { return "h" + std::string(1, char(i)); }                                // BINGET
const std::string kProto = "\x80\x02", kTuple1 = "\x85", kTuple2 = "\x86", kReduce = "R", kStop = ".";
// getattr(module.cls, 'name'), the REDUCE Python 3.11 writes for an enum member.
std::string lookup(const std::string &module, const std::string &cls, const std::string &name)
{
    return glob("__builtin__", "getattr") + glob(module, cls) + str(name) + kTuple2 + kReduce;
}
GlobalVerdict getattrVerdict(const SecurityReport &r)
{
    for (const auto &g : r.globals)
        if (g.use.module == "builtins" && g.use.qualname == "getattr")
            return g;
    return {};
}
} // namespace

// Python 3.11 pickles an enum member as getattr(EnumClass, 'MEMBER') (HF training_args.bin,
// DeepSpeed's ZeroStageEnum): Python itself writes the files here, and the enum inside a dataclass,
// a dict, a list and a set is a lookup, not a danger. torch.load(weights_only=True) still refuses it.
void TestSecurity::pythonEnumIsALookup()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    static const char *kWrite = R"(
import sys, enum, dataclasses, pickle, pickletools, torch
class Strategy(enum.Enum):
    NO = 'no'; STEPS = 'steps'
class Stage(enum.IntEnum):
    disabled = 0; gradients = 2
@dataclasses.dataclass
class Args:
    output_dir: str = 'out'
    evaluation_strategy: Strategy = Strategy.STEPS
    save_strategy: Strategy = Strategy.NO
d = sys.argv[1]
torch.save(Args(), d + '/training_args.bin')
torch.save({'zero_stage': Stage.gradients, 'stages': [Stage.disabled], 'strategies': {Strategy.NO: 1}},
           d + '/optim_states.pt')
with open(d + '/args.pkl', 'wb') as f:
    pickle.dump(Args(), f, protocol=4)
# The form this test is about: getattr, called once per member.
ops = [op.name for op, arg, _ in pickletools.genops(pickle.dumps(Args(), protocol=2))]
print(sys.version_info >= (3, 11) and b'getattr' in pickle.dumps(Args(), protocol=2) and 'REDUCE' in ops)
)";
    QProcess python;
    python.start(QStringLiteral(CKPT_PYTHON), {"-c", kWrite, dir.path()});
    QVERIFY(python.waitForFinished(120000));
    QCOMPARE(python.exitCode(), 0);
    QCOMPARE(python.readAllStandardOutput().trimmed(), QByteArray("True"));
    for (const char *file : {"training_args.bin", "optim_states.pt", "args.pkl"}) {
        const auto doc = readDocument((dir.path() + "/" + file).toStdString());
        const auto r = securityReport(doc);
        const auto v = getattrVerdict(r);
        QVERIFY2(v.use.count > 0, file);
        QVERIFY2(!r.dangerous, (std::string(file) + ": " + v.reason).c_str());
        QCOMPARE(v.cls, GlobalClass::Lookup);
        QCOMPARE(globalClassName(v.cls), std::string("attribute lookup"));
        QVERIFY(v.reason.find("enum") != std::string::npos);
        QVERIFY(!v.weightsOnlyAllowed);
        QVERIFY(!r.weightsOnlyLoadable);
    }
}

void TestSecurity::getattrMisuse_data()
{
    QTest::addColumn<QByteArray>("pickle");
    QTest::addColumn<bool>("dangerous");
    QTest::addColumn<QString>("why");  // part of the reason when dangerous
    const auto bytes = [](const std::string &s) { return QByteArray(s.data(), qsizetype(s.size())); };
    const std::string root = kProto + "}" + str("k");  // {'k': ...}
    const std::string lookupRed = lookup("mylib", "Color", "RED");
    // The harmless forms first: the check is not merely refusing everything.
    QTest::newRow("dict value") << bytes(root + lookupRed + "s" + kStop) << false << "";
    QTest::newRow("list item") << bytes(root + "]" + lookupRed + "a" + "s" + kStop) << false << "";
    QTest::newRow("dict key") << bytes(root + "}" + lookupRed + str("v") + "s" + "s" + kStop) << false << "";
    QTest::newRow("the root itself") << bytes(kProto + lookupRed + kStop) << false << "";
    // getattr(os, 'system')('x'): os reached as torch.os.
    QTest::newRow("os.system") << bytes(root + lookup("torch", "os", "system") + str("x") + kTuple1 + kReduce + "s" +
                                        kStop)
                               << true << "dangerous itself";
    QTest::newRow("builtins alias eval") << bytes(root + lookup("codecs", "builtins", "eval") + "s" + kStop) << true
                                         << "dangerous itself";
    QTest::newRow("target os.system") << bytes(root + lookup("os", "system", "anything") + "s" + kStop) << true
                                      << "dangerous itself";
    QTest::newRow("called then popped")
        << bytes(kProto + lookup("mylib", "Tools", "run") + str("x") + kTuple1 + kReduce + "0" + "}" + str("k") +
                 lookupRed + "s" + kStop)
        << true << "is called";
    QTest::newRow("called, left under the root")
        << bytes(kProto + lookup("mylib", "Tools", "run") + str("x") + kTuple1 + kReduce + "}" + str("k") + lookupRed +
                 "s" + kStop)
        << true << "is called";
    QTest::newRow("dunder name") << bytes(root + lookup("mylib", "Color", "__globals__") + "s" + kStop) << true
                                 << "not a plain public attribute name";
    QTest::newRow("private name") << bytes(root + lookup("mylib", "Color", "_secret") + "s" + kStop) << true
                                  << "not a plain public attribute name";
    QTest::newRow("BUILD on the result")
        << bytes(root + lookupRed + "}" + str("a") + "K\x01" + "s" + "b" + "s" + kStop) << true << "BUILD";
    // map(getattr(...), []) and map(f, [getattr(...)]): the result in a tuple, or in a list in one.
    QTest::newRow("in a tuple passed to map")
        << bytes(root + lookupRed + put(0) + "s" + str("m") + glob("builtins", "map") + get(0) + "]" + kTuple2 +
                 kReduce + "s" + kStop)
        << true << "handed to a call";
    QTest::newRow("in a list passed to a call")
        << bytes(root + lookupRed + put(0) + "s" + str("m") + glob("mylib", "apply_all") + glob("mylib", "f") + "]" +
                 get(0) + "a" + kTuple2 + kReduce + "s" + kStop)
        << true << "handed to a call";
    QTest::newRow("appended to an object")
        << bytes(root + glob("mylib", "Bag") + ")" + kReduce + lookupRed + "a" + "s" + kStop) << true
        << "handed to a call";
    QTest::newRow("getattr itself as a value") << bytes(root + glob("__builtin__", "getattr") + "s" + kStop) << true
                                               << "itself";
    QTest::newRow("looks up in a string") << bytes(root + glob("__builtin__", "getattr") + str("os") + str("name") +
                                                   kTuple2 + kReduce + "s" + kStop)
                                          << true << "not in a class or function";
    // set([member]) as protocol 2 writes a set: a call of set on a list, kept strict.
    QTest::newRow("in a protocol 2 set") << bytes(root + glob("__builtin__", "set") + "]" + lookupRed + "a" + kTuple1 +
                                                  kReduce + "s" + kStop)
                                         << true << "handed to a call";
    // A getattr named but dropped (POP) leaves nothing to check: not cleared.
    QTest::newRow("getattr dropped unused") << bytes(root + glob("__builtin__", "getattr") + "0" + lookupRed + "s" +
                                                     kStop)
                                            << true << "keeps no value";
    QTest::newRow("three arguments") << bytes(root + glob("__builtin__", "getattr") + glob("mylib", "Color") +
                                              str("RED") + "N" + "\x87" + kReduce + "s" + kStop)
                                     << true << "exactly a global and a name";
}

void TestSecurity::getattrMisuse()
{
    QFETCH(QByteArray, pickle);
    QFETCH(bool, dangerous);
    QFETCH(QString, why);
    const auto doc = readDocumentFromBytes(pickle.toStdString(), "getattr.pkl");
    const auto r = securityReport(doc);
    const auto v = getattrVerdict(r);
    QVERIFY(v.use.count > 0);
    QVERIFY2(r.dangerous == dangerous, v.reason.c_str());
    QCOMPARE(v.cls, dangerous ? GlobalClass::Dangerous : GlobalClass::Lookup);
    if (dangerous)
        QVERIFY2(v.reason.find(why.toStdString()) != std::string::npos, v.reason.c_str());
    // Judged by name alone, getattr stays dangerous: only a read file's uses can clear it.
    QCOMPARE(classifyGlobal(v.use).cls, GlobalClass::Dangerous);
}

QTEST_GUILESS_MAIN(TestSecurity)
#include "tst_security.moc"
