// The signal handler of removeTemporaryFilesOnSignals removes the scratch files a caller listed
// with SignalCleanupEntry (the TorchScript dtype check's `.uncast` copy beside the output) as it
// removes an AtomicFileWriter's temporary: a child process lists a file, then a signal ends it.
// A file no longer listed, or never listed, stays.
#include "atomicwrite.h"
#include "signalcleanup.h"

#include <QtTest>

#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>
#include <sys/wait.h>
#include <unistd.h>

using namespace ckpt;

namespace {
bool makeFile(const std::string &path)
{
    std::FILE *f = std::fopen(path.c_str(), "wb");
    if (!f)
        return false;
    const bool ok = std::fputs("scratch", f) >= 0;
    return std::fclose(f) == 0 && ok;
}

bool exists(const std::string &path) { return ::access(path.c_str(), F_OK) == 0; }

// Runs `body` in a child that installs the handler, then raises `sig` there; returns the child's
// wait status.
template <typename F>
int inChild(int sig, F body)
{
    const pid_t pid = ::fork();
    if (pid == 0) {
        // As from a terminal: a signal the test runner inherited as ignored (a shell's `&` ignores
        // SIGINT) would stay ignored, as nohup's do.
        ::signal(sig, SIG_DFL);
        removeTemporaryFilesOnSignals();
        body();
        ::raise(sig);
        ::_exit(0);  // not reached: the handler ends the process as the signal does
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}
} // namespace

class TestSignalCleanup : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void listedScratchFileIsRemoved_data()
    {
        QTest::addColumn<int>("sig");
        QTest::newRow("SIGINT") << SIGINT;
        QTest::newRow("SIGTERM") << SIGTERM;
        QTest::newRow("SIGHUP") << SIGHUP;
    }

    void listedScratchFileIsRemoved()
    {
        QFETCH(int, sig);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string listed = dir.filePath("out.pt.tmp.uncast").toStdString();
        const std::string unlisted = dir.filePath("other").toStdString();
        const std::string released = dir.filePath("released").toStdString();
        const int status = inChild(sig, [&] {
            if (!makeFile(listed) || !makeFile(unlisted) || !makeFile(released))
                ::_exit(3);
            static std::optional<SignalCleanupEntry> entry;  // alive when the signal comes
            entry.emplace(listed);
            if (!entry->listed())
                ::_exit(4);
            { SignalCleanupEntry gone(released); }  // listed, then no longer
        });
        QVERIFY2(WIFSIGNALED(status) && WTERMSIG(status) == sig, qPrintable(QString::number(status)));
        QVERIFY2(!exists(listed), "the listed scratch file is left behind");
        QVERIFY2(exists(unlisted), "a file never listed was removed");
        QVERIFY2(exists(released), "a file no longer listed was removed");
    }

    // A chain of folders made in one another (convert --out-dir's new levels), listed as one entry
    // however deep: each is removed while it is empty, and none above the chain; one that holds a
    // file keeps it and the folders above it.
    void listedFolderChainIsRemoved_data()
    {
        QTest::addColumn<int>("levels");
        QTest::addColumn<int>("holding");  // the level (1: the top one made) that holds a file; 0: none
        QTest::addColumn<bool>("trailingSlash");
        QTest::newRow("one level") << 1 << 0 << false;
        QTest::newRow("40 levels") << 40 << 0 << false;
        QTest::newRow("40 levels, trailing slash") << 40 << 0 << true;
        QTest::newRow("40 levels, the 30th holds a file") << 40 << 30 << false;
    }

    void listedFolderChainIsRemoved()
    {
        QFETCH(int, levels);
        QFETCH(int, holding);
        QFETCH(bool, trailingSlash);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string before = dir.filePath("there_before").toStdString();
        QVERIFY(::mkdir(before.c_str(), 0700) == 0);
        std::vector<std::string> made;
        std::string path = before;
        for (int i = 1; i <= levels; ++i)
            made.push_back(path += "/l" + std::to_string(i));
        const int status = inChild(SIGINT, [&] {
            for (const auto &m : made)
                if (::mkdir(m.c_str(), 0700) != 0)
                    ::_exit(3);
            if (holding > 0 && !makeFile(made[static_cast<std::size_t>(holding - 1)] + "/kept"))
                ::_exit(4);
            static std::optional<SignalCleanupEntry> entry;
            entry.emplace(made.back() + (trailingSlash ? "/" : ""), levels);
            if (!entry->listed())
                ::_exit(5);
        });
        QVERIFY2(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, qPrintable(QString::number(status)));
        QVERIFY2(exists(before), "a folder that was there before was removed");
        for (int i = 1; i <= levels; ++i)
            QVERIFY2(exists(made[static_cast<std::size_t>(i - 1)]) == (i <= holding),
                     qPrintable(QStringLiteral("level %1 of %2: %3").arg(i).arg(levels)
                                    .arg(i <= holding ? "removed, though it holds a file or one that does"
                                                      : "left behind")));
    }
};

QTEST_GUILESS_MAIN(TestSignalCleanup)
#include "tst_signalcleanup.moc"
