// A storage produced on use (a deflated record inflated) is held while a consumer uses it and given
// back after: a pass over many storages holds one at a time, not all of them for good.
#include "document.h"
#include "tensorref.h"

#include <QTest>

#include <atomic>
#include <latch>
#include <set>
#include <thread>

using namespace ckpt;

namespace {
// A storage of `size` bytes of 7 whose loader counts its calls.
std::shared_ptr<StorageRef> counted(std::size_t size, std::atomic<int> &loads,
                                    StorageRef::Reuse reuse = StorageRef::Reuse::KeepWhenProducedTwice)
{
    auto s = std::make_shared<StorageRef>();
    s->dtype = DType::UInt8;
    s->setLoader(size, [&loads, size] {
        ++loads;
        return std::make_shared<const std::vector<std::uint8_t>>(size, std::uint8_t(7));
    }, reuse);
    return s;
}
} // namespace

class TestHeldBytes : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void loadsOnceWhileHeldAndAgainAfter();
    void lookAheadDoesNotKeepTheWrite();
    void neverKeptStorageIsGivenBackEachTime();
    void tensorSpanHoldsItsStorage();
    void dataKeepsItsPromise();
    void concurrentHoldersShareOneLoad();
    void deflatedFixtureGivesItsBytesBack();
};

void TestHeldBytes::loadsOnceWhileHeldAndAgainAfter()
{
    std::atomic<int> loads = 0;
    const auto s = counted(64, loads);
    std::weak_ptr<const void> watch;
    {
        const HeldBytes a = s->hold();
        const HeldBytes b = s->bulkData();
        QCOMPARE(loads.load(), 1);  // the second holder shares the first one's bytes
        QCOMPARE(a.data(), b.data());
        QCOMPARE(a.size(), std::size_t(64));
        QCOMPARE(a[63], std::uint8_t(7));
        watch = a.keep;
    }
    QVERIFY(watch.expired());  // the holders gone, the inflated bytes are freed
    QCOMPARE(s->hold().size(), std::size_t(64));
    QCOMPARE(loads.load(), 2);  // produced again when asked for again
    // Asked for again after that (many views of one record, read apart): kept from its second
    // production on, so that N views cost two productions, not N.
    for (int i = 0; i < 10; ++i)
        QCOMPARE(s->hold()[0], std::uint8_t(7));
    QCOMPARE(loads.load(), 2);
}

// A conversion plan counts a cast over each storage, then the write reads it: with the count a
// look-ahead, the write's production is the first, and its bytes are given back after it (before,
// the write was the second production and kept every storage until the end).
void TestHeldBytes::lookAheadDoesNotKeepTheWrite()
{
    std::atomic<int> loads = 0;
    const auto s = counted(64, loads);
    std::weak_ptr<const void> watch;
    QCOMPARE(s->lookAhead()[0], std::uint8_t(7));
    {
        const HeldBytes w = s->bulkData();
        QCOMPARE(loads.load(), 2);
        watch = w.keep;
    }
    QVERIFY(watch.expired());
    // Asked for twice more after that, it is kept as any storage produced twice.
    QCOMPARE(s->hold()[0], std::uint8_t(7));
    QCOMPARE(s->hold()[0], std::uint8_t(7));
    QCOMPARE(loads.load(), 3);
}

// A storage one tensor views (a LoRA-merged weight): made again each time it is asked for after
// being let go, never kept.
void TestHeldBytes::neverKeptStorageIsGivenBackEachTime()
{
    std::atomic<int> loads = 0;
    const auto s = counted(64, loads, StorageRef::Reuse::NeverKeep);
    for (int i = 1; i <= 4; ++i) {
        std::weak_ptr<const void> watch;
        {
            const HeldBytes h = s->bulkData();
            QCOMPARE(h[0], std::uint8_t(7));
            watch = h.keep;
        }
        QVERIFY(watch.expired());
        QCOMPARE(loads.load(), i);
    }
}

void TestHeldBytes::tensorSpanHoldsItsStorage()
{
    std::atomic<int> loads = 0;
    TensorRef t;
    t.dtype = DType::Float32;
    t.shape = {4};
    t.strides = {1};
    t.storageOffset = 2;
    t.storage = counted(32, loads);
    QVERIFY(t.validate().empty());
    std::weak_ptr<const void> watch;
    {
        const HeldBytes span = t.spannedBytes();
        QCOMPARE(span.size(), std::size_t(16));
        QVERIFY(t.spannedBytes().size() == 16 && loads == 1);
        const HeldBytes part = span.subspan(4, 8);  // a part holds the whole
        watch = span.keep;
        QCOMPARE(part.keep, span.keep);
    }
    QVERIFY(watch.expired());
    QCOMPARE(loads.load(), 1);
}

void TestHeldBytes::dataKeepsItsPromise()
{
    std::atomic<int> loads = 0;
    const auto s = counted(16, loads);
    const auto span = s->data();  // a bare span: valid as long as the storage
    QCOMPARE(loads.load(), 1);
    { const HeldBytes h = s->hold(); QCOMPARE(h.data(), span.data()); }
    QCOMPARE(s->hold().data(), span.data());
    QCOMPARE(loads.load(), 1);
    QCOMPARE(span[15], std::uint8_t(7));
}

void TestHeldBytes::concurrentHoldersShareOneLoad()
{
    std::atomic<int> loads = 0;
    const auto s = counted(1 << 16, loads);
    constexpr int kThreads = 8;
    std::latch allHolding(kThreads);
    std::atomic<int> wrong = 0;
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
        threads.emplace_back([&] {
            const HeldBytes h = s->hold();
            if (h.size() != std::size_t(1 << 16) || h[100] != 7)
                ++wrong;
            allHolding.arrive_and_wait();  // every thread holds before any lets go
        });
    for (auto &t : threads)
        t.join();
    QCOMPARE(wrong.load(), 0);
    QCOMPARE(loads.load(), 1);
}

void TestHeldBytes::deflatedFixtureGivesItsBytesBack()
{
    // deflated.pth: views.pth re-zipped with every record deflated (tests/fixtures).
    const Document doc = readDocument(CKPT_FIXTURES_DIR "/deflated.pth");
    QVERIFY(!doc.stateDict.empty());
    int checked = 0, again = 0;
    std::set<const StorageRef *> seen;
    for (const auto &t : doc.stateDict) {
        std::weak_ptr<const void> watch;
        const bool first = seen.insert(t.ref().storage.get()).second;
        {
            const HeldBytes h = t.ref().spannedBytes();
            if (h.empty())
                continue;  // an empty tensor reads nothing
            QVERIFY(t.ref().storage->producedOnUse());
            watch = h.keep;
            QVERIFY(!watch.expired());
        }
        // A storage's first use gives its bytes back; another view of it, read after, finds the
        // storage produced a second time, and kept from then on.
        QVERIFY2(watch.expired() == first, t.name.c_str());
        (first ? checked : again)++;
    }
    QVERIFY(checked >= 2 && checked + again >= 5);
    QVERIFY(again >= 1);  // views.pth has views sharing a storage
}

QTEST_GUILESS_MAIN(TestHeldBytes)
#include "tst_heldbytes.moc"
