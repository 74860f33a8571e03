// MappedFile under a file that shrinks while mapped: reads past the new end find zeros instead of
// killing the process with SIGBUS, and the mapping (and any document reading from it) says it was
// truncated. Faults outside our mappings still reach the earlier handler or end the process.
#include "document.h"
#include "error.h"
#include "mappedfile.h"

#include <QtTest>

#include <csignal>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ckpt;

namespace {
constexpr std::size_t kFileSize = 64 * 1024;

QString writePattern(const QTemporaryDir &dir, const char *name)
{
    const QString path = dir.filePath(QLatin1String(name));
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly))
        return {};
    QByteArray b(kFileSize, Qt::Uninitialized);
    for (std::size_t i = 0; i < kFileSize; ++i)
        b[static_cast<int>(i)] = static_cast<char>(1 + i % 251);  // never zero
    f.write(b);
    return path;
}

bool truncateTo(const QString &path, off_t size)
{
    return ::truncate(QFile::encodeName(path).constData(), size) == 0;
}

// Reads every byte through `bytes`, as a consumer would; returns how many were zero.
std::size_t zeros(std::span<const std::uint8_t> bytes)
{
    std::size_t n = 0;
    for (const auto b : bytes)
        n += b == 0;
    return n;
}

// Runs `body` in a child process; returns its wait status.
template <typename F>
int inChild(F body)
{
    const pid_t pid = ::fork();
    if (pid == 0) {
        body();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

// Maps `path` ourselves (outside MappedFile), truncates it and reads past the new end.
void faultOutsideOurMappings(const QString &path)
{
    const int fd = ::open(QFile::encodeName(path).constData(), O_RDONLY);
    auto *p = static_cast<volatile const std::uint8_t *>(::mmap(nullptr, kFileSize, PROT_READ, MAP_PRIVATE, fd, 0));
    ::close(fd);
    truncateTo(path, 10);
    (void)p[kFileSize - 1];
}

void exit42(int) { ::_exit(42); }
} // namespace

class TestMappedFile : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // First: the guard is installed by the first MappedFile::open of the process, and this test
    // needs a handler in place before that (its child is forked before any open in this process).
    void faultsElsewhereReachTheEarlierHandler();
    void truncatedWhileMapped();
    void intactFileIsNotTruncated();
    void documentReadsFromATruncatedFile();
    void faultsElsewhereStillEndTheProcess();
};

void TestMappedFile::truncatedWhileMapped()
{
    QTemporaryDir dir;
    const QString path = writePattern(dir, "a.bin");
    auto file = MappedFile::open(path.toStdString());
    QVERIFY(file->guarded());
    QCOMPARE(file->size(), kFileSize);
    QCOMPARE(zeros(file->bytes()), std::size_t(0));
    QVERIFY(!file->truncated());

    QVERIFY(truncateTo(path, 100));
    const auto bytes = file->bytes();
    // The first page still holds the file's first 100 bytes (and zeros after them, as the kernel
    // gives a partial last page); every later page reads as zeros.
    QCOMPARE(bytes[0], std::uint8_t(1));
    QCOMPARE(bytes[99], std::uint8_t(100));
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    QCOMPARE(zeros(bytes.subspan(page)), kFileSize - page);
    QVERIFY(file->truncated());
    // A second mapping of the same path is separate: it maps the file as it is now.
    auto again = MappedFile::open(path.toStdString());
    QCOMPARE(again->size(), std::size_t(100));
    QVERIFY(!again->truncated());
}

void TestMappedFile::intactFileIsNotTruncated()
{
    QTemporaryDir dir;
    const QString path = writePattern(dir, "b.bin");
    auto file = MappedFile::open(path.toStdString());
    QCOMPARE(zeros(file->bytes()), std::size_t(0));
    QVERIFY(!file->truncated());
    // Bytes in memory have no file to lose.
    auto memory = MappedFile::fromBytes(std::string(10, 'x'));
    QVERIFY(!memory->guarded());
    QVERIFY(!memory->truncated());
}

void TestMappedFile::documentReadsFromATruncatedFile()
{
    QTemporaryDir dir;
    const QString path = dir.filePath("m.pth");
    QVERIFY(QFile::copy(QStringLiteral(CKPT_EXAMPLES_DIR "/simple_nn_checkpoint.pth"), path));
    const auto doc = readDocument(path.toStdString());
    QVERIFY(!doc.stateDict.empty());
    QVERIFY(!documentTruncated(doc));
    const auto &ref = doc.stateDict.front().ref();
    QVERIFY(ref.storage->mapping);  // the storage knows which mapping its bytes view
    QVERIFY(!ref.storage->mapping->truncated());

    QVERIFY(truncateTo(path, 0));
    std::size_t read = 0;
    for (const auto &t : doc.stateDict) {
        const auto bytes = t.ref().spannedBytes();
        read += bytes.size();
        QCOMPARE(zeros(bytes.bytes), bytes.size());  // zeros now, and no SIGBUS
    }
    QVERIFY(read > 0);
    QVERIFY(documentTruncated(doc));
    QVERIFY(ref.storage->mapping->truncated());

    // Reading the truncated file anew is a plain error naming the file.
    try {
        readDocument(path.toStdString());
        QFAIL("an empty file was read");
    } catch (const FormatError &e) {
        QVERIFY2(QString(e.what()).startsWith(path), e.what());
    }
}

void TestMappedFile::faultsElsewhereStillEndTheProcess()
{
    QTemporaryDir dir;
    const QString ours = writePattern(dir, "ours.bin");
    const QString other = writePattern(dir, "other.bin");
    const int status = inChild([&] {
        auto file = MappedFile::open(ours.toStdString());  // installs the guard
        faultOutsideOurMappings(other);
        ::_exit(0);  // reached only when the fault was swallowed
    });
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer's own SIGBUS handler was first: it reports the fault and ends the process.
    QVERIFY2(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), "a fault outside our mappings was swallowed");
#else
    QVERIFY2(WIFSIGNALED(status), qPrintable(QString("child exited with %1").arg(WEXITSTATUS(status))));
    QCOMPARE(WTERMSIG(status), SIGBUS);
#endif
}

void TestMappedFile::faultsElsewhereReachTheEarlierHandler()
{
    QTemporaryDir dir;
    const QString ours = writePattern(dir, "ours.bin");
    const QString other = writePattern(dir, "other.bin");
    const int status = inChild([&] {
        struct sigaction sa {};
        sa.sa_handler = exit42;
        ::sigemptyset(&sa.sa_mask);
        ::sigaction(SIGBUS, &sa, nullptr);  // the application's own handler, set before ours
        auto file = MappedFile::open(ours.toStdString());
        faultOutsideOurMappings(other);
        ::_exit(0);
    });
    QVERIFY2(WIFEXITED(status) && WEXITSTATUS(status) == 42, "the earlier SIGBUS handler was not called");
}

// Without QtTest's crash handler: it would be the SIGBUS handler the guard chains to, and it
// attaches a debugger to the forked children that are meant to die of SIGBUS.
int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    TestMappedFile test;
    QStringList args = app.arguments();
    args.insert(1, QStringLiteral("-nocrashhandler"));
    return QTest::qExec(&test, args);
}
#include "tst_mappedfile.moc"
