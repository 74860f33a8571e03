// DocumentTreeModel over fixtures PyTorch wrote (tests/fixtures/generate_fixtures.py): the top levels
// of the tree, aliases for shared and cyclic objects, limits for huge containers, and recursive
// filtering through a proxy. Every model and proxy has a QAbstractItemModelTester from the start.
#include "document.h"
#include "documenttreemodel.h"
#include "value.h"

#include <QAbstractItemModelTester>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSortFilterProxyModel>
#include <QTest>

#include "testdata.h"

#include <ctime>

using namespace ckpt;

namespace {

using test::readFixture;

// Milliseconds of CPU this thread has used: what building the tree costs here, whatever else the
// machine is running (a wall clock would count the time other processes took).
qint64 threadCpuMs()
{
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return qint64(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

std::shared_ptr<const Document> readBytes(std::string bytes)
{
    return std::make_shared<const Document>(readDocumentFromBytes(std::move(bytes), "test.pkl"));
}

// "key | type | value" per row (empty cells left out), two spaces of indent a level, `depth` levels.
QStringList dump(const QAbstractItemModel &m, int depth, const QModelIndex &parent = {}, int indent = 0)
{
    QStringList out;
    for (int r = 0; r < m.rowCount(parent); ++r) {
        const QModelIndex key = m.index(r, DocumentTreeModel::KeyColumn, parent);
        QStringList cells{key.data().toString()};
        for (int c : {DocumentTreeModel::TypeColumn, DocumentTreeModel::ValueColumn}) {
            const QString t = m.index(r, c, parent).data().toString();
            if (!t.isEmpty())
                cells << t;
        }
        out << QString(indent * 2, QLatin1Char(' ')) + cells.join(QStringLiteral(" | "));
        if (depth > 1)
            out << dump(m, depth - 1, key, indent + 1);
    }
    return out;
}

// Plain pickles, written opcode by opcode.
std::string bigListPickle(int n)
{
    std::string p = "\x80\x02]("; // PROTO 2, EMPTY_LIST, MARK
    for (int i = 0; i < n; ++i) {
        p += 'K'; // BININT1
        p += static_cast<char>(i & 0x7f);
    }
    p += "e.";    // APPENDS, STOP
    return p;
}

std::string unicode(const std::string &s)
{
    std::string p = "X"; // BINUNICODE, 4-byte little-endian length
    for (int i = 0; i < 4; ++i)
        p += static_cast<char>((s.size() >> (8 * i)) & 0xff);
    return p + s;
}

std::string selfListPickle()
{
    // L = []; L.append(L); {'loop': L, 'again': L}
    using namespace std::string_literals;
    return "\x80\x02}("s + unicode("loop") + "]q\x00h\x00"s + "a"s + unicode("again") + "h\x00u."s;
}

QJsonObject expectedJson() { return test::expectedListing(); }

} // namespace

class TestDocumentTreeModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void topLevels_data();
    void topLevels();
    void tensorsMatchTorch_data();
    void tensorsMatchTorch();
    void scalarsAsPythonPrintsThem();
    void roles();
    void sidecarAndConstantsAreTopLevelRows();
    void memoBombShowsAliases();
    void cycleIsAlias();
    void filterKeepsMatchesAndAncestors();
    void hugeListIsCapped();
    void depthLimit();
    void resetToEmpty();

private:
    void load(std::shared_ptr<const Document> doc, const TreeSnapshotOptions &options = {});

    DocumentTreeModel *m_model = nullptr;
    QSortFilterProxyModel *m_proxy = nullptr;
    QAbstractItemModelTester *m_modelTester = nullptr;
    QAbstractItemModelTester *m_proxyTester = nullptr;
};

void TestDocumentTreeModel::init()
{
    m_model = new DocumentTreeModel;
    m_proxy = new QSortFilterProxyModel;
    m_proxy->setRecursiveFilteringEnabled(true);
    m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_proxy->setSourceModel(m_model);
    // Before any data arrives, as the house style asks.
    m_modelTester = new QAbstractItemModelTester(m_model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    m_proxyTester = new QAbstractItemModelTester(m_proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
}

void TestDocumentTreeModel::cleanup()
{
    delete m_proxyTester;
    delete m_modelTester;
    delete m_proxy;
    delete m_model;
}

void TestDocumentTreeModel::load(std::shared_ptr<const Document> doc, const TreeSnapshotOptions &options)
{
    auto snapshot = DocumentTreeModel::buildSnapshot(std::move(doc), options);
    QVERIFY(snapshot);
    m_model->setSnapshot(std::move(snapshot));
}

void TestDocumentTreeModel::topLevels_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<int>("depth");
    QTest::addColumn<QStringList>("expected");

    QTest::newRow("training_checkpoint") << "training_checkpoint.pth" << 2
        << QStringList{
               "epoch | int | 7",
               "model_state_dict | OrderedDict | 4 items",
               "  fc1.weight | Tensor | [50, 10] float32 cpu",
               "  fc1.bias | Tensor | [50] float32 cpu",
               "  fc2.weight | Tensor | [2, 50] float32 cpu",
               "  fc2.bias | Tensor | [2] float32 cpu",
               "  (state) | dict | 1 item",
               "optimizer_state_dict | dict | 2 items",
               "  state | dict | 4 items",
               "  param_groups | list | 1 item",
               "train_loss | float | 0.25",
               "val_loss | float | 0.3125",
               "model_config | dict | 3 items",
               "  input_size | int | 10",
               "  hidden_size | int | 50",
               "  output_size | int | 2",
           };

    QTest::newRow("full_model") << "full_model.pth" << 1
        << QStringList{
               "training | bool | False",
               "_parameters | OrderedDict | 0 items",
               "_buffers | OrderedDict | 0 items",
               "_non_persistent_buffers_set | set | 0 items",
               "_backward_hooks | OrderedDict | 0 items",
               "_is_full_backward_hook | None | None",
               "_forward_hooks | OrderedDict | 0 items",
               "_forward_pre_hooks | OrderedDict | 0 items",
               "_state_dict_hooks | OrderedDict | 0 items",
               "_load_state_dict_pre_hooks | OrderedDict | 0 items",
               "_load_state_dict_post_hooks | OrderedDict | 0 items",
               "_modules | OrderedDict | 3 items",
           };

    // Scalars as Python prints them: big ints exact, floats shortest round-trip, str and bytes repr.
    QTest::newRow("nested") << "nested.pth" << 2
        << QStringList{
               "none | None | None",
               "flags | list | 2 items",
               "  0 | bool | True",
               "  1 | bool | False",
               "ints | list | 13 items",
               "  0 | int | 0",
               "  1 | int | 1",
               "  2 | int | -1",
               "  3 | int | 255",
               "  4 | int | 256",
               "  5 | int | -256",
               "  6 | int | 65535",
               "  7 | int | 65536",
               "  8 | int | -2147483648",
               "  9 | int | 2147483647",
               "  10 | int | 2147483648",
               "  11 | int | -9223372036854775808",
               "  12 | int | 9223372036854775808",
               "big | int | 1180591620717411303424",
               "neg_big | int | -1180591620717411303424",
               "float | float | 3.14159",
               "neg_float | float | -2.5e-08",
               QStringLiteral("str | str | 'h\u00e9llo \u2713'"),
               "bytes | bytes | b'\\x00\\x01\\x7f\\x80\\xff'",
               "set | set | 3 items",
               "  0 | int | 1",
               "  1 | int | 2",
               "  2 | int | 3",
               "tuple | tuple | 4 items",
               "  0 | int | 1",
               "  1 | str | 'two'",
               "  2 | float | 3.0",
               "  3 | None | None",
               "empty_list | list | 0 items",
               "empty_dict | dict | 0 items",
               "empty_tuple | tuple | 0 items",
               "nested | dict | 1 item",
               "  a | dict | 1 item",
               "items | list | 3 items",
               "  0 | str | 'first'",
               "  1 | int | 2",
               "  2 | Tensor | [3] float32 cpu",
               "pair | tuple | 2 items",
               "  0 | Tensor | [2] float32 cpu",
               "  1 | str | 'learnable'",
           };

    QTest::newRow("views") << "views.pth" << 1
        << QStringList{
               "base | Tensor | [4, 6] float32 cpu",
               "row | Tensor | [6] float32 cpu",
               "col | Tensor | [4] float32 cpu",
               "narrow | Tensor | [2, 3] float32 cpu",
               "transposed | Tensor | [6, 4] float32 cpu",
               "scalar | Tensor | tensor(3.5000)",  // a 0-d tensor: its value, as torch prints it
               "empty | Tensor | [0, 3] float32 cpu",
           };

    QTest::newRow("memo_bomb") << "memo_bomb.pth" << 4
        << QStringList{
               "bomb | list | 2 items",
               "  0 | list | 2 items",
               "    0 | list | 2 items",
               "      0 | list | 2 items",
               "      1 | list | \u2192 same object as bomb/0/0/0",
               "    1 | list | \u2192 same object as bomb/0/0",
               "  1 | list | \u2192 same object as bomb/0",
           };
}

void TestDocumentTreeModel::topLevels()
{
    QFETCH(QString, file);
    QFETCH(int, depth);
    QFETCH(QStringList, expected);
    load(readFixture(file));
    QCOMPARE(dump(*m_model, depth), expected);
    QCOMPARE(dump(*m_proxy, depth), expected);  // an empty filter lets everything through
}

void TestDocumentTreeModel::tensorsMatchTorch_data()
{
    QTest::addColumn<QString>("file");
    for (const char *f : {"state_dict.pth", "training_checkpoint.pth", "inference_package.pth", "full_model.pth",
                          "legacy_state_dict.pth", "dtypes.pth", "views_legacy.pth", "cuda_saved.pth"})
        QTest::newRow(f) << QString::fromLatin1(f);
}

// Each tensor PyTorch lists is in the tree where the file keeps it, with PyTorch's shape and dtype.
void TestDocumentTreeModel::tensorsMatchTorch()
{
    QFETCH(QString, file);
    const QJsonObject entry = expectedJson().value(file).toObject();
    QVERIFY2(!entry.isEmpty(), "expected.json lacks the file");
    load(readFixture(file));
    const bool module = entry.value("kind").toString() == QLatin1String("full_model");
    QStringList prefix;
    for (const auto &p : entry.value("state_dict_path").toArray())
        prefix << p.toString();

    for (const auto &t : entry.value("tensors").toArray()) {
        const QJsonObject tensor = t.toObject();
        const QString name = tensor.value("name").toString();
        QStringList path = prefix;
        if (module) {
            // "fc1.weight" lives at _modules/fc1/_parameters/weight in a pickled module.
            QStringList parts = name.split(QLatin1Char('.'));
            const QString leaf = parts.takeLast();
            for (const QString &m : parts)
                path << QStringLiteral("_modules") << m;
            path << QStringLiteral("_parameters") << leaf;
        } else {
            path << name;
        }
        const QModelIndex key = m_model->indexForPath(path);
        QVERIFY2(key.isValid(), qPrintable(path.join('/')));
        QVERIFY(key.data(DocumentTreeModel::IsTensorRole).toBool());
        QCOMPARE(key.data(DocumentTreeModel::PathRole).toStringList(), path);
        QStringList dims;
        for (const auto &d : tensor.value("shape").toArray())
            dims << QString::number(d.toInteger());
        QCOMPARE(key.siblingAtColumn(DocumentTreeModel::ShapeColumn).data().toString(),
                 QLatin1Char('[') + dims.join(QStringLiteral(", ")) + QLatin1Char(']'));
        QCOMPARE(key.siblingAtColumn(DocumentTreeModel::DTypeColumn).data().toString(),
                 tensor.value("dtype").toString());
    }
}

// The Value column writes a scalar (number, complex, string, bytes, None, a bool) as Python's repr
// writes what torch.load returns (repr_values.pth, tests/fixtures/repr_fixtures.py).
void TestDocumentTreeModel::scalarsAsPythonPrintsThem()
{
    const QJsonObject reprs = expectedJson().value("__repr__").toObject().value("repr").toObject();
    QVERIFY(!reprs.isEmpty());
    load(readFixture("repr_values.pth"));
    int compared = 0;
    for (auto it = reprs.begin(); it != reprs.end(); ++it) {
        const QString key = it.key();
        if (!(key.startsWith("f_") || key.startsWith("i_") || key.startsWith("c_") || key.startsWith("s_") ||
              key.startsWith("b_bytes") || key.startsWith("t0_") || key == "true" || key == "false" || key == "none"))
            continue;  // containers show their item count, objects their class, other tensors their shape
        const QModelIndex index = m_model->indexForPath({key}, DocumentTreeModel::ValueColumn);
        QVERIFY2(index.isValid(), qPrintable(key));
        QCOMPARE(index.data().toString(), it.value().toString());
        ++compared;
    }
    QVERIFY(compared >= 55);
}

void TestDocumentTreeModel::sidecarAndConstantsAreTopLevelRows()
{
    // The metadata sidecar beside the inference package, and a frozen TorchScript module's
    // constants.pkl, appear as top-level rows after the file's own entries.
    load(std::make_shared<const Document>(
        readDocument(CKPT_EXAMPLES_DIR "/simple_nn_inference.pth")));
    QStringList keys;
    for (int r = 0; r < m_model->rowCount(); ++r)
        keys << m_model->index(r, DocumentTreeModel::KeyColumn).data().toString();
    QCOMPARE(keys.last(), QStringLiteral("(sidecar simple_nn_inference_metadata.json)"));
    const QModelIndex sidecar = m_model->index(m_model->rowCount() - 1, 0);
    QStringList sidecarKeys;
    for (int r = 0; r < m_model->rowCount(sidecar); ++r)
        sidecarKeys << m_model->index(r, 0, sidecar).data().toString();
    QVERIFY(sidecarKeys.contains(QStringLiteral("class_names")));

    load(readFixture(QStringLiteral("frozen.pt")));
    const QModelIndex constants = m_model->index(m_model->rowCount() - 1, 0);
    QCOMPARE(constants.data().toString(), QStringLiteral("(constants.pkl)"));
    QCOMPARE(m_model->rowCount(constants), 4);
}

void TestDocumentTreeModel::roles()
{
    load(readFixture(QStringLiteral("training_checkpoint.pth")));
    const QModelIndex weight = m_model->indexForPath({"model_state_dict", "fc1.weight"});
    QVERIFY(weight.isValid());
    QCOMPARE(weight.data(DocumentTreeModel::ValueKindRole).toInt(), static_cast<int>(Value::Kind::Tensor));
    QCOMPARE(weight.data(DocumentTreeModel::PathTextRole).toString(), QStringLiteral("model_state_dict/fc1.weight"));
    QCOMPARE(weight.data(DocumentTreeModel::IsAliasRole).toBool(), false);
    QCOMPARE(weight.data(DocumentTreeModel::ProblemRole).toString(), QString());
    QVERIFY(weight.data(Qt::ToolTipRole).toString().contains(QStringLiteral("500 elements")));
    QCOMPARE(m_model->parent(weight), m_model->indexForPath({"model_state_dict"}));
    QVERIFY(m_model->flags(weight).testFlag(Qt::ItemNeverHasChildren));

    const QModelIndex epoch = m_model->indexForPath({"epoch"});
    QCOMPARE(epoch.data(DocumentTreeModel::ValueKindRole).toInt(), static_cast<int>(Value::Kind::Int));
    QCOMPARE(epoch.data(DocumentTreeModel::IsTensorRole).toBool(), false);
    QVERIFY(!m_model->indexForPath({"no such key"}).isValid());

    // A tensor whose extent runs past its storage carries the problem, in red, with a warning icon.
    load(readFixture(QStringLiteral("tensor_past_storage.pth")));
    const QModelIndex oversized = m_model->indexForPath({"oversized"});
    QVERIFY(oversized.isValid());
    QVERIFY(!oversized.data(DocumentTreeModel::ProblemRole).toString().isEmpty());
    QVERIFY(oversized.data(Qt::ToolTipRole).toString().contains(QStringLiteral("Problem:")));
    QVERIFY(oversized.data(Qt::ForegroundRole).isValid());
    QVERIFY(oversized.data(Qt::DecorationRole).isValid());
}

// {'bomb': L100} with L(i) = [L(i-1), L(i-1)]: 2**100 leaves as a tree; each list opens once.
void TestDocumentTreeModel::memoBombShowsAliases()
{
    const qint64 start = threadCpuMs();
    load(readFixture(QStringLiteral("memo_bomb.pth")));
    QVERIFY2(threadCpuMs() - start < 5000, qPrintable(QString::number(threadCpuMs() - start)));
    const auto &snap = *m_model->snapshot();
    QCOMPARE(snap.aliasCount(), 99);   // L1's two children are both the empty L0: nothing to alias
    QVERIFY2(snap.size() < 300, qPrintable(QString::number(snap.size())));

    const QModelIndex alias = m_model->index(1, 0, m_model->index(0, 0));
    QCOMPARE(alias.data().toString(), QStringLiteral("1"));
    QVERIFY(alias.data(DocumentTreeModel::IsAliasRole).toBool());
    QCOMPARE(alias.data(DocumentTreeModel::AliasPathRole).toStringList(), QStringList({"bomb", "0"}));
    QCOMPARE(m_model->rowCount(alias), 0);
    QVERIFY(!m_model->hasChildren(alias));

    // 100 levels down the first branch, then the empty L0.
    QModelIndex cur = m_model->index(0, 0);
    int levels = 0;
    while (m_model->rowCount(cur) > 0) {
        cur = m_model->index(0, 0, cur);
        ++levels;
    }
    QCOMPARE(levels, 100);
    QCOMPARE(cur.siblingAtColumn(DocumentTreeModel::ValueColumn).data().toString(), QStringLiteral("0 items"));
}

void TestDocumentTreeModel::cycleIsAlias()
{
    load(readBytes(selfListPickle()));
    const QStringList expected{
        "loop | list | 1 item",
        "  0 | list | \u2192 same object as loop",
        "again | list | \u2192 same object as loop",
    };
    QCOMPARE(dump(*m_model, 3), expected);
}

void TestDocumentTreeModel::filterKeepsMatchesAndAncestors()
{
    load(readFixture(QStringLiteral("training_checkpoint.pth")));
    m_proxy->setFilterFixedString(QStringLiteral("FC1"));
    const QStringList expected{
        "model_state_dict | OrderedDict | 4 items",
        "  fc1.weight | Tensor | [50, 10] float32 cpu",
        "  fc1.bias | Tensor | [50] float32 cpu",
        "  (state) | dict | 1 item",
        "    _metadata | OrderedDict | 4 items",
        "      fc1 | dict | 1 item",
    };
    QCOMPARE(dump(*m_proxy, 4), expected);

    m_proxy->setFilterFixedString(QStringLiteral("no-such-key"));
    QCOMPARE(m_proxy->rowCount(), 0);
    m_proxy->setFilterFixedString(QString());
    QCOMPARE(m_proxy->rowCount(), 6);
}

// A 200,000-element list lists its first 10,000 and one "… N more" row, and builds quickly.
void TestDocumentTreeModel::hugeListIsCapped()
{
    auto doc = readBytes(bigListPickle(200000));
    qint64 start = threadCpuMs();
    auto snapshot = DocumentTreeModel::buildSnapshot(doc);
    QVERIFY2(threadCpuMs() - start < 3000, qPrintable(QString::number(threadCpuMs() - start)));
    start = threadCpuMs();
    m_model->setSnapshot(snapshot);
    QVERIFY2(threadCpuMs() - start < 3000, qPrintable(QString::number(threadCpuMs() - start)));

    QCOMPARE(m_model->rowCount(), 10001);
    QCOMPARE(m_model->index(9999, 0).data().toString(), QStringLiteral("9999"));
    const QModelIndex more = m_model->index(10000, 0);
    QCOMPARE(more.data().toString(), QStringLiteral("\u2026 190000 more"));
    QVERIFY(more.data(DocumentTreeModel::IsPlaceholderRole).toBool());
    QVERIFY(!more.data(DocumentTreeModel::ValueKindRole).isValid());
    QCOMPARE(snapshot->hiddenCount(), 190000);

    // The limit is an option.
    load(readFixture(QStringLiteral("nested.pth")), TreeSnapshotOptions().maxChildren(5));
    const QModelIndex ints = m_model->indexForPath({"ints"});
    QCOMPARE(m_model->rowCount(ints), 6);
    QCOMPARE(m_model->index(5, 0, ints).data().toString(), QStringLiteral("\u2026 8 more"));
}

void TestDocumentTreeModel::depthLimit()
{
    load(readFixture(QStringLiteral("nested.pth")), TreeSnapshotOptions().maxDepth(2));
    const QModelIndex a = m_model->indexForPath({"nested", "a"});
    QVERIFY(a.isValid());
    QCOMPARE(m_model->rowCount(a), 0);
    QVERIFY(a.siblingAtColumn(DocumentTreeModel::ValueColumn).data().toString().contains(QStringLiteral("not opened")));
    QVERIFY(m_model->snapshot()->hiddenCount() > 0);
}

void TestDocumentTreeModel::resetToEmpty()
{
    load(readFixture(QStringLiteral("views.pth")));
    QCOMPARE(m_model->rowCount(), 7);
    m_model->setSnapshot(nullptr);
    QCOMPARE(m_model->rowCount(), 0);
    QCOMPARE(m_proxy->rowCount(), 0);
    QCOMPARE(m_model->columnCount(), int(DocumentTreeModel::ColumnCount));
    QCOMPARE(m_model->headerData(DocumentTreeModel::ValueColumn, Qt::Horizontal).toString(), QStringLiteral("Value"));
}

QTEST_MAIN(TestDocumentTreeModel)
#include "tst_documenttreemodel.moc"
