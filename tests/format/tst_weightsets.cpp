// Choosing which set of weights is the model's (useWeightSet, weightSetPath): the chosen set's
// tensors as PyTorch lists them (fixtures/expected.json, written by torch.load of the same file),
// the former model weights listed among the others, the optimizer that belongs to the chosen set,
// and paths that name nothing, or something that is not a set of weights, refused in words.
#include "convert.h"
#include "document.h"
#include "error.h"
#include "optimizermap.h"

#include <QtTest>

#include "testdata.h"

using namespace ckpt;

namespace {
QStringList pathTexts(const std::vector<KeyPath> &paths)
{
    QStringList out;
    for (const auto &p : paths)
        out << QString::fromStdString(pathText(p));
    return out;
}

// "name dtype [shape]" lines: PyTorch's listing and the document's state dict in one form.
QStringList listing(const QJsonArray &tensors)
{
    QStringList out;
    for (const auto &t : tensors) {
        const QJsonObject o = t.toObject();
        QStringList shape;
        for (const auto &d : o.value("shape").toArray())
            shape << QString::number(d.toInteger());
        out << o.value("name").toString() + " " + o.value("dtype").toString() + " [" + shape.join(", ") + "]";
    }
    return out;
}

QStringList listing(const Document &doc)
{
    QStringList out;
    for (const auto &t : doc.stateDict) {
        QStringList shape;
        for (auto d : t.ref().shape)
            shape << QString::number(d);
        out << QString::fromStdString(t.name) + " " + QString::fromStdString(std::string(dtypeName(t.ref().dtype))) +
                   " [" + shape.join(", ") + "]";
    }
    return out;
}

qint64 elements(const QJsonArray &tensors)
{
    qint64 n = 0;
    for (const auto &t : tensors) {
        qint64 e = 1;
        for (const auto &d : t.toObject().value("shape").toArray())
            e *= d.toInteger();
        n += e;
    }
    return n;
}
} // namespace

class TestWeightSets : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void defaultsAgreeWithGenerator();
    void choose_data();
    void choose();
    void chosenAgain();
    void nestedSetSaidLost();
    void refused_data();
    void refused();

private:
    QJsonObject m_expected; // __weight_sets__
};

void TestWeightSets::initTestCase()
{
    m_expected = test::expectedListing().value("__weight_sets__").toObject();
    QVERIFY2(!m_expected.isEmpty(), "expected.json has no __weight_sets__: build the fixtures first");
}

// The fixtures are what the tests below assume: each file's default set is the one named.
void TestWeightSets::defaultsAgreeWithGenerator()
{
    for (auto it = m_expected.begin(); it != m_expected.end(); ++it) {
        const auto doc = readDocument(test::fixturePath(it.key()).toStdString());
        const QJsonObject e = it.value().toObject();
        QCOMPARE(QString::fromStdString(pathText(doc.stateDictPath)), e.value("default").toString());
        QCOMPARE(listing(doc), listing(e.value("sets").toObject().value(e.value("default").toString()).toArray()));
    }
}

void TestWeightSets::choose_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("typed"); // as the user types it
    QTest::addColumn<QString>("set");   // the path it names
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("kind");
    QTest::newRow("GAN discriminator") << "gan.pth"
                                       << "netD"
                                       << "netD"
                                       << "dict"
                                       << "training_checkpoint";
    QTest::newRow("GAN generator (the default)") << "gan.pth"
                                                 << "netG"
                                                 << "netG"
                                                 << "dict"
                                                 << "training_checkpoint";
    QTest::newRow("EMA") << "ema.pth"
                         << "ema_state_dict"
                         << "ema_state_dict"
                         << "dict"
                         << "training_checkpoint";
    QTest::newRow("nested student") << "distill.pth"
                                    << "state_dict/student"
                                    << "state_dict/student"
                                    << "dict"
                                    << "training_checkpoint";
    QTest::newRow("nested student, dotted") << "distill.pth"
                                            << "state_dict.student"
                                            << "state_dict/student"
                                            << "dict"
                                            << "training_checkpoint";
    QTest::newRow("module tree") << "modules.pt"
                                 << "ema"
                                 << "ema"
                                 << "module_tree"
                                 << "full_model";
    // Whole modules beside: the file is a full model by its module tree, not by a state dict.
    QTest::newRow("state dict beside modules") << "modules.pt"
                                               << "ema_state_dict"
                                               << "ema_state_dict"
                                               << "dict"
                                               << "generic";
    QTest::newRow("key with a dot") << "dotted.pth"
                                    << "x/y.z"
                                    << "x/y.z"
                                    << "dict"
                                    << "generic";
    QTest::newRow("key with a dot, dotted") << "dotted.pth"
                                            << "x.y/z"
                                            << "x.y/z"
                                            << "dict"
                                            << "generic";
}

void TestWeightSets::choose()
{
    QFETCH(QString, file);
    QFETCH(QString, typed);
    QFETCH(QString, set);
    QFETCH(QString, source);
    QFETCH(QString, kind);
    const QJsonObject e = m_expected.value("weight_sets/" + file).toObject();
    const QJsonObject sets = e.value("sets").toObject();
    QVERIFY(sets.contains(set));
    Document doc = readDocument(test::fixturePath("weight_sets/" + file).toStdString());
    const KeyPath path = weightSetPath(doc, typed.toStdString());
    QCOMPARE(QString::fromStdString(pathText(path)), set);
    useWeightSet(doc, path);

    QCOMPARE(QString::fromStdString(pathText(doc.stateDictPath)), set);
    QCOMPARE(QString::fromStdString(doc.stateDictSource), source);
    QCOMPARE(QString::fromStdString(kindName(doc.kind)), kind);
    QCOMPARE(listing(doc), listing(sets.value(set).toArray()));
    QCOMPARE(doc.parameterCount(), elements(sets.value(set).toArray()));
    // Every other set, the former model weights included, is listed once; the chosen one is not.
    QStringList others = sets.keys();
    others.removeAll(set);
    QStringList got = pathTexts(doc.otherWeightSets);
    QCOMPARE(got.size(), others.size());
    got.sort();
    others.sort();
    QCOMPARE(got, others);
    QVERIFY(std::count(doc.weightPaths.begin(), doc.weightPaths.end(), path) == 1);
    // The optimizer that trained the chosen set, and a mapping of it that is certain.
    const QJsonObject optimizers = e.value("optimizers").toObject();
    if (optimizers.contains(set)) {
        QCOMPARE(QString::fromStdString(pathText(doc.optimizerPath)), optimizers.value(set).toString());
        const auto map = mapOptimizer(doc);
        QVERIFY(map && map->certain);
        QCOMPARE(map->parameters.size(), static_cast<std::size_t>(sets.value(set).toArray().size()));
    }
}

// Choosing twice: back to the first set, the document is as read (conventions not repeated).
void TestWeightSets::chosenAgain()
{
    const std::string path = test::fixturePath("conv_torchvision.pth").toStdString();
    const Document read = readDocument(path);
    Document doc = readDocument(path);
    useWeightSet(doc, {"model_ema"});
    QCOMPARE(pathTexts(doc.otherWeightSets), QStringList{"model"});
    useWeightSet(doc, {"model"});
    QCOMPARE(pathTexts(doc.otherWeightSets), pathTexts(read.otherWeightSets));
    QVERIFY(doc.conventions == read.conventions);
    QVERIFY(doc.kind == read.kind);
    QVERIFY(doc.optimizerPath == read.optimizerPath);
    QCOMPARE(listing(doc), listing(read));
}

// The set beside the model's under the same root key is said to be left out by the planner itself,
// so the window's conversion pane lists it as `ckpt convert` does.
void TestWeightSets::nestedSetSaidLost()
{
    const Document doc = readDocument(test::fixturePath("weight_sets/distill.pth").toStdString());
    QCOMPARE(QString::fromStdString(pathText(doc.stateDictPath)), QStringLiteral("state_dict/teacher"));
    for (const auto target : {ConvertTarget::StateDict, ConvertTarget::Checkpoint, ConvertTarget::Safetensors}) {
        ConvertOptions options;
        options.target(target);
        const auto plan = planConversion(doc, target == ConvertTarget::Safetensors ? "/tmp/x.safetensors" : "/tmp/x.pth",
                                         options);
        QStringList lost;
        for (const auto &l : plan.lost)
            if (l.reason.starts_with("another set of weights"))
                lost << QString::fromStdString(l.entry);
        QCOMPARE(lost, QStringList{"state_dict/student"});
    }
}

void TestWeightSets::refused_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("typed");
    QTest::addColumn<QStringList>("words"); // each must be in the message
    const QStringList ganSets{"'netG' (the model's weights)", "'netD'"};
    QTest::newRow("missing") << "gan.pth"
                             << "netX" << (QStringList{"nothing is at 'netX'"} + ganSets);
    QTest::newRow("optimizer") << "gan.pth"
                               << "optD"
                               << (QStringList{"'optD' holds an optimizer's state, not a set of weights"} + ganSets);
    QTest::newRow("number") << "gan.pth"
                            << "epoch" << (QStringList{"'epoch' holds a value of type int"} + ganSets);
    QTest::newRow("one tensor") << "gan.pth"
                                << "netD/0.weight"
                                << (QStringList{"'netD/0.weight' holds a tensor (float32, shape [10, 6])"} + ganSets);
    QTest::newRow("a dict of sets") << "distill.pth"
                                    << "state_dict"
                                    << QStringList{
                                           "'state_dict' holds an OrderedDict of 2 entries, none of them a tensor",
                                           "'state_dict/teacher' (the model's weights)", "'state_dict/student'"};
    QTest::newRow("ambiguous dots") << "dotted.pth"
                                    << "x.y.z" << QStringList{"'x.y.z' could mean", "'x.y/z'", "'x/y.z'", "with '/'"};
}

void TestWeightSets::refused()
{
    QFETCH(QString, file);
    QFETCH(QString, typed);
    QFETCH(QStringList, words);
    const std::string path = test::fixturePath("weight_sets/" + file).toStdString();
    Document doc = readDocument(path);
    const Document read = readDocument(path);
    QString message;
    try {
        useWeightSet(doc, weightSetPath(doc, typed.toStdString()));
    } catch (const FormatError &e) {
        message = QString::fromStdString(e.what());
    }
    QVERIFY2(message.startsWith(QString::fromStdString(path) + ": "), qPrintable(message));
    for (const auto &w : words)
        QVERIFY2(message.contains(w), qPrintable(w + " not in: " + message));
    // Nothing changed.
    QVERIFY(doc.stateDictPath == read.stateDictPath);
    QCOMPARE(listing(doc), listing(read));
    QCOMPARE(pathTexts(doc.otherWeightSets), pathTexts(read.otherWeightSets));
}

QTEST_GUILESS_MAIN(TestWeightSets)
#include "tst_weightsets.moc"
