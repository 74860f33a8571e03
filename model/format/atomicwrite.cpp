#include "atomicwrite.h"

#include "error.h"
#include "signalcleanup.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt {

namespace {
std::string systemError(const std::string &path, const std::string &what, int err)
{
    return path + ": " + what + ": " + std::strerror(err);
}

// The temporary files being written, for the signal handler: a fixed table (nothing allocated,
// nothing locked), each slot free (0), being filled (1) or holding a path (2). A path longer than a
// slot, or a file past the table's places, is not registered (it is removed only by normal
// unwinding). A sharded conversion holds every shard's temporary file until all are verified, so
// the table has room for kMaxShards of them; the states lie apart from the paths so that looking
// for a free slot touches one small array, not a page of each path.
constexpr std::size_t kSlots = 1024;
constexpr std::size_t kSlotPath = 4096;
std::atomic<int> g_slotState[kSlots];
// Folders the command made, the path naming the deepest: removed with rmdir, so only while each is
// empty, this many levels up from it. 0: a file.
int g_slotFolderLevels[kSlots];
char g_slotPath[kSlots][kSlotPath];

int registerTemporary(const std::string &path, int folderLevels = 0)
{
    if (path.size() >= kSlotPath)
        return -1;
    for (std::size_t i = 0; i < kSlots; ++i) {
        int expected = 0;
        if (g_slotState[i].compare_exchange_strong(expected, 1)) {
            std::memcpy(g_slotPath[i], path.c_str(), path.size() + 1);
            g_slotFolderLevels[i] = folderLevels;
            g_slotState[i].store(2);
            return int(i);
        }
    }
    return -1;
}

void unregisterTemporary(int slot)
{
    if (slot >= 0)
        g_slotState[slot].store(0);
}

// rmdir of `levels` folders: `path` (the deepest), then its parents, each cut off at its last '/'
// in a copy on the stack. Async-signal-safe: no allocation, no locks, only rmdir(2).
bool removeFolderChain(const char *path, int levels)
{
    char buf[kSlotPath];
    std::size_t n = 0;
    while (n + 1 < kSlotPath && path[n] != '\0') {
        buf[n] = path[n];
        ++n;
    }
    buf[n] = '\0';
    bool removed = false;
    for (int level = 0; level < levels; ++level) {
        while (n > 1 && buf[n - 1] == '/')  // "out/" is "out"
            buf[--n] = '\0';
        if (n == 0 || (n == 1 && buf[0] == '/') || ::rmdir(buf) != 0)
            break;  // one that holds anything keeps its parents too
        removed = true;
        while (n > 0 && buf[n - 1] != '/')
            --n;
        buf[n] = '\0';
    }
    return removed;
}

extern "C" void removeTemporariesAndDie(int sig)
{
    const int savedErrno = errno;
    bool removed = false;
    for (std::size_t i = 0; i < kSlots; ++i)
        if (g_slotState[i].load() == 2 && g_slotFolderLevels[i] == 0)
            removed = ::unlink(g_slotPath[i]) == 0 || removed;
    // Folders last, the deepest (listed last) first; rmdir leaves one that holds anything.
    for (std::size_t i = kSlots; i-- > 0;)
        if (g_slotState[i].load() == 2 && g_slotFolderLevels[i] > 0)
            removed = removeFolderChain(g_slotPath[i], g_slotFolderLevels[i]) || removed;
    if (removed) {
        // write(2) only: nothing else is safe in a signal handler.
        static constexpr char kSaid[] = "\ninterrupted: what was being written is removed; no file that was there before "
                                        "was changed\n";
        [[maybe_unused]] const auto n = ::write(STDERR_FILENO, kSaid, sizeof kSaid - 1);
    }
    // The default action now: the process ends as the signal says (status 128+sig, a shell's
    // Ctrl-C seen as such). Raised while the handler blocks it, it is delivered on return.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(sig, &dfl, nullptr);
    ::raise(sig);
    errno = savedErrno;
}

// Six characters as mkstemp's XXXXXX are replaced: letters and digits, from the system's random source.
std::string randomSuffix()
{
    static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[6] = {};
    if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
        // No random source (a very early boot): the time and the process id still vary per call.
        static std::atomic<unsigned> counter{0};
        unsigned long long x = static_cast<unsigned long long>(::getpid()) * 2654435761ULL ^
                               static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                               (static_cast<unsigned long long>(counter++) << 40);
        for (auto &b : bytes) {
            b = static_cast<unsigned char>(x);
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            x ^= x >> 29;
        }
    }
    std::string out;
    for (const unsigned char b : bytes)
        out += kChars[b % (sizeof kChars - 1)];
    return out;
}

bool sameFile(const std::string &a, const std::string &b)
{
    struct stat sa {
    }, sb{};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}
} // namespace

void checkWriteTarget(const std::string &path, const WriteOptions &options)
{
    for (const auto &input : options.inputs)
        if (sameFile(path, input))
            throw FormatError(path + ": is an input file; it is never overwritten");
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode))
            throw FormatError(path + ": is a directory");
        if (!options.overwrite)
            throw FormatError(path + ": already exists (use --force to replace it)");
    }
}

AtomicFileWriter::AtomicFileWriter(std::string path, const WriteOptions &options)
    : m_path(std::move(path)), m_options(options)
{
    checkWriteTarget(m_path, m_options);
    const auto folder = std::filesystem::path(m_path).parent_path();
    const std::string prefix = (folder.empty() ? std::filesystem::path(".") : folder) /
                               ("." + std::filesystem::path(m_path).filename().string() + ".");
    // As mkstemp makes it (.NAME.XXXXXX, created exclusively, mode 0600), but listed for the signal
    // handler before it exists: with mkstemp, a signal between the creation and the listing (the
    // moment the file first shows) left it behind. A name already taken is never listed, so the
    // handler cannot remove another's file; one made by someone else between that check and the
    // exclusive creation is the only case it could, and needs the same six random characters.
    int error = EEXIST;
    for (int attempt = 0; attempt < 100 && m_fd < 0 && error == EEXIST; ++attempt) {
        std::string candidate = prefix + randomSuffix();
        struct stat st {};
        if (::lstat(candidate.c_str(), &st) == 0)
            continue;
        m_slot = registerTemporary(candidate);
        m_fd = ::open(candidate.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (m_fd >= 0) {
            m_temp = std::move(candidate);
            break;
        }
        error = errno;
        unregisterTemporary(m_slot);
        m_slot = -1;
    }
    if (m_fd < 0) {
        std::error_code ec;
        if (error == ENOENT && !folder.empty() && !std::filesystem::is_directory(folder, ec))
            throw FormatError(m_path + ": the folder " + folder.string() + " does not exist");
        throw FormatError(systemError(m_path, "cannot create a temporary file in its folder", error));
    }
}

void removeTemporaryFilesOnSignals()
{
    static std::atomic<bool> installed{false};
    if (installed.exchange(true))
        return;
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction previous {};
        ::sigaction(sig, nullptr, &previous);
        if (previous.sa_handler == SIG_IGN)
            continue; // ignored (nohup): it stays ignored
        struct sigaction sa {};
        sa.sa_handler = removeTemporariesAndDie;
        sigemptyset(&sa.sa_mask);
        ::sigaction(sig, &sa, nullptr);
    }
}

SignalCleanupEntry::SignalCleanupEntry(const std::string &path, Kind kind)
    : m_slot(registerTemporary(path, kind == Kind::EmptyFolder ? 1 : 0))
{
}

SignalCleanupEntry::SignalCleanupEntry(const std::string &deepest, int levels)
    : m_slot(levels > 0 ? registerTemporary(deepest, levels) : -1)
{
}

SignalCleanupEntry::~SignalCleanupEntry() { unregisterTemporary(m_slot); }

AtomicFileWriter::~AtomicFileWriter()
{
    cancel();
}

void AtomicFileWriter::cancel()
{
    if (m_fd >= 0)
        ::close(m_fd);
    m_fd = -1;
    if (!m_temp.empty())
        ::unlink(m_temp.c_str());
    unregisterTemporary(m_slot);
    m_slot = -1;
    m_temp.clear();
}

void AtomicFileWriter::write(std::span<const std::uint8_t> data)
{
    if (m_fd < 0)
        throw FormatError(m_path + ": the file is already finished or cancelled");
    for (std::size_t done = 0; done < data.size();) {
        const ssize_t n = ::write(m_fd, data.data() + done, std::min<std::size_t>(data.size() - done, 1u << 30));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const int err = errno;
            cancel();
            throw FormatError(systemError(m_path, "cannot write", err));
        }
        if (n == 0) {
            cancel();
            throw FormatError(m_path + ": cannot write: the disk accepts no more bytes");
        }
        done += static_cast<std::size_t>(n);
    }
    m_size += data.size();
    // Start the disk writing what is written so far, in the background, so that the fsync at the
    // end waits for the last stretch only and not for the whole file.
    constexpr std::uint64_t kStretch = std::uint64_t{32} << 20;
    if (m_size - m_flushStarted >= kStretch) {
        ::sync_file_range(m_fd, static_cast<off_t>(m_flushStarted), static_cast<off_t>(m_size - m_flushStarted),
                          SYNC_FILE_RANGE_WRITE);
        m_flushStarted = m_size;
    }
}

void AtomicFileWriter::finish(const std::function<void(const std::string &)> &verify)
{
    if (m_fd < 0)
        throw FormatError(m_path + ": the file is already finished or cancelled");
    try {
        // Read back first (from the page cache, while the disk is still writing), then wait for
        // the disk: the rename comes after both.
        if (verify)
            verify(m_temp);
        if (::fsync(m_fd) != 0)
            throw FormatError(systemError(m_path, "cannot flush to disk", errno));
        ::fchmod(m_fd, 0644);
        if (::close(m_fd) != 0) {
            m_fd = -1;
            throw FormatError(systemError(m_path, "cannot close", errno));
        }
        m_fd = -1;
    } catch (...) {
        cancel();
        throw;
    }
}

void AtomicFileWriter::commit(const std::function<void(const std::string &)> &verify)
{
    if (m_fd >= 0)
        finish(verify);
    else if (m_temp.empty())
        throw FormatError(m_path + ": the file is already finished or cancelled");
    try {
        // The target may have appeared, or become an input, while we wrote.
        checkWriteTarget(m_path, m_options);
        if (::rename(m_temp.c_str(), m_path.c_str()) != 0)
            throw FormatError(systemError(m_path, "cannot rename the finished file into place", errno));
        unregisterTemporary(m_slot); // renamed: nothing to remove
        m_slot = -1;
        m_temp.clear();
        // Make the new name itself durable.
        const auto folder = std::filesystem::path(m_path).parent_path();
        const int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            ::fsync(dir);
            ::close(dir);
        }
    } catch (...) {
        cancel();
        throw;
    }
}

void verifyFileBytes(const std::string &file, std::span<const std::uint8_t> data, const std::string &name)
{
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw FormatError(systemError(name, "cannot read back", errno));
    std::vector<std::uint8_t> check(64 * 1024);
    std::size_t done = 0;
    bool same = true;
    while (same) {
        const ssize_t n = ::read(fd, check.data(), check.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        const auto got = static_cast<std::size_t>(n);
        same = got <= data.size() - done && std::memcmp(check.data(), data.data() + done, got) == 0;
        done += got;
    }
    ::close(fd);
    if (!same)
        throw FormatError(name + ": the written file differs from what was written");
    if (done != data.size())
        throw FormatError(name + ": the written file is shorter than what was written");
}

void writeFileAtomically(const std::string &path, std::span<const std::uint8_t> data, const WriteOptions &options)
{
    AtomicFileWriter file(path, options);
    file.write(data);
    // Read back what the disk holds and compare before it takes the final name.
    file.commit([&](const std::string &temp) { verifyFileBytes(temp, data, path); });
}

} // namespace ckpt
