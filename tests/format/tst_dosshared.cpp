// Denial of service through values a pickle's memo makes large: a small file can list one param
// group (or one params list) many times, give every parameter the same large state dict, list one
// scheduler many times under a long key, or name one long string as every class. The work and
// memory must follow what the file holds, not how often it refers to it. Inputs are sized so that
// the old code ran for minutes or exhausted memory.
#include "document.h"
#include "error.h"
#include "inferencemeta.h"
#include "jsonexport.h"
#include "metadata.h"
#include "optimizermap.h"
#include "picklemachine.h"
#include "security.h"

#include "valuebuilders.h"

#include <QtTest>

using namespace ckpt;

namespace {

using testvalues::dictOf;
using testvalues::str;
using testvalues::tensor;

std::string le32(std::uint32_t v)
{
    std::string p;
    for (int i = 0; i < 4; ++i)
        p += static_cast<char>((v >> (8 * i)) & 0xFF);
    return p;
}

// BINUNICODE of `text`.
std::string unicode(const std::string &text) { return "X" + le32(static_cast<std::uint32_t>(text.size())) + text; }

// The message a pickle fails with; empty when it reads.
std::string failure(const std::string &pickle)
{
    PickleMachine m;
    m.setPersistentLoad([](const ValuePtr &, std::uint64_t) { return Value::none(); });
    try {
        (void)m.run({reinterpret_cast<const std::uint8_t *>(pickle.data()), pickle.size()});
    } catch (const FormatError &e) {
        return e.what();
    }
    return {};
}

// A protocol 2 pickle that memoizes `setup`'s value as 1 (and a callable as 7 when `callable`
// is given), then runs `each` `n` times inside a list.
std::string repeated(const std::string &callable, const std::string &setup, const std::string &each, int n)
{
    std::string p = "\x80\x02";
    if (!callable.empty())
        p += callable + "q\x07";
    p += setup + "q\x01" "0";  // BINPUT 1, POP
    if (!callable.empty())
        p += "0";
    p += "(";
    for (int i = 0; i < n; ++i)
        p += each;
    return p + "l.";
}

// param_groups that list one group `groups` times, the group's params `perGroup` ids.
ValuePtr repeatedGroups(int groups, int perGroup, bool tensors)
{
    auto params = Value::list();
    for (int i = 0; i < perGroup; ++i)
        params->items().push_back(tensors ? tensor(DType::Float32, {2}) : Value::integer(i));
    const auto group = dictOf({{str("lr"), Value::floating(0.1)}, {str("params"), params}});
    auto list = Value::list();
    for (int g = 0; g < groups; ++g)
        list->items().push_back(group);
    return list;
}

} // namespace

class TestDosShared : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void groupListedManyTimesIsNotMapped();
    void groupsBelowTheLimitAreMapped();
    void pickledOptimizerOfRepeatedGroups();
    void oneLargeStateSharedByEveryParameter();
    void pickledOptimizerUnderEveryKeyIsReadOnce();
    void schedulerListedManyTimesUnderALongKey();
    void callsCopyingOneSharedValue();
    void oneLongStorageKey();
    void nestedPickleHandedToManyCalls();
    void oneLongStringAsEveryClassName();
    void deepSpeedGroupsListedManyTimes();
    void placeholderShapesListedManyTimes();
};

void TestDosShared::groupListedManyTimesIsNotMapped()
{
    // 20,000 times one group of 20,000 ids (a 160 KB pickle): 4e8 parameters, 30 GB of them.
    Document doc;
    doc.hasStateDict = true;
    doc.stateDictSource = "dict";
    doc.stateDict.push_back({"w", tensor(DType::Float32, {2})});
    doc.optimizer = dictOf({{str("state"), Value::dict()}, {str("param_groups"), repeatedGroups(20000, 20000, false)}});
    const auto map = mapOptimizer(doc);
    QVERIFY(map);
    QVERIFY(map->parameters.empty());
    QVERIFY(!map->certain);
    QVERIFY2(map->note.find("more than 1048576 parameters: not mapped") != std::string::npos, map->note.c_str());
}

void TestDosShared::groupsBelowTheLimitAreMapped()
{
    // At the limit (2^20 in all) every parameter is still listed, each in its group.
    Document doc;
    doc.hasStateDict = true;
    doc.stateDictSource = "dict";
    doc.stateDict.push_back({"w", tensor(DType::Float32, {2})});
    constexpr int groups = 1024, perGroup = 1024;
    doc.optimizer = dictOf({{str("state"), Value::dict()}, {str("param_groups"), repeatedGroups(groups, perGroup, false)}});
    const auto map = mapOptimizer(doc);
    QVERIFY(map);
    QCOMPARE(map->parameters.size(), std::size_t(groups) * perGroup);
    QCOMPARE(map->parameters.back().group, std::size_t(groups - 1));
    QCOMPARE(map->parameters.back().id, std::int64_t(perGroup - 1));
}

void TestDosShared::pickledOptimizerOfRepeatedGroups()
{
    // A pickled optimizer instance whose param_groups list one group of 20,000 tensors 20,000
    // times: renumbered and copied group by group, that was 4e8 ids.
    auto opt = Value::object(Value::global("torch.optim.adam", "Adam"), Value::tuple({}));
    opt->setState(dictOf({{str("state"), Value::dict()}, {str("param_groups"), repeatedGroups(20000, 20000, true)}}));
    QVERIFY(!pickledOptimizerState(*opt));
    // A real one's size is read as before.
    auto small = Value::object(Value::global("torch.optim.adam", "Adam"), Value::tuple({}));
    small->setState(dictOf({{str("state"), Value::dict()}, {str("param_groups"), repeatedGroups(3, 4, true)}}));
    const auto state = pickledOptimizerState(*small);
    QVERIFY(state);
    const auto groups = state->get("param_groups");
    QVERIFY(groups && groups->items().size() == 3);
    QCOMPARE(groups->items()[2]->get("params")->items().back()->asInt(), std::int64_t(11));
}

void TestDosShared::oneLargeStateSharedByEveryParameter()
{
    // 30,000 parameters whose state is one dict of 30,000 entries (one memo reference each, a
    // 400 KB pickle): each parameter's state was scanned again for every candidate it was tried
    // against, and the JSON export read its keys once per parameter (1e9 steps each).
    constexpr int n = 30000;
    auto shared = Value::dict();
    for (int k = 0; k < n; ++k)
        shared->entries().push_back({Value::integer(k), Value::integer(1)});
    shared->entries().push_back({str("exp_avg"), tensor(DType::Float32, {3})});
    auto state = Value::dict();
    auto params = Value::list();
    Document doc;
    doc.hasStateDict = true;
    doc.stateDictSource = "dict";
    for (int i = 0; i < n; ++i) {
        state->entries().push_back({Value::integer(i), shared});
        params->items().push_back(Value::integer(i));
        doc.stateDict.push_back({"layer" + std::to_string(i) + ".w", tensor(DType::Float32, {3})});
    }
    doc.optimizer = dictOf({{str("state"), state}, {str("param_groups"), Value::list({dictOf({{str("params"), params}})})}});
    doc.optimizerPath = {"optimizer"};
    const auto map = mapOptimizer(doc);
    QVERIFY(map);
    QCOMPARE(map->parameters.size(), std::size_t(n));
    // Every layer alike: names follow registration order, as a guess, each state fitting its weight.
    QVERIFY(!map->certain);
    QCOMPARE(map->parameters[123].name, std::string("layer123.w"));
    QVERIFY(std::all_of(map->parameters.begin(), map->parameters.end(), [](const OptimizerParameter &p) { return p.shapeAgrees; }));
    const auto j = documentToJson(doc);
    QCOMPARE(j["optimizer"]["state"]["count"].get<std::size_t>(), std::size_t(n));
    QCOMPARE(j["optimizer"]["state"]["keys"].size(), std::size_t(n + 1));
}

void TestDosShared::pickledOptimizerUnderEveryKeyIsReadOnce()
{
    // One object that looks like a pickled optimizer until its last param group, under 20,000 root
    // keys and 20,000 attributes of another object: it was read anew at each (8e8 groups).
    constexpr int n = 20000;
    auto groups = repeatedGroups(n, 0, false);
    groups->items().push_back(Value::integer(1));  // not a group: no optimizer after all
    auto fake = Value::object(Value::global("torch.optim.adam", "Adam"), Value::tuple({}));
    fake->setState(dictOf({{str("state"), Value::dict()}, {str("param_groups"), groups}}));
    auto attributes = Value::dict();
    auto root = Value::dict();
    for (int i = 0; i < n; ++i) {
        attributes->entries().push_back({str("a" + std::to_string(i)), fake});
        root->entries().push_back({str("k" + std::to_string(i)), fake});
    }
    auto holder = Value::object(Value::global("onmt.utils.optimizers", "Optimizer"), Value::tuple({}));
    holder->setState(attributes);
    root->entries().push_back({str("holder"), holder});
    Document doc;
    doc.root = root;
    classify(doc);
    QVERIFY(!doc.optimizer);
    // A real one under many keys is found, under the first.
    auto real = Value::object(Value::global("torch.optim.adam", "Adam"), Value::tuple({}));
    real->setState(dictOf({{str("state"), Value::dict()}, {str("param_groups"), repeatedGroups(1, 2, true)}}));
    auto realRoot = Value::dict();
    for (int i = 0; i < n; ++i)
        realRoot->entries().push_back({str("k" + std::to_string(i)), real});
    doc = Document();
    doc.root = realRoot;
    classify(doc);
    QVERIFY(doc.optimizer);
    QCOMPARE(doc.optimizerPath, KeyPath{"k0"});
    QCOMPARE(doc.optimizer->get("param_groups")->items()[0]->get("params")->items().size(), std::size_t(2));
}

void TestDosShared::schedulerListedManyTimesUnderALongKey()
{
    // One scheduler listed 50,000 times under a 100 KB key (a 200 KB pickle): each item's key
    // repeated the list's, 5 GB in all, while the document was classified.
    const std::string key(100000, 'k');
    const auto scheduler = dictOf({{str("last_epoch"), Value::integer(3)}, {str("base_lrs"), Value::list()}});
    auto list = Value::list();
    for (int i = 0; i < 50000; ++i)
        list->items().push_back(scheduler);
    Document doc;
    doc.root = dictOf({{str(key), list}, {str("epoch"), Value::integer(3)}});
    classify(doc);
    const auto states = trainingStates(doc);
    QCOMPARE(states.size(), std::size_t(64));  // the first 64 items of a list
    QCOMPARE(states.back().key, key + "/63");
    QVERIFY(states.back().kind == TrainingState::Kind::LrScheduler);
    // Lightning's own list, of one or two, is listed whole.
    doc.root = dictOf({{str("lr_schedulers"), Value::list({scheduler, scheduler})}});
    classify(doc);
    const auto two = trainingStates(doc);
    QCOMPARE(two.size(), std::size_t(2));
    QCOMPARE(two[1].key, std::string("lr_schedulers/1"));
}

void TestDosShared::oneLongStringAsEveryClassName()
{
    // A 100 KB string named 200,000 times as class names, feature names and idx_to_class (each a
    // 400 KB pickle): 20 GB when copied per name. Past 64 MiB of names the file names none.
    const auto name = str(std::string(100000, 'n'));
    auto list = Value::list();
    auto byIndex = Value::dict();
    for (int i = 0; i < 200000; ++i) {
        list->items().push_back(name);
        byIndex->entries().push_back({Value::integer(i), name});
    }
    for (const char *key : {"class_names", "names", "idx_to_class"}) {
        Document doc;
        doc.root = dictOf({{str(key), std::string(key) == "idx_to_class" || std::string(key) == "names" ? byIndex : list}});
        QVERIFY2(classNamesOf(doc).empty(), key);
    }
    Document doc;
    doc.root = dictOf({{str("feature_names"), list}});
    QVERIFY(featureNamesOf(doc).empty());
    // Names of a real size are read as before.
    doc.root = dictOf({{str("class_names"), Value::list({str("cat"), str("dog")})},
                       {str("feature_names"), Value::list({str("x"), str("y")})}});
    QCOMPARE(classNamesOf(doc), (std::vector<std::string>{"cat", "dog"}));
    QCOMPARE(featureNamesOf(doc), (std::vector<std::string>{"x", "y"}));
    doc.root = dictOf({{str("idx_to_class"), dictOf({{Value::integer(1), str("dog")}, {Value::integer(0), str("cat")}})}});
    QCOMPARE(classNamesOf(doc), (std::vector<std::string>{"cat", "dog"}));
}

void TestDosShared::callsCopyingOneSharedValue()
{
    const std::string longText = unicode(std::string(1u << 20, 'a'));
    constexpr std::string_view kSays = "bytes from values they share through the memo";
    // _codecs.encode of one 1 MiB str 30,000 times (a 200 KB pickle): 30 GB of bytes.
    const std::string encode = repeated("c_codecs\nencode\n", "(" + longText + unicode("latin1") + "t",
                                        "h\x07h\x01R", 30000);
    QVERIFY2(failure(encode).find(kSays) != std::string::npos, failure(encode).c_str());
    // STACK_GLOBAL on one 1 MiB module name 30,000 times: each copied it, and named it again.
    std::string global = "\x80\x04" + longText + "q\x07" + unicode("n") + "q\x01(";
    for (int i = 0; i < 30000; ++i)
        global += "h\x07h\x01\x93";
    global += "l.";
    QVERIFY2(failure(global).find(kSays) != std::string::npos, failure(global).c_str());
    // OrderedDict of one list of 100,000 pairs, 20,000 times: 4e9 entries.
    std::string pairs = "(";
    for (int i = 0; i < 100000; ++i)
        pairs += "J" + le32(static_cast<std::uint32_t>(i)) + "K\x01\x86";
    const std::string ordered = repeated("ccollections\nOrderedDict\n", pairs + "l\x85", "h\x07h\x01R", 20000);
    QVERIFY2(failure(ordered).find(kSays) != std::string::npos, failure(ordered).c_str());
    // Each value copied once, as Python writes them, reads: twice the pickle's size and more.
    QVERIFY2(failure(repeated("c_codecs\nencode\n", "(" + longText + unicode("latin1") + "t", "h\x07h\x01R", 2)).empty(),
             "two encodes of a shared str");
    QVERIFY(failure(repeated("ccollections\nOrderedDict\n", pairs + "l\x85", "h\x07h\x01R", 2)).empty());
}

void TestDosShared::oneLongStorageKey()
{
    // A legacy file whose storages are all named by one 1 MiB key (a memo reference each): each
    // persistent id copied the key and looked it up. torch names storages by short numbers.
    std::string file = std::string("\x80\x02\x8a\x0a") + std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10) + ".";
    file += "\x80\x02M\xe9\x03.";  // protocol version 1001
    file += "\x80\x02}.";            // sys_info
    // The persistent id ('storage', torch.FloatStorage, key, 'cpu', 1), memoized, then loaded 100,000 times.
    file += "\x80\x02(" + unicode("storage") + "ctorch\nFloatStorage\n" + unicode(std::string(1u << 20, '7')) +
            unicode("cpu") + "K\x01tq\x07(";
    for (int i = 0; i < 100000; ++i)
        file += "h\x07Q";
    file += "l.";
    try {
        (void)readDocumentFromBytes(file, "long_key.pth");
        QFAIL("read");
    } catch (const FormatError &e) {
        QVERIFY2(std::string(e.what()).find("torch writes a short number") != std::string::npos, e.what());
    }
}

void TestDosShared::nestedPickleHandedToManyCalls()
{
    // pickle.loads of one 1 MiB pickle, 20,000 times (the same bytes through the memo, and copies of
    // it that _codecs.encode makes): each was read again, 20 GB of pickle.
    const std::string inner = "\x80\x02" + unicode(std::string(1u << 20, 'p')) + "0cos\nsystem\n.";
    const auto loads = Value::global("pickle", "loads");
    const auto shared = Value::bytes(inner);
    auto list = Value::list();
    for (int i = 0; i < 20000; ++i) {
        list->items().push_back(Value::object(loads, Value::tuple({shared})));
        if (i % 200 == 0)  // 100 copies of it, each a value of its own
            list->items().push_back(Value::object(loads, Value::tuple({Value::bytes(inner.substr(0, 16) + inner.substr(16))})));
    }
    Document doc;
    doc.root = list;
    const auto report = securityReport(doc);
    QVERIFY(report.dangerous);
    const auto nested = std::count_if(report.globals.begin(), report.globals.end(), [](const GlobalVerdict &g) {
        return g.use.name == "os.system (in a pickle passed to pickle.loads)";
    });
    QCOMPARE(nested, std::ptrdiff_t(1));
}

void TestDosShared::deepSpeedGroupsListedManyTimes()
{
    // A DeepSpeed ZeRO optimizer partition whose one flat group and one param_slice_mappings dict
    // of 1,000 names of 1 KB are listed 100,000 times through the memo (a few hundred KB of
    // pickle): the note copied every name of every group, 100 GB, on each of its several calls.
    constexpr int n = 100000;
    auto names = Value::dict();
    for (int k = 0; k < 1000; ++k)
        names->entries().push_back({str(std::string(1000, 'a') + std::to_string(k)), Value::integer(k)});
    const auto flatTensor = tensor(DType::Float32, {1000});
    auto flat = Value::list();
    auto mappings = Value::list();
    for (int i = 0; i < n; ++i) {
        flat->items().push_back(flatTensor);
        mappings->items().push_back(names);
    }
    auto base = dictOf({{str("state"), Value::dict()},
                        {str("param_groups"), Value::list({dictOf({{str("params"), Value::list({Value::integer(0)})}})})}});
    Document doc;
    doc.root = dictOf({{str("optimizer_state_dict"),
                        dictOf({{str("base_optimizer_state"), base},
                                {str("single_partition_of_fp32_groups"), flat},
                                {str("param_slice_mappings"), mappings},
                                {str("zero_stage"), Value::integer(2)}})}});
    classify(doc);
    QVERIFY(doc.optimizer);
    const std::string note = deepSpeedPartition(doc);
    QVERIFY2(note.size() < 64 * 1024, qPrintable(QString::number(note.size())));
    QVERIFY2(note.find("DeepSpeed ZeRO stage 2") != std::string::npos, note.c_str());
    QVERIFY2(note.find(std::to_string(n - 16) + " more groups") != std::string::npos, note.substr(0, 4000).c_str());
    QVERIFY2(note.find("of 1000 parameters") != std::string::npos, note.substr(0, 4000).c_str());
    (void)documentToJson(doc);
}

void TestDosShared::placeholderShapesListedManyTimes()
{
    // DeepSpeed ZeRO-3 model states whose param_shapes list one dict of 100,000 names 100,000
    // times (1e10 lookups from a pickle of about a megabyte): each dict is read once.
    constexpr int n = 100000;
    auto shapes = Value::dict();
    for (int k = 0; k < n; ++k)
        shapes->entries().push_back({str("layer" + std::to_string(k) + ".weight"), Value::list({Value::integer(4)})});
    auto listed = Value::list();
    for (int i = 0; i < n; ++i)
        listed->items().push_back(shapes);
    auto module = Value::dict();
    for (int k = 0; k < 3; ++k)
        module->entries().push_back({str("layer" + std::to_string(k) + ".weight"), tensor(DType::Float16, {0})});
    Document doc;
    doc.root = dictOf({{str("module"), module}, {str("param_shapes"), listed}});
    classify(doc);
    QVERIFY2(!doc.hasStateDict, doc.noWeightsReason.c_str());
    QVERIFY2(doc.noWeightsReason.find("holds 3 empty placeholders") != std::string::npos, doc.noWeightsReason.c_str());
}

QTEST_GUILESS_MAIN(TestDosShared)
#include "tst_dosshared.moc"
