// Choosing which set of weights is the model's (useWeightSet, weightSetPath): the chosen set's
// tensors as PyTorch lists them (fixtures/expected.json, written by torch.load of the same file),
// the former model weights listed among the others, the optimizer that belongs to the chosen set,
// and paths that name nothing, or something that is not a set of weights, refused in words. By
// default too the optimizer is the one whose state has the model's shapes, and --ema takes the EMA
// of the model's own network, whatever the order of the file.
#include "convert.h"
#include "document.h"
#include "error.h"
#include "optimizermap.h"
#include "valuetree.h"

#include <map>

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
    void defaultOptimizerByShape();
    void pairedByOrderSaid();
    void emaOfTheModel_data();
    void emaOfTheModel();
    void emaRefused_data();
    void emaRefused();
    void otherSetsInSafetensors();
    void classNamesCounted();

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
        // Every other set the generator wrote is listed, and nothing else (normalisation constants
        // held as tensors are not a set of weights).
        QStringList others = e.value("sets").toObject().keys();
        others.removeAll(e.value("default").toString());
        QStringList got = pathTexts(doc.otherWeightSets);
        others.sort();
        got.sort();
        QCOMPARE(got, others);
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
    QTest::newRow("GAN with EMAs, discriminator") << "gan_ema.pth"
                                                  << "netD"
                                                  << "netD"
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

// Without --weights, the optimizer that trained the model's weights: in gan_ema.pth the
// discriminator's optimizer comes first in the file, and only shapes tell it is not the generator's.
void TestWeightSets::defaultOptimizerByShape()
{
    int checked = 0;
    for (auto it = m_expected.begin(); it != m_expected.end(); ++it) {
        const QJsonObject e = it.value().toObject();
        const QString set = e.value("default").toString();
        const QJsonObject optimizers = e.value("optimizers").toObject();
        if (!optimizers.contains(set))
            continue;
        const auto doc = readDocument(test::fixturePath(it.key()).toStdString());
        QCOMPARE(QString::fromStdString(pathText(doc.optimizerPath)), optimizers.value(set).toString());
        for (const auto &w : doc.warnings)
            QVERIFY2(!w.starts_with("optimizer paired by order"), w.c_str());
        const auto map = mapOptimizer(doc);
        QVERIFY(map && map->certain);
        ++checked;
    }
    QVERIFY(checked >= 3);
}

// Two networks of one architecture, each with an SGD optimizer: shapes cannot tell which optimizer
// is whose, so the first in the file is kept, and a warning says the pairing is by order.
void TestWeightSets::pairedByOrderSaid()
{
    Document doc = readDocument(test::fixturePath("weight_sets/twins_ema.pth").toStdString());
    QCOMPARE(QString::fromStdString(pathText(doc.stateDictPath)), QStringLiteral("net_a"));
    QCOMPARE(QString::fromStdString(pathText(doc.optimizerPath)), QStringLiteral("opt_b"));
    auto said = [](const Document &d) {
        return std::count_if(d.warnings.begin(), d.warnings.end(), [](const std::string &w) {
            return w.starts_with("optimizer paired by order") && w.find("'opt_b'") != std::string::npos &&
                   w.find("'opt_a'") != std::string::npos;
        });
    };
    QCOMPARE(said(doc), 1);
    // Choosing a set pairs again: said once, not twice.
    useWeightSet(doc, {"net_b"});
    QCOMPARE(said(doc), 1);
}

void TestWeightSets::emaOfTheModel_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("ema");  // the set whose tensors the plan writes
    // The discriminator's EMA comes first; only the generator's has the generator's shapes.
    QTest::newRow("GAN, the other network's EMA first") << "gan_ema.pth"
                                                        << "netG_ema";
    // Both EMAs have the model's names and shapes; the one named after the model's set is taken.
    QTest::newRow("twins, named after the set") << "twins_ema.pth"
                                                << "ema_net_a";
    QTest::newRow("one EMA") << "ema.pth"
                             << "ema_state_dict";
}

void TestWeightSets::emaOfTheModel()
{
    QFETCH(QString, file);
    QFETCH(QString, ema);
    const Document doc = readDocument(test::fixturePath("weight_sets/" + file).toStdString());
    const auto plan = planConversion(doc, "/tmp/x.pth", ConvertOptions().ema(true));
    const ValuePtr want = findPath(doc.root, {ema.toStdString()});
    QVERIFY(want && want->isDict());
    QVERIFY(plan.root && plan.root->isDict());
    QCOMPARE(plan.root->entries().size(), doc.stateDict.size());
    for (const auto &e : plan.root->entries()) {
        const std::string name = keyText(*e.key);
        const ValuePtr w = want->get(name);
        QVERIFY2(w && w->isTensor(), name.c_str());
        // The same storage at the same place: the EMA's tensor, not the model's or another set's.
        QVERIFY2(e.value->tensorRef()->storage == w->tensorRef()->storage &&
                     e.value->tensorRef()->storageOffset == w->tensorRef()->storageOffset,
                 name.c_str());
    }
    bool said = false;
    for (const auto &l : plan.lost)
        said = said || l.reason.find("EMA weights under '" + ema.toStdString() + "'") != std::string::npos;
    QVERIFY(said);
}

void TestWeightSets::emaRefused_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QStringList>("words");
    QTest::newRow("two EMAs fit alike") << "two_emas.pth"
                                        << QStringList{"several EMA weights fit", "'ema_1'", "'ema_2'", "--weights"};
    QTest::newRow("only the other network's EMA")
        << "other_ema.pth" << QStringList{"no EMA weights in the file fit", "'netG'", "'netD_ema'", "shape [10, 6]"};
}

void TestWeightSets::emaRefused()
{
    QFETCH(QString, file);
    QFETCH(QStringList, words);
    const std::string path = test::fixturePath("weight_sets/" + file).toStdString();
    const Document doc = readDocument(path);
    QString message;
    try {
        planConversion(doc, "/tmp/x.pth", ConvertOptions().ema(true));
    } catch (const FormatError &e) {
        message = QString::fromStdString(e.what());
    }
    QVERIFY2(message.startsWith(QString::fromStdString(path) + ": --ema: "), qPrintable(message));
    for (const auto &w : words)
        QVERIFY2(message.contains(w), qPrintable(w + " not in: " + message));
}

// A safetensors file holds one set of weights: the others are said to be sets of weights left out,
// with the option that writes each, not metadata that failed to fit.
void TestWeightSets::otherSetsInSafetensors()
{
    {
        // Converting the generator: the discriminator is the other set.
        const Document gan = readDocument(test::fixturePath("weight_sets/gan.pth").toStdString());
        const auto plan =
            planConversion(gan, "/tmp/x.safetensors", ConvertOptions().target(ConvertTarget::Safetensors));
        const auto it = std::find_if(plan.lost.begin(), plan.lost.end(), [](const auto &l) { return l.entry == "netD"; });
        QVERIFY(it != plan.lost.end());
        QVERIFY2(it->reason.starts_with("another set of weights") &&
                     it->reason.find("--weights 'netD'") != std::string::npos,
                 it->reason.c_str());
    }
    const Document doc = readDocument(test::fixturePath("weight_sets/gan_ema.pth").toStdString());
    const auto plan = planConversion(doc, "/tmp/x.safetensors",
                                     ConvertOptions().target(ConvertTarget::Safetensors).ema(true));
    std::map<std::string, std::string> lost;
    for (const auto &l : plan.lost)
        lost[l.entry] = l.reason;
    for (const std::string set : {"netD", "netD_ema"}) {
        QVERIFY2(lost.contains(set), set.c_str());
        QVERIFY2(lost[set].starts_with("another set of weights") &&
                     lost[set].find("--weights '" + set + "'") != std::string::npos &&
                     lost[set].find("metadata") == std::string::npos,
                 lost[set].c_str());
    }
    // The former model weights are said to be replaced by the EMA's.
    QVERIFY2(lost["netG"].find("replaced by the EMA weights under 'netG_ema'") != std::string::npos,
             lost["netG"].c_str());
}

// Class names that do not count the model's outputs are a warning of the plan (the window's
// conversion pane shows it); the outputs are those of the MLP the weights describe.
void TestWeightSets::classNamesCounted()
{
    const Document doc = readDocument(test::fixturePath("weight_sets/ema.pth").toStdString());
    const QJsonArray tensors =
        m_expected.value("weight_sets/ema.pth").toObject().value("sets").toObject().value("state_dict").toArray();
    // The last Linear's out_features, as torch lists its weight's shape.
    const auto outputs = tensors.last().toObject().value("shape").toArray().first().toInteger();
    QVERIFY(outputs >= 2);
    auto warned = [&](qint64 count) {
        std::vector<std::string> names;
        for (qint64 i = 0; i < count; ++i)
            names.push_back("c" + std::to_string(i));
        const auto plan = planConversion(doc, "/tmp/x.pth",
                                         ConvertOptions().target(ConvertTarget::Inference).classNames(names));
        for (const auto &w : plan.warnings)
            if (w.starts_with("--class-names gives"))
                return QString::fromStdString(w);
        return QString();
    };
    QVERIFY2(warned(outputs).isEmpty(), qPrintable(warned(outputs)));
    const QString more = warned(outputs + 1);
    QVERIFY2(more.contains(QString::number(outputs + 1) + " names") &&
                 more.contains(QString::number(outputs) + " outputs a sample"),
             qPrintable(more));
    QVERIFY(!warned(outputs - 1).isEmpty());
}

QTEST_GUILESS_MAIN(TestWeightSets)
#include "tst_weightsets.moc"
