// Denial of service: small inputs that once made quadratic work or output (long keys shared through
// the memo and nested deep, a string referenced many times, dicts of many keys, an optimizer of
// many parameters, nesting made after the fact). Each test asserts what bounded work yields; the
// inputs are sized so that the old code would run for minutes or exhaust memory.
#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "keyalign.h"
#include "metadata.h"
#include "optimizermap.h"
#include "picklemachine.h"
#include "tensorref.h"

#include "valuebuilders.h"

#include <QtTest>

using namespace ckpt;
using json = nlohmann::ordered_json;

namespace {

using testvalues::dictOf;
using testvalues::str;
using testvalues::tensor;

// `levels` dicts nested one in the next, each under the same (shared) key; `leaf` at the bottom.
ValuePtr chain(const ValuePtr &key, int levels, const ValuePtr &leaf)
{
    ValuePtr v = leaf;
    for (int i = 0; i < levels; ++i)
        v = dictOf({{key, v}});
    return v;
}

std::span<const std::uint8_t> bytesOf(const std::string &s)
{
    return {reinterpret_cast<const std::uint8_t *>(s.data()), s.size()};
}

void le32(std::string &p, std::uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p += static_cast<char>((v >> (8 * i)) & 0xFF);
}

// A pickle whose root list holds a chain of `levels` lists, each appended to its parent while
// still empty and filled afterwards: heights noted at APPEND stay at 1.
std::string lateNestedLists(std::uint32_t levels, bool dicts)
{
    std::string p = "\x80\x02";
    p += dicts ? '}' : ']';
    p += 'r';
    le32(p, 0);
    for (std::uint32_t i = 1; i <= levels; ++i) {
        p += 'j';  // LONG_BINGET the previous container
        le32(p, i - 1);
        if (dicts) {
            p += "K\x01";  // BININT1 1: the key
        }
        p += dicts ? '}' : ']';
        p += 'r';  // LONG_BINPUT
        le32(p, i);
        p += dicts ? 's' : 'a';  // SETITEM / APPEND into the previous one
        p += '0';                // POP it
    }
    p += 'j';
    le32(p, 0);
    p += '.';
    return p;
}

} // namespace

class TestDos : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void tensorPathsOfLongNestedKeys();
    void tensorPathsPastTheBudget();
    void jsonPathsOfLongNestedKeys();
    void jsonRepeatedStringIsReferenced();
    void jsonBudgetAcrossWriters();
    void jsonSharedOptimizerStateOnce();
    void plainJsonWritesSharedValuesInFull();
    void plainJsonRefusesCyclesAndBlowUp();
    void jsonDictOfManyKeys();
    void parseOrderedJsonIsLinearAndKeepsOrder();
    void metadataJsonOfManyKeys();
    void optimizerOfManyParameters();
    void optimizerNamesOfOneSharedString();
    void optimizerSkipsIntegerAndUnfitBuffers();
    void optimizerEqualCountsAfterDroppingIntegers();
    void wrapperPrefixOfLongName();
    void lateNestingIsLimited_data();
    void lateNestingIsLimited();
};

void TestDos::tensorPathsOfLongNestedKeys()
{
    // 400 levels under a 1 MiB key: the old walk built each level's path (400 x 200 MiB on average).
    const auto key = str(std::string(1u << 20, 'k'));
    auto t = tensor(DType::Float32, {2});
    auto deep = chain(key, 400, Value::none());
    auto shallow = chain(key, 3, t);
    Document doc;
    doc.root = dictOf({{str("deep"), deep}, {str("shallow"), shallow}});
    classify(doc);
    QCOMPARE(doc.tensors.size(), std::size_t(1));
    const std::string k(1u << 20, 'k');
    QCOMPARE(doc.tensors[0].name, "shallow." + k + "." + k + "." + k);
}

void TestDos::tensorPathsPastTheBudget()
{
    // A tensor under 300 levels of a 1 MiB key would be named by 300 MiB: refused, clearly.
    const auto key = str(std::string(1u << 20, 'k'));
    Document doc;
    doc.root = dictOf({{str("x"), chain(key, 300, tensor(DType::Float32, {2}))}});
    try {
        classify(doc);
        QFAIL("expected a refusal");
    } catch (const FormatError &e) {
        QVERIFY2(QString(e.what()).contains("paths together are longer"), e.what());
    }
}

void TestDos::jsonPathsOfLongNestedKeys()
{
    // A container shared at the bottom of 300 levels of a 32 KiB key: the old writer kept every
    // container's full path (300 x 4.8 MiB on average); the __ref__ must still name the first path.
    const std::string k(32u << 10, 'k');
    const auto key = str(k);
    auto shared = Value::list({Value::integer(1)});
    auto root = dictOf({{str("a"), chain(key, 300, shared)}, {str("b"), shared}});
    const json j = valueToJson(root);
    std::string expected = "a";
    for (int i = 0; i < 300; ++i)
        expected += "/" + k;
    QCOMPARE(j["b"]["__ref__"].get<std::string>(), expected);
}

void TestDos::jsonRepeatedStringIsReferenced()
{
    // One 1 MiB string referenced 20,000 times: 20 GB written out before, about 1 MiB now.
    const auto big = str(std::string(1u << 20, 's'));
    std::vector<ValuePtr> items(20000, big);
    auto root = dictOf({{str("notes"), Value::list(items)}});
    const std::string text = valueToJson(root).dump();
    QVERIFY2(text.size() < (2u << 20), qPrintable(QString::number(text.size())));
    const json j = json::parse(text);
    QCOMPARE(j["notes"][0].get<std::string>().size(), std::size_t(1u << 20));
    QCOMPARE(j["notes"][19999]["__ref__"].get<std::string>(), std::string("notes/0"));
    // Short strings are written each time, as before.
    const auto small = str("abc");
    const json s = valueToJson(Value::list({small, small}));
    QCOMPARE(s.dump(), std::string(R"(["abc","abc"])"));
}

void TestDos::plainJsonWritesSharedValuesInFull()
{
    // What Python's json.dump writes for a config sharing a long string and a list: each place in
    // full. A sidecar or a safetensors metadata value read by another program holds no __ref__.
    const auto text = str(std::string(2000, 'x'));
    auto layers = Value::list({Value::integer(1), Value::integer(2)});
    auto inner = dictOf({{str("layers"), layers}});
    auto root = dictOf({{str("desc"), text}, {str("again"), text}, {str("a"), inner}, {str("b"), inner},
                        {str("c"), layers}});
    PlainJsonBudget budget;
    const json plain = valueToPlainJson(root, "sidecar", budget);
    QCOMPARE(plain["again"].get<std::string>(), std::string(2000, 'x'));
    QCOMPARE(plain["b"].dump(), std::string(R"({"layers":[1,2]})"));
    QCOMPARE(plain["c"].dump(), std::string("[1,2]"));
    QVERIFY(plain.dump().find("__ref__") == std::string::npos);
    // valueToJson (what `info --json` shows) still writes each shared value once.
    const json shown = valueToJson(root);
    QCOMPARE(shown["again"]["__ref__"].get<std::string>(), std::string("desc"));
    QCOMPARE(shown["b"]["__ref__"].get<std::string>(), std::string("a"));
    // A value shared by siblings is not a cycle, however deep.
    auto leaf = Value::list({Value::integer(7)});
    ValuePtr v = leaf;
    for (int i = 0; i < 10; ++i)
        v = Value::list({v, v});
    const json tree = valueToPlainJson(v, "sidecar", budget);
    QCOMPARE(tree[1][0][1][1][0][0][1][0][1][1][0].get<int>(), 7);
}

void TestDos::plainJsonRefusesCyclesAndBlowUp()
{
    // A list containing itself: JSON cannot hold it; the error names the path.
    auto self = Value::list({Value::integer(1)});
    auto holder = dictOf({{str("loop"), self}});
    self->items().push_back(holder);
    struct BreakCycle {  // shared pointers in a cycle are never freed (LeakSanitizer says so)
        ValuePtr list;
        ~BreakCycle() { list->items().clear(); }
    } breakCycle{self};
    try {
        PlainJsonBudget budget;
        valueToPlainJson(dictOf({{str("config"), self}}), "JSON text", budget);
        QFAIL("expected a refusal");
    } catch (const FormatError &e) {
        QVERIFY2(QString(e.what()).startsWith("JSON text: 'config/1/loop' contains itself"), e.what());
    }
    // A list holding one list twice, 60 levels deep: 2^60 leaves written out in full. A few
    // hundred bytes of pickle; stopped at the plain-JSON budget, quickly and saying why.
    ValuePtr v = Value::list({Value::integer(1)});
    for (int i = 0; i < 60; ++i)
        v = Value::list({v, v});
    PlainJsonBudget budget;
    try {
        valueToPlainJson(v, "sidecar entry 'x'", budget);
        QFAIL("expected a refusal");
    } catch (const FormatError &e) {
        QVERIFY2(QString(e.what()).contains("sidecar entry 'x': past the 16384 KiB of JSON"), e.what());
    }
    QCOMPARE(budget.left, std::size_t{0});
    // One budget for every value made for one purpose: 2,000 keys of a sidecar sharing one list
    // of 1 MiB as JSON stop at 16 of them (not 2 GB of JSON), the rest refused at once.
    auto list = Value::list(std::vector<ValuePtr>(1u << 17, Value::integer(1234567)));
    PlainJsonBudget shared;
    int written = 0, refused = 0;
    for (int i = 0; i < 2000; ++i) {
        try {
            valueToPlainJson(list, "key " + std::to_string(i), shared);
            ++written;
        } catch (const FormatError &) {
            ++refused;
        }
    }
    QVERIFY2(written > 0 && written < 16 && refused == 2000 - written, qPrintable(QString::number(written)));
}

void TestDos::jsonBudgetAcrossWriters()
{
    // The optimizer's per-parameter states are written one by one: a 1 MiB string in each of
    // 2,000 states (2 GB) is cut at the document's budget and marked.
    const auto big = str(std::string(1u << 20, 's'));
    auto state = Value::dict();
    auto params = Value::list();
    for (int i = 0; i < 2000; ++i) {
        state->entries().push_back({Value::integer(i), dictOf({{str("note"), big}})});
        params->items().push_back(Value::integer(i));
    }
    auto groups = Value::list({dictOf({{str("params"), params}})});
    Document doc;
    doc.root = dictOf({{str("optimizer"), dictOf({{str("state"), state}, {str("param_groups"), groups}})}});
    classify(doc);
    QVERIFY(doc.optimizer);
    const std::string text = documentToJson(doc).dump();
    QVERIFY2(text.size() < (200u << 20), qPrintable(QString::number(text.size())));
    QVERIFY(text.find("\"__truncated__\":\"output limit\"") != std::string::npos);
}

void TestDos::jsonSharedOptimizerStateOnce()
{
    // One state dict given to 20,000 parameters through the memo: written once, then a __ref__.
    auto shared = dictOf({{str("step"), Value::integer(1)}, {str("note"), str(std::string(1u << 16, 's'))}});
    auto state = Value::dict();
    auto params = Value::list();
    for (int i = 0; i < 20000; ++i) {
        state->entries().push_back({Value::integer(i), shared});
        params->items().push_back(Value::integer(i));
    }
    auto group = dictOf({{str("params"), params}});
    auto groups = Value::list({group, group});  // one group listed twice, too
    Document doc;
    doc.root = dictOf({{str("optimizer"), dictOf({{str("state"), state}, {str("param_groups"), groups}})}});
    classify(doc);
    QVERIFY(doc.optimizer);
    const json j = documentToJson(doc);
    const std::string text = j.dump();
    QVERIFY2(text.size() < (8u << 20), qPrintable(QString::number(text.size())));
    QCOMPARE(j["optimizer"]["param_groups"][1], (json{{"__ref__", "param_groups/0"}}));
}

void TestDos::jsonDictOfManyKeys()
{
    // 200,000 keys: ordered_json's operator[] searched all earlier keys for each (2e10 compares).
    auto d = Value::dict();
    for (int i = 0; i < 200000; ++i)
        d->entries().push_back({str("k" + std::to_string(i)), Value::integer(i)});
    // A repeated key text keeps its first place and its last value, as before.
    d->entries().push_back({Value::integer(7), Value::integer(-1)});
    d->entries().push_back({str("7"), Value::integer(-2)});
    const json j = valueToJson(d);
    QCOMPARE(j.size(), std::size_t(200001));
    QCOMPARE(j.begin().key(), std::string("k0"));
    QCOMPARE(j.get_ref<const json::object_t &>().back().first, std::string("7"));
    QCOMPARE(j["7"].get<int>(), -2);
    QCOMPARE(j["k199999"].get<int>(), 199999);
}

void TestDos::parseOrderedJsonIsLinearAndKeepsOrder()
{
    std::string text = "{";
    for (int i = 0; i < 200000; ++i)
        text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
    text += "}";
    const json j = parseOrderedJson(text);
    QCOMPARE(j.size(), std::size_t(200000));
    QCOMPARE(j.begin().key(), std::string("k0"));
    QCOMPARE(j["k123456"].get<int>(), 123456);
    // Same as nlohmann's parse on small inputs, duplicates included.
    for (const char *t : {R"({"a":1,"b":[1,{"c":null,"a":2}],"a":3})", R"([1.5,"x",true,{}])", "42", R"("s")"})
        QCOMPARE(parseOrderedJson(t).dump(), json::parse(t).dump());
    QVERIFY(parseOrderedJson("{\"a\":").is_discarded());
    QVERIFY(parseOrderedJson("[[[1]]]", 2).is_discarded());
    QVERIFY(!parseOrderedJson("[[1]]", 2).is_discarded());
}

void TestDos::metadataJsonOfManyKeys()
{
    std::string text = "{";
    for (int i = 0; i < 200000; ++i)
        text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
    text += "}";
    Document doc;
    doc.formatMetadata = dictOf({{str("config"), str(text)}});
    const auto v = formatMetadataValue(doc, "config");
    QVERIFY(v && v->isDict());
    QCOMPARE(v->entries().size(), std::size_t(200000));
    QCOMPARE(v->entries().back().key->text(), std::string("k199999"));
}

void TestDos::optimizerOfManyParameters()
{
    // 100,000 parameters: each id was looked up among all state entries (1e10 compares).
    constexpr int n = 100000;
    auto state = Value::dict();
    auto params = Value::list();
    Document doc;
    doc.hasStateDict = true;
    doc.stateDictSource = "dict";
    for (int i = 0; i < n; ++i) {
        state->entries().push_back({Value::integer(n - 1 - i), dictOf({{str("exp_avg"), tensor(DType::Float32, {3})}})});
        params->items().push_back(Value::integer(i));
        doc.stateDict.push_back({"w" + std::to_string(i), tensor(DType::Float32, {3})});
    }
    doc.optimizer = dictOf({{str("state"), state}, {str("param_groups"), Value::list({dictOf({{str("params"), params}})})}});
    const auto map = mapOptimizer(doc);
    QVERIFY(map);
    QCOMPARE(map->parameters.size(), std::size_t(n));
    QVERIFY(map->certain);
    QCOMPARE(map->parameters[42].name, std::string("w42"));
    QCOMPARE(map->parameters[42].state.get(), state->entries()[n - 1 - 42].value.get());
}

void TestDos::optimizerNamesOfOneSharedString()
{
    // param_names naming one 100 KB string 200,000 times (a memo makes that a 1.4 MB pickle):
    // copied per parameter it was 20 GB. The names are bounded; past that they are not read.
    constexpr int n = 200000;
    const auto name = str(std::string(100000, 'x'));
    auto params = Value::list();
    auto names = Value::list();
    for (int i = 0; i < n; ++i) {
        params->items().push_back(Value::integer(i));
        names->items().push_back(name);
    }
    Document doc;
    doc.hasStateDict = true;
    doc.stateDictSource = "dict";
    doc.stateDict.push_back({"w", tensor(DType::Float32, {3})});
    doc.optimizer = dictOf({{str("state"), Value::dict()},
                            {str("param_groups"), Value::list({dictOf({{str("params"), params}, {str("param_names"), names}})})}});
    const auto map = mapOptimizer(doc);
    QVERIFY(map);
    QVERIFY(!map->certain);
    QVERIFY(map->parameters.empty());
    QVERIFY2(map->note.find("MiB: not read") != std::string::npos, map->note.c_str());
}

void TestDos::optimizerSkipsIntegerAndUnfitBuffers()
{
    // A masked autoregressive flow, as Lightning saved it: an int64 `permutation` and float masks
    // of the weights' shapes are buffers; Adam keeps state for the weights and biases only.
    Document doc;
    doc.hasStateDict = true;
    doc.stateDictSource = "dict";
    auto state = Value::dict();
    auto params = Value::list();
    std::vector<std::string> expected;
    std::int64_t id = 0;
    for (int t = 0; t < 2; ++t) {
        const std::string p = "flow." + std::to_string(t) + ".";
        doc.stateDict.push_back({p + "permutation", tensor(DType::Int64, {2})});
        const std::vector<std::vector<std::int64_t>> shapes{{128, 2}, {128}, {4, 128}, {4}};
        const char *names[] = {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"};
        for (int l = 0; l < 4; ++l) {
            doc.stateDict.push_back({p + names[l], tensor(DType::Float32, shapes[l])});
            // Each layer's mask, of its weight's shape, comes after its bias.
            if (l == 1)
                doc.stateDict.push_back({p + "layers.0.mask", tensor(DType::Float32, {128, 2})});
            if (l == 3)
                doc.stateDict.push_back({p + "layers.1.mask", tensor(DType::Float32, {4, 128})});
            expected.push_back(p + names[l]);
            state->entries().push_back({Value::integer(id), dictOf({{str("exp_avg"), tensor(DType::Float32, shapes[l])},
                                                                    {str("step"), Value::integer(5)}})});
            params->items().push_back(Value::integer(id++));
        }
    }
    doc.optimizer = dictOf({{str("state"), state}, {str("param_groups"), Value::list({dictOf({{str("params"), params}})})}});
    const auto map = mapOptimizer(doc);
    QVERIFY(map);
    std::vector<std::string> got;
    for (const auto &p : map->parameters) {
        got.push_back(p.name);
        QVERIFY(p.shapeAgrees);
    }
    QCOMPARE(got, expected);
    QVERIFY2(map->note.find("by registration order and shape") != std::string::npos, map->note.c_str());
}

void TestDos::optimizerEqualCountsAfterDroppingIntegers()
{
    // Integer and bool tensors are never an optimizer's: left out, the counts agree and it is certain.
    Document doc;
    doc.hasStateDict = true;
    doc.stateDictSource = "dict";
    doc.stateDict.push_back({"perm", tensor(DType::Int64, {4})});
    doc.stateDict.push_back({"w", tensor(DType::Float32, {4, 4})});
    doc.stateDict.push_back({"keep", tensor(DType::Bool, {4})});
    doc.stateDict.push_back({"b", tensor(DType::Float32, {4})});
    auto state = dictOf({{Value::integer(0), dictOf({{str("momentum_buffer"), tensor(DType::Float32, {4, 4})}})},
                         {Value::integer(1), dictOf({{str("momentum_buffer"), tensor(DType::Float32, {4})}})}});
    auto params = Value::list({Value::integer(0), Value::integer(1)});
    doc.optimizer = dictOf({{str("state"), state}, {str("param_groups"), Value::list({dictOf({{str("params"), params}})})}});
    const auto map = mapOptimizer(doc);
    QVERIFY(map);
    QVERIFY2(map->certain, map->note.c_str());
    QCOMPARE(map->parameters[0].name, std::string("w"));
    QCOMPARE(map->parameters[1].name, std::string("b"));
}

void TestDos::wrapperPrefixOfLongName()
{
    // "module." 150,000 times: each peeled step copied and compared the whole prefix again.
    std::string prefix;
    for (int i = 0; i < 150000; ++i)
        prefix += "module.";
    const std::vector<std::string> names{prefix + "weight", prefix + "bias"};
    QCOMPARE(commonWrapperPrefix(names), prefix);
    QCOMPARE(commonWrapperPrefix({"module._orig_mod.fc.weight", "module._orig_mod.fc.bias"}),
             std::string("module._orig_mod."));
    QCOMPARE(commonWrapperPrefix({"module.fc.weight", "fc.bias"}), std::string());
    QCOMPARE(commonWrapperPrefix({"module."}), std::string());  // a prefix is never the whole name
    const auto a = alignKeys(names, {"weight", "bias"});
    QCOMPARE(a.pairs.size(), std::size_t(2));
}

void TestDos::lateNestingIsLimited_data()
{
    QTest::addColumn<quint32>("levels");
    QTest::addColumn<bool>("dicts");
    QTest::addColumn<bool>("opens");
    QTest::newRow("lists at the limit") << quint32(PickleLimits::kMaxDepth) << false << true;
    QTest::newRow("lists past the limit") << quint32(PickleLimits::kMaxDepth + 1) << false << false;
    QTest::newRow("lists 200k deep") << quint32(200000) << false << false;
    QTest::newRow("dicts at the limit") << quint32(PickleLimits::kMaxDepth) << true << true;
    QTest::newRow("dicts 200k deep") << quint32(200000) << true << false;
}

void TestDos::lateNestingIsLimited()
{
    QFETCH(quint32, levels);
    QFETCH(bool, dicts);
    QFETCH(bool, opens);
    const std::string pickle = lateNestedLists(levels, dicts);
    PickleMachine m;
    try {
        const auto r = m.run(bytesOf(pickle));
        QVERIFY2(opens, "expected the nesting limit");
        QCOMPARE(treeHeight(*r.value, PickleLimits::kMaxDepth), levels);
        // What reads the tree stays within the limit, on the stack too.
        (void)valueToJson(r.value).dump();
        Document doc;
        doc.root = r.value;
        classify(doc);
    } catch (const FormatError &e) {
        QVERIFY2(!opens, e.what());
        QVERIFY2(QString(e.what()).contains("nesting deeper than the limit"), e.what());
    }
}

QTEST_GUILESS_MAIN(TestDos)
#include "tst_dos.moc"
