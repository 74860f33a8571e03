// A cancel reaches into one tensor's work: statistics and histograms of a tensor of many chunks
// stop at the first chunk after the cancel check says so, and never cancelled give the figures
// the plain calls give. Counted in chunks (calls of the check), not in time.
#include "comparison.h"
#include "computeloader.h"
#include "document.h"
#include "tensorref.h"
#include "value.h"

#include <QtTest>
#include <cstring>
#include <vector>

using namespace ckpt;

namespace {
constexpr std::int64_t kChunk = 1 << 20;    // the compute module's chunk, in elements
constexpr std::int64_t kChunks = 8;

// A float32 tensor of kChunks chunks on bytes in memory.
struct BigTensor {
    std::vector<float> values;
    TensorRef ref;
    explicit BigTensor(DType dtype = DType::Float32)
    {
        values.resize(static_cast<std::size_t>(kChunks * kChunk));
        for (std::size_t i = 0; i < values.size(); ++i)
            values[i] = static_cast<float>(i % 1000) - 500.0f;
        auto storage = std::make_shared<StorageRef>();
        storage->key = "0";
        storage->dtype = dtype;
        storage->declaredNumel = static_cast<std::int64_t>(values.size());
        storage->setBytes({reinterpret_cast<const std::uint8_t *>(values.data()), values.size() * sizeof(float)});
        ref.dtype = dtype;
        ref.shape = {static_cast<std::int64_t>(values.size())};
        ref.strides = {1};
        ref.storage = storage;
    }
};

// Says "cancel" from its `at`-th call on, and counts the calls.
struct CountingCancel {
    int at;
    int calls = 0;
    CancelCheck check()
    {
        return [this] { return ++calls >= at; };
    }
};
} // namespace

class TestComputeCancel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void statisticsStopWithinAChunk();
    void integerStatisticsStopWithinAChunk();
    void histogramStopsWithinAChunk();
    void differenceHistogramStopsWithinAChunk();
    void uncancelledGiveThePlainFigures();
    void seriesStopsWithinATensor();
};

void TestComputeCancel::statisticsStopWithinAChunk()
{
    const BigTensor t;
    CountingCancel cancel{3};
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, ComputeLoader::api().statistics(t.ref, cancel.check()));
    QCOMPARE(cancel.calls, 3);  // asked before each chunk; stopped at the third of 8
}

void TestComputeCancel::integerStatisticsStopWithinAChunk()
{
    const BigTensor t(DType::Int32);  // the same bytes read as int32
    CountingCancel cancel{2};
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, ComputeLoader::api().statistics(t.ref, cancel.check()));
    QCOMPARE(cancel.calls, 2);
}

void TestComputeCancel::histogramStopsWithinAChunk()
{
    const BigTensor t;
    CountingCancel cancel{kChunks + 2};  // in its second pass (the first finds the range)
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, ComputeLoader::api().histogram(t.ref, 64, cancel.check()));
    QCOMPARE(cancel.calls, kChunks + 2);
}

void TestComputeCancel::differenceHistogramStopsWithinAChunk()
{
    const BigTensor a, b;
    CountingCancel cancel{4};
    QVERIFY_THROWS_EXCEPTION(std::runtime_error,
                             ComputeLoader::api().differenceHistogram(a.ref, b.ref, 64, cancel.check()));
    QCOMPARE(cancel.calls, 4);
}

void TestComputeCancel::uncancelledGiveThePlainFigures()
{
    const BigTensor t;
    ComputeApi &api = ComputeLoader::api();
    CountingCancel never{1 << 30};
    const TensorStats s = api.statistics(t.ref, never.check());
    QCOMPARE(never.calls, int(kChunks));
    const TensorStats plain = api.statistics(t.ref);
    QCOMPARE(s.count, plain.count);
    QCOMPARE(s.mean, plain.mean);
    QCOMPARE(s.std, plain.std);
    QCOMPARE(s.min, plain.min);
    QCOMPARE(s.max, plain.max);
    const Histogram h = api.histogram(t.ref, 64, never.check());
    QCOMPARE(h.counts, api.histogram(t.ref, 64).counts);
}


namespace {
// A checkpoint whose state dict is `t` alone, named 'w'.
Document oneTensorDocument(const std::string &path, const BigTensor &t)
{
    Document d;
    d.path = path;
    d.root = Value::dict();
    d.hasStateDict = true;
    d.stateDict.push_back({"w", Value::tensor(std::make_shared<TensorRef>(t.ref))});
    return d;
}
} // namespace

// `ckpt series` and the Series view: a cancel reaches inside the first checkpoint's tensor, before
// its pass ends (no tensor done, progress never called); never cancelled, the figures are the same.
void TestComputeCancel::seriesStopsWithinATensor()
{
    const BigTensor a, b;
    const Document da = oneTensorDocument("a.pt", a), db = oneTensorDocument("b.pt", b);
    CountingCancel cancel{3};
    int tensorsDone = 0;
    const auto progress = [&tensorsDone](std::size_t, std::size_t) { return ++tensorsDone > 0; };
    QVERIFY_THROWS_EXCEPTION(std::runtime_error,
                             computeSeries({&da, &db}, ComputeLoader::api(), progress, cancel.check()));
    QCOMPARE(cancel.calls, 3);
    QCOMPARE(tensorsDone, 0);

    const Series plain = computeSeries({&da, &db}, ComputeLoader::api());
    const Series asked = computeSeries({&da, &db}, ComputeLoader::api(), {}, [] { return false; });
    QCOMPARE(asked.layers.size(), std::size_t(1));
    QCOMPARE(asked.layers[0].norm, plain.layers[0].norm);
    QCOMPARE(asked.layers[0].driftFromPrevious, plain.layers[0].driftFromPrevious);
}

QTEST_GUILESS_MAIN(TestComputeCancel)
#include "tst_computecancel.moc"
