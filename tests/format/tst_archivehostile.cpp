// Containers built to make this reader and PyTorch (or Python's zipfile/tarfile) disagree, or to
// make the reader recurse, block or fan out: shard indexes naming indexes, FIFOs, JSON nested past
// any real header, duplicate records, tar PAX and GNU headers. Every input is made here, as bytes.
#include "document.h"
#include "error.h"
#include "mappedfile.h"
#include "safetensorsreader.h"

#include <QtTest>

#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace ckpt;

namespace {

// Reads `path`; "" when it reads, the error otherwise.
std::string readError(const QString &path)
{
    try {
        readDocument(path.toStdString());
        return {};
    } catch (const FormatError &e) {
        return e.what();
    }
}

// Unblocks a reader stuck opening the FIFO `path` (by opening it for writing after `after`), so a
// reader that blocks fails its test instead of hanging it.
class FifoUnblocker {
public:
    FifoUnblocker(const QString &path, std::chrono::milliseconds after)
        : m_thread([this, p = QFile::encodeName(path).toStdString(), after] {
              const auto deadline = std::chrono::steady_clock::now() + after;
              while (!m_done.load()) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
                  if (std::chrono::steady_clock::now() < deadline)
                      continue;
                  const int fd = ::open(p.c_str(), O_WRONLY | O_NONBLOCK);
                  if (fd >= 0) {
                      ::close(fd);
                      m_fired = true;
                  }
              }
          })
    {
    }
    ~FifoUnblocker()
    {
        m_done = true;
        m_thread.join();
    }
    bool fired() const { return m_fired.load(); }

private:
    std::atomic<bool> m_done{false};
    std::atomic<bool> m_fired{false};
    std::thread m_thread;
};

#define VERIFY_CONTAINS(text, part)                                                                             \
    QVERIFY2(std::string(text).find(part) != std::string::npos,                                                 \
             qPrintable(QStringLiteral("expected '%1' in: %2").arg(QString::fromStdString(part),                 \
                                                                   QString::fromStdString(text))))

} // namespace

class TestArchiveHostile : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // MappedFile
    void fifoIsRefused();
    void directoryIsRefused();
};

void TestArchiveHostile::fifoIsRefused()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString fifo = dir.filePath("m.safetensors");
    QVERIFY(::mkfifo(QFile::encodeName(fifo).constData(), 0600) == 0);
    std::string err;
    {
        const FifoUnblocker unblock(fifo, std::chrono::seconds(5));
        err = readError(fifo);
        QVERIFY2(!unblock.fired(), "reading a FIFO blocked until a writer came");
    }
    VERIFY_CONTAINS(err, "is a FIFO (named pipe), not a regular file");
    VERIFY_CONTAINS(err, fifo.toStdString());
}

void TestArchiveHostile::directoryIsRefused()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto err = readError(dir.path());
    VERIFY_CONTAINS(err, "is a directory, not a regular file");
}

QTEST_GUILESS_MAIN(TestArchiveHostile)
#include "tst_archivehostile.moc"
