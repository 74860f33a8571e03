// The pickle machine, opcode by opcode: each row is a hand-assembled pickle and the repr Python's
// unpickler would show for it (or the error the machine must give).
#include "error.h"
#include "picklemachine.h"
#include "pyrepr.h"
#include "jsonexport.h"
#include "tensorref.h"
#include "value.h"

#include <QtTest>

#include <thread>

using namespace ckpt;

namespace {
// Hex bytes (spaces ignored) followed by raw text parts: H("80 02") + "abc".
QByteArray H(const char *hex) { return QByteArray::fromHex(QByteArray(hex)); }
QByteArray T(const char *text) { return QByteArray(text); }
QByteArray u64(quint64 n)
{
    QByteArray b(8, '\0');
    for (int i = 0; i < 8; ++i)
        b[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return b;
}
QByteArray u32(quint32 n) { return u64(n).left(4); }

PickleMachine::Result runPickle(const QByteArray &bytes, PickleMachine &m)
{
    return m.run({reinterpret_cast<const std::uint8_t *>(bytes.constData()), static_cast<std::size_t>(bytes.size())});
}
} // namespace

class TestPickleMachine : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void opcodes_data();
    void opcodes();
    void errors_data();
    void errors();
    void memoKeepsIdentity();
    void sharedScalarsStayUnchanged();
    void valuesOutliveTheirPool();
    void memoBombStaysShared();
    void bigIntegerAtTheLimit();
    void buildWithItselfDoesNotGrow();
    void nestingLimit_data();
    void nestingLimit();
    void deepTreeDestroysWithoutRecursion();
    void globalsAreCountedWithOffsets();
    void persistentIdGoesToLoader();
    void dangerousCallIsNeverMade();
};

void TestPickleMachine::opcodes_data()
{
    QTest::addColumn<QByteArray>("pickle");
    QTest::addColumn<QString>("expected");

    QTest::newRow("BININT1") << H("80 02 4b 05 2e") << "5";
    QTest::newRow("BININT2 unsigned") << H("80 02 4d e8 fd 2e") << "65000";
    QTest::newRow("BININT signed") << H("80 02 4a ff ff ff ff 2e") << "-1";
    QTest::newRow("INT text") << T("I42\n.") << "42";
    QTest::newRow("INT True") << T("I01\n.") << "True";
    QTest::newRow("INT False") << T("I00\n.") << "False";
    QTest::newRow("INT beyond int64") << T("I123456789012345678901234567890\n.") << "123456789012345678901234567890";
    QTest::newRow("LONG text") << T("L-98765432109876543210L\n.") << "-98765432109876543210";
    QTest::newRow("LONG1 empty is zero") << H("80 02 8a 00 2e") << "0";
    QTest::newRow("LONG1 negative") << H("80 02 8a 01 ff 2e") << "-1";
    QTest::newRow("LONG1 positive with sign byte") << H("80 02 8a 02 ff 00 2e") << "255";
    QTest::newRow("LONG1 legacy magic") << H("80 02 8a 0a 6c fc 9c 46 f9 20 6a a8 50 19 2e") << "119547037146038801333356";
    QTest::newRow("LONG1 2**70") << H("80 02 8a 09 00 00 00 00 00 00 00 00 40 2e") << "1180591620717411303424";
    QTest::newRow("LONG1 -2**70") << H("80 02 8a 09 00 00 00 00 00 00 00 00 c0 2e") << "-1180591620717411303424";
    QTest::newRow("LONG4") << H("80 02 8b 03 00 00 00 00 80 00 2e") << "32768";
    QTest::newRow("LONG1 int64 min") << H("80 02 8a 08 00 00 00 00 00 00 00 80 2e") << "-9223372036854775808";
    QTest::newRow("NONE") << H("80 02 4e 2e") << "None";
    QTest::newRow("NEWTRUE") << H("80 02 88 2e") << "True";
    QTest::newRow("NEWFALSE") << H("80 02 89 2e") << "False";
    QTest::newRow("BINFLOAT") << H("80 02 47 3f f8 00 00 00 00 00 00 2e") << "1.5";
    QTest::newRow("BINFLOAT nan") << H("80 02 47 7f f8 00 00 00 00 00 00 2e") << "nan";
    QTest::newRow("FLOAT text") << T("F0.25\n.") << "0.25";
    QTest::newRow("FLOAT exponent") << T("F1e-05\n.") << "1e-05";
    QTest::newRow("SHORT_BINUNICODE") << H("80 02 8c 03") + "abc" + H("2e") << "'abc'";
    QTest::newRow("BINUNICODE utf-8") << H("80 02 58 02 00 00 00 c3 a9 2e") << QString::fromUtf8("'é'");
    QTest::newRow("BINUNICODE8") << H("80 04 8d") + u64(2) + "hi" + H("2e") << "'hi'";
    QTest::newRow("UNICODE raw escape") << T("V\\u00e9t\n.") << QString::fromUtf8("'ét'");
    QTest::newRow("STRING quoted") << T("S'a\\'b'\n.") << "'a'b'";
    QTest::newRow("STRING hex escape") << T("S'\\x41'\n.") << "'A'";
    QTest::newRow("BINSTRING") << H("54 03 00 00 00") + "abc" + H("2e") << "'abc'";
    QTest::newRow("SHORT_BINSTRING non-utf8 stays bytes") << H("55 02 ff fe 2e") << "b'\\xff\\xfe'";
    QTest::newRow("SHORT_BINBYTES") << H("80 03 43 02") + "hi" + H("2e") << "b'hi'";
    QTest::newRow("BINBYTES") << H("80 03 42 03 00 00 00") + "abc" + H("2e") << "b'abc'";
    QTest::newRow("BINBYTES8") << H("80 04 8e") + u64(1) + "z" + H("2e") << "b'z'";
    QTest::newRow("BYTEARRAY8") << H("80 05 96") + u64(2) + "ok" + H("2e") << "bytearray(b'ok')";
    QTest::newRow("EMPTY_TUPLE") << H("80 02 29 2e") << "()";
    QTest::newRow("TUPLE1") << H("80 02 4b 01 85 2e") << "(1,)";
    QTest::newRow("TUPLE2") << H("80 02 4b 01 4b 02 86 2e") << "(1, 2)";
    QTest::newRow("TUPLE3") << H("80 02 4b 01 4b 02 4b 03 87 2e") << "(1, 2, 3)";
    QTest::newRow("MARK TUPLE") << H("28 4b 01 4b 02 4b 03 4b 04 74 2e") << "(1, 2, 3, 4)";
    QTest::newRow("EMPTY_LIST APPEND") << H("80 02 5d 4b 01 61 2e") << "[1]";
    QTest::newRow("LIST") << H("28 4b 01 4b 02 6c 2e") << "[1, 2]";
    QTest::newRow("APPENDS") << H("80 02 5d 28 4b 01 4b 02 65 2e") << "[1, 2]";
    QTest::newRow("EMPTY_DICT SETITEM") << H("80 02 7d 4b 01 4b 02 73 2e") << "{1: 2}";
    QTest::newRow("DICT") << H("28 4b 01 4b 02 64 2e") << "{1: 2}";
    QTest::newRow("SETITEMS keeps order") << H("80 02 7d 28 8c 01") + "b" + H("4b 01 8c 01") + "a" + H("4b 02 75 2e")
                                          << "{'b': 1, 'a': 2}";
    QTest::newRow("SETITEM existing key replaces in place")
        << H("80 02 7d 28 8c 01") + "a" + H("4b 01 8c 01") + "b" + H("4b 02 8c 01") + "a" + H("4b 03 75 2e")
        << "{'a': 3, 'b': 2}";
    QTest::newRow("float key equal to an int key") << H("80 02 7d 28 4b 01 4b 0a 47 3f f0 00 00 00 00 00 00 4b 0b 75 2e")
                                                   << "{1: 11}";
    QTest::newRow("same tuple object is one key")
        << H("80 02 7d 28 4b 01 85 71 00 4b 0a 68 00 4b 0b 75 2e") << "{(1,): 11}";
    QTest::newRow("EMPTY_SET ADDITEMS") << H("80 04 8f 28 4b 01 4b 02 90 2e") << "{1, 2}";
    QTest::newRow("FROZENSET") << H("80 04 28 4b 01 91 2e") << "frozenset({1})";
    QTest::newRow("BINPUT BINGET") << H("80 02 5d 71 00 30 68 00 2e") << "[]";
    QTest::newRow("PUT GET text") << T("I7\np0\n0g0\n.") << "7";
    QTest::newRow("LONG_BINPUT LONG_BINGET") << H("80 02 4b 07 72 05 00 00 00 30 6a 05 00 00 00 2e") << "7";
    QTest::newRow("MEMOIZE") << H("80 04 4b 07 94 30 68 00 2e") << "7";
    QTest::newRow("DUP") << H("4b 01 32 86 2e") << "(1, 1)";
    QTest::newRow("POP") << H("4b 01 4b 02 30 2e") << "1";
    QTest::newRow("POP_MARK") << H("4b 09 28 4b 01 4b 02 31 2e") << "9";
    QTest::newRow("FRAME") << H("80 04 95") + u64(3) + H("4b 01 2e") << "1";
    QTest::newRow("READONLY_BUFFER is a no-op") << H("80 05 43 01") + "x" + H("98 2e") << "b'x'";
    QTest::newRow("GLOBAL remaps __builtin__") << T("c__builtin__\nset\n.") << "<global builtins.set>";
    QTest::newRow("GLOBAL remaps copy_reg") << T("ccopy_reg\n_reconstructor\n.") << "<global copyreg._reconstructor>";
    QTest::newRow("STACK_GLOBAL") << H("80 04 8c 0b") + "collections" + H("8c 0b") + "OrderedDict" + H("93 2e")
                                  << "<global collections.OrderedDict>";
    QTest::newRow("REDUCE OrderedDict") << H("80 02 63") + "collections\nOrderedDict\n" + H("29 52 28 8c 01") + "w" +
                                               H("4b 01 75 2e")
                                        << "collections.OrderedDict({'w': 1})";
    QTest::newRow("OrderedDict _metadata kept apart")
        << H("80 02 63") + "collections\nOrderedDict\n" + H("29 52 8c 01") + "w" + H("4b 01 73 7d 8c 09") +
               "_metadata" + H("7d 73 62 2e")
        << "collections.OrderedDict({'w': 1}) state={'_metadata': {}}";
    QTest::newRow("REDUCE unknown callable stays opaque")
        << T("cos\nsystem\n(S'echo hi'\ntR.") << "<object <global os.system> args=('echo hi',)>";
    QTest::newRow("NEWOBJ and BUILD")
        << H("80 02 63") + "argparse\nNamespace\n" + H("29 81 7d 8c 02") + "lr" + H("47 3f 50 62 4d d2 f1 a9 fc 73 62 2e")
        << "<object <global argparse.Namespace> args=() state={'lr': 0.001}>";
    QTest::newRow("NEWOBJ_EX") << H("80 04 63") + "m\nC\n" + H("29 7d 8c 01") + "k" + H("4b 01 73 92 2e")
                               << "<object <global m.C> args=((), {'k': 1})>";
    QTest::newRow("INST") << T("(S'x'\nimain\nFoo\n.") << "<object <global main.Foo> args=('x',)>";
    QTest::newRow("OBJ") << T("(cmain\nFoo\nI1\no.") << "<object <global main.Foo> args=(1,)>";
    QTest::newRow("APPENDS on an object") << H("80 02 63") + "m\nL\n" + H("29 81 28 4b 01 65 2e")
                                          << "<object <global m.L> args=() items=[1]>";
    QTest::newRow("SETITEMS on a defaultdict")
        << H("80 02 63") + "collections\ndefaultdict\n" + H("63") + "builtins\nint\n" + H("85 52 8c 01") + "a" +
               H("4b 02 73 2e")
        << "<object <global collections.defaultdict> args=(<global builtins.int>,) dict={'a': 2}>";
    QTest::newRow("builtins.set") << H("80 02 63") + "__builtin__\nset\n" + H("5d 28 4b 01 4b 02 65 85 52 2e")
                                  << "{1, 2}";
    QTest::newRow("builtins.frozenset") << H("80 02 63") + "builtins\nfrozenset\n" + H("5d 4b 03 61 85 52 2e")
                                        << "frozenset({3})";
    QTest::newRow("_codecs.encode latin1") << H("80 02 63") + "_codecs\nencode\n" + H("58 02 00 00 00 c3 a9 58 06 00 00 00") +
                                                  "latin1" + H("86 52 2e")
                                           << "b'\\xe9'";
    QTest::newRow("builtins.complex") << H("80 02 63") + "builtins\ncomplex\n" +
                                             H("47 3f f0 00 00 00 00 00 00 47 40 00 00 00 00 00 00 00 86 52 2e")
                                      << "(1.0+2.0j)";
    QTest::newRow("builtins.bytearray") << H("80 02 63") + "builtins\nbytearray\n" + H("43 01") + "q" + H("85 52 2e")
                                        << "bytearray(b'q')";
    QTest::newRow("torch.Size") << H("80 02 63") + "torch\nSize\n" + H("4b 02 4b 03 86 85 52 2e") << "torch.Size(2, 3)";
    QTest::newRow("torch.device with index") << H("80 02 63") + "torch\ndevice\n" + H("8c 04") + "cuda" + H("4b 00 86 52 2e")
                                             << "torch.device:'cuda:0'";
    QTest::newRow("torch.device cpu") << H("80 02 63") + "torch\ndevice\n" + H("8c 03") + "cpu" + H("85 52 2e")
                                      << "torch.device:'cpu'";
    QTest::newRow("TorchVersion") << H("80 02 63") + "torch.torch_version\nTorchVersion\n" + H("8c 06") + "1.13.1" +
                                         H("85 81 7d 62 2e")
                                  << "torch.torch_version.TorchVersion:'1.13.1'";
    QTest::newRow("dtype global") << T("ctorch\nfloat16\n.") << "<global torch.float16>";
    // copyreg._reconstructor(K, object, None) is object.__new__(K): an instance with no arguments.
    QTest::newRow("copyreg._reconstructor") << T("ccopy_reg\n_reconstructor\n(cm\nK\nc__builtin__\nobject\nNtR.")
                                            << "<object <global m.K> args=()>";
    QTest::newRow("copyreg._reconstructor, other base") << T("ccopy_reg\n_reconstructor\n(cm\nK\nc__builtin__\nlist\n(ltR.")
                                                        << "<object <global m.K> args=(<global builtins.list>, [])>";
}

void TestPickleMachine::opcodes()
{
    QFETCH(QByteArray, pickle);
    QFETCH(QString, expected);
    PickleMachine m;
    PickleMachine::Result r;
    try {
        r = runPickle(pickle, m);
    } catch (const FormatError &e) {
        QFAIL(e.what());
    }
    QCOMPARE(QString::fromStdString(pyRepr(r.value)), expected);
    QCOMPARE(r.end, static_cast<std::size_t>(pickle.size()));
}

void TestPickleMachine::errors_data()
{
    QTest::addColumn<QByteArray>("pickle");
    QTest::addColumn<QString>("message");

    QTest::newRow("empty") << QByteArray() << "pickle offset 0: pickle ends without STOP";
    QTest::newRow("no STOP") << H("80 02 4b 01") << "pickle offset 4: pickle ends without STOP";
    QTest::newRow("truncated BINUNICODE") << H("80 02 58 10 00 00 00 61") << "pickle offset 2 (BINUNICODE): needs 16 bytes but only 1 remain";
    QTest::newRow("length of 2^62") << H("80 04 8e") + u64(1ull << 62) + "x" << "needs 4611686018427387904 bytes";
    QTest::newRow("negative BINSTRING") << H("54 ff ff ff ff") << "negative string length -1";
    QTest::newRow("stack underflow") << H("80 02 61") << "pickle offset 2 (APPEND): stack underflow";
    QTest::newRow("pop below mark") << H("4b 01 28 30 30 2e") << "stack underflow";
    QTest::newRow("no MARK") << H("80 02 74") << "no MARK on the stack";
    QTest::newRow("unknown opcode") << H("80 02 ff") << "unknown opcode 0xff";
    QTest::newRow("protocol 6") << H("80 06 4e 2e") << "unsupported pickle protocol 6";
    QTest::newRow("memo miss") << H("80 02 68 07 2e") << "memo entry 7 was never stored";
    QTest::newRow("EXT1") << H("80 02 82 01 2e") << "extension code 1 is not registered";
    QTest::newRow("EXT2") << H("80 02 83 01 02 2e") << "extension code 513 is not registered";
    QTest::newRow("EXT4") << H("80 02 84 01 00 00 00 2e") << "extension code 1 is not registered";
    QTest::newRow("NEXT_BUFFER") << H("80 05 97 2e") << "out-of-band buffers";
    QTest::newRow("FRAME that lies") << H("80 04 95") + u64(1000) + H("4e 2e") << "frame of 1000 bytes but only 2 remain";
    QTest::newRow("SETITEM on a list") << H("80 02 5d 4b 01 4b 02 73 2e") << "cannot set items on list";
    QTest::newRow("APPEND to a dict") << H("80 02 7d 4b 01 61 2e") << "cannot append to dict";
    QTest::newRow("odd SETITEMS") << H("80 02 7d 28 4b 01 75 2e") << "odd number of items";
    QTest::newRow("STACK_GLOBAL of ints") << H("80 04 4b 01 4b 02 93 2e") << "STACK_GLOBAL needs two strings";
    QTest::newRow("REDUCE with non-tuple args") << T("cos\nsystem\nI1\nR.") << "REDUCE arguments are a int";
    QTest::newRow("persistent id without container") << T("P0\n.") << "persistent id outside a checkpoint container";
    QTest::newRow("unterminated line") << T("I12") << "not terminated by a newline";
    QTest::newRow("bad INT text") << T("Iabc\n.") << "'abc' is not an integer";
    QTest::newRow("LONG4 negative length") << H("80 02 8b ff ff ff ff") << "negative byte count";
    QTest::newRow("LONG4 past limit") << H("80 02 8b") + u32(4097) + QByteArray(4097, '\1') + H("2e")
                                      << "integer of 4097 bytes exceeds the limit of 4096";
    QTest::newRow("list as a dict key") << H("80 02 7d 5d 4b 01 73 2e") << "unhashable type 'list' as a dict key";
    QTest::newRow("dict as a dict key") << H("80 02 7d 7d 4b 01 73 2e") << "unhashable type 'dict' as a dict key";
    QTest::newRow("GLOBAL not UTF-8") << H("80 02 63 62 75 69 6c 74 69 6e 73 0a 69 8a 74 0a 2e") << "global name is not UTF-8";
    QTest::newRow("rebuild with a non-storage") << H("80 02 63") + "torch._utils\n_rebuild_tensor_v2\n" +
                                                       H("28 4b 01 4b 00 29 29 89 4e 74 52 2e")
                                                << "first argument is a int, not a storage";
}

void TestPickleMachine::errors()
{
    QFETCH(QByteArray, pickle);
    QFETCH(QString, message);
    PickleMachine m;
    try {
        runPickle(pickle, m);
        QFAIL("expected an error");
    } catch (const FormatError &e) {
        const QString what = QString::fromUtf8(e.what());
        QVERIFY2(what.contains(message), qPrintable(what));
        QVERIFY2(what.startsWith("pickle offset "), qPrintable(what));
    }
}

void TestPickleMachine::memoKeepsIdentity()
{
    // x = []; [x, x]; then x.append(1) after both references exist: both see it.
    const QByteArray p = H("80 02 5d 71 00 5d 68 00 61 68 00 61 30 68 00 4b 01 61 30 68 00 2e");
    // EMPTY_LIST BINPUT0 | EMPTY_LIST BINGET0 APPEND BINGET0 APPEND POP | BINGET0 1 APPEND POP | BINGET0 STOP
    PickleMachine m;
    auto r = runPickle(p, m);
    QCOMPARE(QString::fromStdString(pyRepr(r.value)), QString("[1]"));
    // The outer list was dropped, but the memo entry is the same object that was mutated.
    const QByteArray q = H("80 02 5d 71 00 5d 68 00 61 68 00 61 71 01 30 68 00 4b 01 61 30 68 01 2e");
    PickleMachine m2;
    auto outer = runPickle(q, m2).value;
    QCOMPARE(QString::fromStdString(pyRepr(outer)), QString("[[1], [1]]"));
    QCOMPARE(outer->items()[0].get(), outer->items()[1].get());
}

void TestPickleMachine::sharedScalarsStayUnchanged()
{
    // Small ints, None and booleans are made once per pickle (as Python shares them). A BUILD on
    // one is ignored, as torch.load would fail it; the other occurrences stay what they were.
    // MARK 5 5 EMPTY_DICT BUILD None None True True 300 300 LIST STOP
    const QByteArray p = H("80 02 28 4b 05 4b 05 7d 62 4e 4e 88 88 4d 2c 01 4d 2c 01 6c 2e");
    PickleMachine m;
    auto r = runPickle(p, m);
    QCOMPARE(QString::fromStdString(pyRepr(r.value)), QString("[5, 5, None, None, True, True, 300, 300]"));
    QCOMPARE(r.value->items()[0].get(), r.value->items()[1].get());  // shared, as in Python
    QVERIFY(r.value->items()[0]->pythonClass().empty());
    QCOMPARE(m.warnings().size(), std::size_t{1});  // the ignored BUILD
    // A dict keyed by equal small ints still has one key, and a list holding shared ints keeps
    // its own items: {0: [0, 0], 1: 0}
    const QByteArray q = H("80 02 7d 28 4b 00 5d 28 4b 00 4b 00 65 4b 01 4b 00 75 2e");
    PickleMachine m2;
    QCOMPARE(QString::fromStdString(pyRepr(runPickle(q, m2).value)), QString("{0: [0, 0], 1: 0}"));
}

void TestPickleMachine::valuesOutliveTheirPool()
{
    // Values, their out-of-line parts and tensor references come from the pool of the scope
    // that made them; they keep it alive after the scope ends, on any thread (ASan checks this).
    ValuePtr d, t;
    {
        const ValuePoolScope pool;
        d = Value::dict();
        d->setPythonClass("collections.OrderedDict");
        auto ref = makeTensorRef();
        ref->shape = {2, 3};
        ref->storage = makeStorageRef();
        ref->storage->key = "0";
        t = Value::tensor(ref);
        {
            const ValuePoolScope inner;  // a nested scope: values made here live in its own pool
            d->entries().push_back({Value::string("inner"), Value::integer(7)});
            d->setState(Value::dict());
        }
        d->entries().push_back({Value::string("tensor"), t});
    }
    QCOMPARE(QString::fromStdString(d->pythonClass()), QString("collections.OrderedDict"));
    QCOMPARE(t->tensorRef()->shape, (std::vector<std::int64_t>{2, 3}));
    QCOMPARE(QString::fromStdString(t->tensorRef()->storage->key), QString("0"));
    QCOMPARE(d->entries().size(), std::size_t{2});
    QCOMPARE(d->entries()[0].value->asInt(), std::int64_t{7});
    t.reset();
    std::thread([v = std::move(d)]() mutable { v.reset(); }).join();
}

void TestPickleMachine::memoBombStaysShared()
{
    // L0 = []; L(i) = [L(i-1), L(i-1)] for 100 levels: 2^100 leaves if expanded.
    QByteArray p = H("80 02 5d 71 00");
    for (int i = 1; i <= 100; ++i) {
        p += H("5d 6a") + u32(static_cast<quint32>(i - 1)) + H("61 6a") + u32(static_cast<quint32>(i - 1)) + H("61 72") +
             u32(static_cast<quint32>(i));
        p += H("30");  // POP the new list (it stays in the memo)
    }
    p += H("6a") + u32(100) + H("2e");
    PickleMachine m;
    auto v = runPickle(p, m).value;
    QCOMPARE(v->items().size(), std::size_t(2));
    QCOMPARE(v->items()[0].get(), v->items()[1].get());
    // The JSON export writes each container once and refers back to it afterwards.
    const auto dumped = valueToJson(v).dump();
    QVERIFY2(dumped.size() < 20000, qPrintable(QString::number(dumped.size())));
    QVERIFY(dumped.find("__ref__") != std::string::npos);
}

void TestPickleMachine::buildWithItselfDoesNotGrow()
{
    // D = {(1,): 10}; then BUILD D with D, 40 times: the same key objects, so no entry is added
    // (the fuzzer found exponential growth here when tuple keys were compared by nothing).
    QByteArray p = H("80 02 7d 71 00 28 4b 01 85 4b 0a 75");
    p += QByteArray(40, '2') + QByteArray(40, 'b') + ".";
    PickleMachine m;
    const auto v = runPickle(p, m).value;
    QCOMPARE(v->entries().size(), std::size_t(1));
    QCOMPARE(v->state().get(), v.get());
}

void TestPickleMachine::bigIntegerAtTheLimit()
{
    // 2**(8*4095): 4096 bytes, the widest integer accepted; Python's own str() gives these digits.
    const QByteArray p = H("80 02 8b") + u32(4096) + QByteArray(4095, '\0') + H("01 2e");
    PickleMachine m;
    const auto v = runPickle(p, m).value;
    QCOMPARE(v->kind(), Value::Kind::BigInt);
    const QString digits = QString::fromStdString(v->text());
    QCOMPARE(digits.size(), 9862);
    QVERIFY(digits.startsWith(QStringLiteral("55291446525193546445")));
    QVERIFY(digits.endsWith(QStringLiteral("95010422283725438976")));
}

void TestPickleMachine::nestingLimit_data()
{
    QTest::addColumn<int>("lists");
    QTest::addColumn<bool>("ok");
    // n nested lists have height n-1; the limit is on the height.
    QTest::newRow("at the limit") << int(PickleLimits::kMaxDepth + 1) << true;
    QTest::newRow("just past the limit") << int(PickleLimits::kMaxDepth + 2) << false;
    QTest::newRow("200000 deep") << 200000 << false;
}

void TestPickleMachine::nestingLimit()
{
    QFETCH(int, lists);
    QFETCH(bool, ok);
    QByteArray p = H("80 02") + QByteArray(lists, ']') + QByteArray(lists - 1, 'a') + ".";
    PickleMachine m;
    try {
        auto r = runPickle(p, m);
        QVERIFY2(ok, "expected the nesting limit to refuse this");
        QCOMPARE(r.value->height(), std::uint32_t(lists - 1));
    } catch (const FormatError &e) {
        QVERIFY2(!ok, e.what());
        QVERIFY(QString(e.what()).contains("nesting deeper than the limit of 1000"));
    }
}

void TestPickleMachine::deepTreeDestroysWithoutRecursion()
{
    // Built through the API (no limit there): destroying a million-deep chain must not recurse.
    ValuePtr v = Value::list();
    for (int i = 0; i < 1000000; ++i) {
        auto outer = Value::list();
        outer->items().push_back(std::move(v));
        v = std::move(outer);
    }
    v.reset();
    QVERIFY(true);
}

void TestPickleMachine::globalsAreCountedWithOffsets()
{
    const QByteArray p = T("(cos\nsystem\ncos\nsystem\ncposix\nsystem\nt.");
    PickleMachine m;
    m.setBaseOffset(100);
    runPickle(p, m);
    const auto g = m.globals();
    QCOMPARE(g.size(), std::size_t(2));
    QCOMPARE(QString::fromStdString(g[0].name), QString("os.system"));
    QCOMPARE(g[0].count, 2);
    QCOMPARE(g[0].firstOffset, std::uint64_t(101));
    QCOMPARE(QString::fromStdString(g[1].name), QString("posix.system"));
}

void TestPickleMachine::persistentIdGoesToLoader()
{
    const QByteArray p = H("80 02 8c 03") + "pid" + H("51 2e");
    PickleMachine m;
    std::uint64_t seenAt = 0;
    m.setPersistentLoad([&seenAt](const ValuePtr &pid, std::uint64_t off) {
        seenAt = off;
        return Value::string("loaded:" + pid->text());
    });
    auto v = runPickle(p, m).value;
    QCOMPARE(QString::fromStdString(v->text()), QString("loaded:pid"));
    QCOMPARE(seenAt, std::uint64_t(7));
}

void TestPickleMachine::dangerousCallIsNeverMade()
{
    const QString marker = QDir::temp().filePath("ckpt_pickle_marker_" + QString::number(QCoreApplication::applicationPid()));
    QFile::remove(marker);
    const QByteArray cmd = ("touch " + marker).toUtf8();
    const QByteArray p = T("cos\nsystem\n(S'") + cmd + T("'\ntR.");
    PickleMachine m;
    auto v = runPickle(p, m).value;
    QCOMPARE(v->kind(), Value::Kind::Object);
    QVERIFY(!QFile::exists(marker));
}

QTEST_GUILESS_MAIN(TestPickleMachine)
#include "tst_picklemachine.moc"
