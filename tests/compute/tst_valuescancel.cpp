// A cancel reaches into values(), integers() and difference() as it reaches into statistics():
// a values page of a huge tensor and a comparison of two huge tensors stop at the first chunk
// after the cancel check says so, throwing rather than returning part of a result; a comparison
// of documents so cancelled throws, rather than listing the tensor as unreadable; never cancelled,
// they give what the plain calls give. Counted in chunks (calls of the check), not in time. The
// values of a non-contiguous tensor read a range at a time are its row-major values (judged by
// the plain flat order the strides give).
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
constexpr std::int64_t kChunk = 1 << 20;  // the compute module's chunk, in elements
constexpr std::int64_t kChunks = 8;

// A tensor of kChunks chunks of 4-byte elements on bytes in memory; `offset` shifts the values, so
// two tensors made with different offsets differ everywhere.
struct BigTensor {
    std::vector<float> values;
    std::shared_ptr<TensorRef> ref = std::make_shared<TensorRef>();
    explicit BigTensor(DType dtype = DType::Float32, float offset = 0)
    {
        values.resize(static_cast<std::size_t>(kChunks * kChunk));
        for (std::size_t i = 0; i < values.size(); ++i)
            values[i] = static_cast<float>(i % 1000) - 500.0f + offset;
        auto storage = std::make_shared<StorageRef>();
        storage->key = "0";
        storage->dtype = dtype;
        storage->declaredNumel = static_cast<std::int64_t>(values.size());
        storage->setBytes({reinterpret_cast<const std::uint8_t *>(values.data()), values.size() * sizeof(float)});
        ref->dtype = dtype;
        ref->shape = {static_cast<std::int64_t>(values.size())};
        ref->strides = {1};
        ref->storage = storage;
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

// A document whose state dict is the one tensor `t`, named "w".
Document documentOf(const BigTensor &t)
{
    Document d;
    d.hasStateDict = true;
    d.stateDict.push_back({"w", Value::tensor(t.ref)});
    return d;
}
} // namespace

class TestValuesCancel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void valuesStopWithinAChunk();
    void integersStopWithinAChunk();
    void differenceStopsWithinAChunk();
    void identicalBytesStopWithinAChunk();
    void integerDifferenceStopsWithinAChunk();
    void cancelledComparisonThrows();
    void uncancelledGiveThePlainResults();
    void nonContiguousRangesAreRowMajor();
};

void TestValuesCancel::valuesStopWithinAChunk()
{
    const BigTensor t;
    CountingCancel cancel{5};
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, ComputeLoader::api().values(*t.ref, 0, t.ref->numel(), false, cancel.check()));
    QCOMPARE(cancel.calls, 5);  // asked before and after reading the tensor, then before each chunk: the third of 8
}

void TestValuesCancel::integersStopWithinAChunk()
{
    const BigTensor t(DType::Int32);  // the same bytes read as int32
    CountingCancel cancel{4};
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, ComputeLoader::api().integers(*t.ref, 0, t.ref->numel(), cancel.check()));
    QCOMPARE(cancel.calls, 4);
}

void TestValuesCancel::differenceStopsWithinAChunk()
{
    const BigTensor a, b(DType::Float32, 1.0f);  // the bytes differ at once: compared chunk by chunk
    CountingCancel cancel{5};
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, ComputeLoader::api().difference(*a.ref, *b.ref, 0, 0, cancel.check()));
    QCOMPARE(cancel.calls, 5);
}

void TestValuesCancel::identicalBytesStopWithinAChunk()
{
    const BigTensor a, b;  // equal bytes: the byte comparison itself runs over every chunk
    CountingCancel cancel{3};
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, ComputeLoader::api().difference(*a.ref, *b.ref, 0, 0, cancel.check()));
    QCOMPARE(cancel.calls, 3);
}

void TestValuesCancel::integerDifferenceStopsWithinAChunk()
{
    const BigTensor a(DType::Int32), b(DType::Int32, 1.0f);
    CountingCancel cancel{4};
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, ComputeLoader::api().difference(*a.ref, *b.ref, 0, 0, cancel.check()));
    QCOMPARE(cancel.calls, 4);
}

void TestValuesCancel::cancelledComparisonThrows()
{
    const BigTensor a, b(DType::Float32, 1.0f);
    const Document da = documentOf(a), db = documentOf(b);
    CountingCancel cancel{4};
    CompareOptions options;
    options.cancelled(cancel.check());
    bool threw = false;
    try {
        const Comparison c = compareDocuments(da, db, ComputeLoader::api(), options);
        QFAIL(qPrintable(QStringLiteral("a cancelled comparison returned %1 tensors, the first %2")
                             .arg(c.tensors.size())
                             .arg(c.tensors.empty() ? QString() : QString::fromStdString(c.tensors.front().error))));
    } catch (const std::runtime_error &e) {
        threw = true;
        QCOMPARE(QString::fromUtf8(e.what()), QStringLiteral("comparison cancelled"));
    }
    QVERIFY(threw);
    // Stopped inside the tensor at its second chunk of 8 (after the byte comparison's one), then
    // asked once more to tell the cancel from a tensor that does not read.
    QCOMPARE(cancel.calls, 5);
}

void TestValuesCancel::uncancelledGiveThePlainResults()
{
    const BigTensor a, b(DType::Float32, 0.5f);
    ComputeApi &api = ComputeLoader::api();
    CountingCancel never{1 << 30};
    QCOMPARE(api.values(*a.ref, 3, 2 * kChunk + 7, false, never.check()), api.values(*a.ref, 3, 2 * kChunk + 7));
    QVERIFY(never.calls > 2);
    const BigTensor ia(DType::Int32);
    QCOMPARE(api.integers(*ia.ref, kChunk - 1, 5, never.check()), api.integers(*ia.ref, kChunk - 1, 5));
    const TensorDiff d = api.difference(*a.ref, *b.ref, 0, 0, never.check()), plain = api.difference(*a.ref, *b.ref, 0, 0);
    QCOMPARE(d.count, plain.count);
    QCOMPARE(d.outside, plain.outside);
    QCOMPARE(d.maxAbs, plain.maxAbs);
    QCOMPARE(d.sumAbs, plain.sumAbs);
    QCOMPARE(d.maxAbs, 0.5);
    const Document da = documentOf(a), db = documentOf(b);
    CompareOptions options;
    options.cancelled(never.check());
    const Comparison c = compareDocuments(da, db, api, options);
    QCOMPARE(c.tensors.size(), std::size_t(1));
    QVERIFY(c.tensors.front().error.empty());
    QCOMPARE(c.tensors.front().diff.maxAbs, 0.5);
}

// A [4, 5, 6] tensor seen through the strides of a permute(2, 0, 1): any range of its row-major
// order, read with values() and integers(), is the elements the strides say, in that order.
void TestValuesCancel::nonContiguousRangesAreRowMajor()
{
    std::vector<float> data(120);
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<float>(i);
    auto storage = std::make_shared<StorageRef>();
    storage->key = "0";
    storage->dtype = DType::Float32;
    storage->declaredNumel = 120;
    storage->setBytes({reinterpret_cast<const std::uint8_t *>(data.data()), data.size() * sizeof(float)});
    TensorRef ref;
    ref.dtype = DType::Float32;
    ref.shape = {6, 4, 5};
    ref.strides = {1, 30, 6};  // [4, 5, 6] contiguous, permuted (2, 0, 1)
    ref.storage = storage;
    std::vector<double> rowMajor;
    for (std::int64_t i = 0; i < 6; ++i)
        for (std::int64_t j = 0; j < 4; ++j)
            for (std::int64_t k = 0; k < 5; ++k)
                rowMajor.push_back(data[static_cast<std::size_t>(i + 30 * j + 6 * k)]);
    ComputeApi &api = ComputeLoader::api();
    for (std::int64_t first : {0, 1, 4, 5, 19, 20, 21, 37, 60, 119})
        for (std::int64_t count : {0, 1, 3, 5, 20, 21, 47, 120}) {
            const std::int64_t end = std::min<std::int64_t>(first + count, 120);
            const std::vector<double> want(rowMajor.begin() + first, rowMajor.begin() + end);
            QCOMPARE(api.values(ref, first, count), want);
        }
    TensorRef ints = ref;
    ints.dtype = DType::Int32;
    auto intStorage = std::make_shared<StorageRef>();
    intStorage->key = "1";
    intStorage->dtype = DType::Int32;
    intStorage->declaredNumel = 120;
    std::vector<std::int32_t> idata(120);
    for (std::size_t i = 0; i < idata.size(); ++i)
        idata[i] = static_cast<std::int32_t>(i);
    intStorage->setBytes({reinterpret_cast<const std::uint8_t *>(idata.data()), idata.size() * sizeof(std::int32_t)});
    ints.storage = intStorage;
    const std::vector<std::int64_t> got = api.integers(ints, 21, 47);
    QCOMPARE(got.size(), std::size_t(47));
    for (std::size_t i = 0; i < got.size(); ++i)
        QCOMPARE(static_cast<double>(got[i]), rowMajor[21 + i]);
}

QTEST_GUILESS_MAIN(TestValuesCancel)
#include "tst_valuescancel.moc"
