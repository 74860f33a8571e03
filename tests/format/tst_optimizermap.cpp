// The optimizer mapping's search over whole layers is bounded: parameters without state (SGD without
// momentum) fit a layer of any shape, so each position could try every layer of the model.
#include "document.h"
#include "optimizermap.h"
#include "tensorref.h"

#include "valuebuilders.h"

#include <QtTest>

using namespace ckpt;

namespace {

using testvalues::dictOf;
using testvalues::tensor;

} // namespace

class TestOptimizerMap : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void statelessParametersOfManyLayers();
};

void TestOptimizerMap::statelessParametersOfManyLayers()
{
    // 60,000 layers of one parameter each, every one of its own shape, and an optimizer without
    // state: every split of the parameters into layers fits, 60,000 tries at each of 60,000
    // positions (3.6e9) without a bound.
    constexpr int n = 60000;
    Document doc;
    doc.hasStateDict = true;
    doc.stateDictSource = "dict";
    auto params = Value::list();
    for (int i = 0; i < n; ++i) {
        doc.stateDict.push_back({"layer" + std::to_string(i) + ".weight", tensor({i + 1})});
        params->items().push_back(Value::integer(i));
    }
    doc.optimizer =
        dictOf({{Value::string("state"), Value::dict()},
                {Value::string("param_groups"), Value::list({dictOf({{Value::string("params"), params}})})}});
    QElapsedTimer timer;
    timer.start();
    const auto map = mapOptimizer(doc);
    QVERIFY2(timer.elapsed() < 30000, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(map);
    QCOMPARE(map->parameters.size(), std::size_t(n));
    // Nothing in the file tells the order: names follow registration order, and it is said.
    QVERIFY(!map->certain);
    QVERIFY2(map->note.find("names follow registration order") != std::string::npos, map->note.c_str());
    QCOMPARE(map->parameters[42].name, std::string("layer42.weight"));
}

QTEST_GUILESS_MAIN(TestOptimizerMap)
#include "tst_optimizermap.moc"
