// The detail pane's statistics and histogram job of a tensor no longer shown stops: stepping
// through rows of large tensors must not leave their work queued on the two job threads ahead of
// the current row's. A compute stand-in works through its "chunks" slowly and records, per
// tensor, how many it did and whether the cancel check stopped it (chunks counted, not time).
#include "document.h"
#include "tensordetailview.h"
#include "testdata.h"

#include <QApplication>
#include <QSignalSpy>
#include <QTest>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

using namespace ckpt;

namespace {
constexpr int kChunks = 300;  // 3 ms each: a second per call when nothing stops it

class SlowCompute final : public ComputeApi {
public:
    struct Record {
        int calls = 0;
        int chunks = 0;
        bool cancelled = false;
        int finished = 0;  // calls that ran every chunk
    };
    // Per tensor, by element count (the fixture's tensors all differ in it).
    std::map<std::int64_t, Record> records() const
    {
        std::lock_guard lock(m_mutex);
        return m_records;
    }
    mutable std::atomic<int> started{0};

    std::string torchVersion() const override { return "stand-in"; }
    TensorStats statistics(const TensorRef &t) const override { return statistics(t, {}); }
    TensorStats statistics(const TensorRef &t, const CancelCheck &cancelled) const override
    {
        work(t, cancelled);
        TensorStats s;
        s.count = t.numel();
        return s;
    }
    Histogram histogram(const TensorRef &t, int bins) const override { return histogram(t, bins, {}); }
    Histogram histogram(const TensorRef &t, int bins, const CancelCheck &cancelled) const override
    {
        work(t, cancelled);
        Histogram h;
        h.counts.assign(static_cast<std::size_t>(bins), 0);
        return h;
    }
    Histogram differenceHistogram(const TensorRef &, const TensorRef &, int, const CancelCheck &) const override
    {
        return {};
    }
    Histogram differenceHistogram(const TensorRef &, const TensorRef &, int) const override { return {}; }
    std::vector<double> values(const TensorRef &, std::int64_t, std::int64_t count, bool) const override
    {
        return std::vector<double>(static_cast<std::size_t>(count), 0.0);
    }
    std::vector<std::int64_t> integers(const TensorRef &, std::int64_t, std::int64_t count) const override
    {
        return std::vector<std::int64_t>(static_cast<std::size_t>(count), 0);
    }
    std::string exportBytes(const TensorRef &, ExportFormat) const override { return {}; }
    TensorDiff difference(const TensorRef &, const TensorRef &, double, double) const override { return {}; }
    std::vector<DeviceInfo> devices() const override { return {}; }
    std::unique_ptr<Predictor> predictor(const Document &, const Architecture &) const override
    {
        throw std::runtime_error("not in this test");
    }

private:
    void work(const TensorRef &t, const CancelCheck &cancelled) const
    {
        const std::int64_t key = t.numel();
        {
            std::lock_guard lock(m_mutex);
            ++m_records[key].calls;
        }
        ++started;
        for (int i = 0; i < kChunks; ++i) {
            if (cancelled && cancelled()) {
                std::lock_guard lock(m_mutex);
                m_records[key].cancelled = true;
                throw std::runtime_error("cancelled");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
            std::lock_guard lock(m_mutex);
            ++m_records[key].chunks;
        }
        std::lock_guard lock(m_mutex);
        ++m_records[key].finished;
    }
    mutable std::mutex m_mutex;
    mutable std::map<std::int64_t, Record> m_records;
};
} // namespace

class TestDetailJobs : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void supersededJobsStop();
};

void TestDetailJobs::supersededJobsStop()
{
    const auto doc = test::readFixture(QStringLiteral("state_dict.pth"));
    QCOMPARE(doc->stateDict.size(), std::size_t(4));  // element counts 500, 50, 100, 2
    SlowCompute compute;
    TensorDetailView detail;
    detail.setComputeProvider([&compute]() -> ComputeApi & { return compute; });
    QSignalSpy ready(&detail, &TensorDetailView::histogramReady);
    const auto show = [&](std::size_t i) {
        const auto &t = doc->stateDict[i];
        detail.setTensor(doc, QString::fromStdString(t.name), &t.ref(), nullptr);
    };
    // The first row's job is under way when the next rows are selected, one after another.
    show(0);
    QTRY_VERIFY_WITH_TIMEOUT(compute.started.load() > 0, 10000);
    show(1);
    show(2);
    show(3);
    QVERIFY(ready.wait(20000));
    QTest::qWait(50);
    const auto records = compute.records();
    // The last row's figures came, computed to the end.
    QCOMPARE(records.at(2).finished, 2);  // statistics and histogram
    QVERIFY(!records.at(2).cancelled);
    // Every row passed over stopped early, or never started: none ran all its chunks.
    for (std::int64_t numel : {500, 50, 100}) {
        const auto it = records.find(numel);
        if (it == records.end())
            continue;  // still queued when cancelled: never ran
        QVERIFY2(it->second.finished == 0, qPrintable(QStringLiteral("the job of the tensor of %1 elements ran to its end").arg(numel)));
        QVERIFY2(it->second.chunks < kChunks, qPrintable(QString::number(it->second.chunks)));
    }
    // The first was stopped inside its work by the cancel check.
    QVERIFY(records.at(500).cancelled);
    QCOMPARE(ready.count(), 1);  // only the row shown now delivered figures
}

QTEST_MAIN(TestDetailJobs)
#include "tst_detailjobs.moc"
