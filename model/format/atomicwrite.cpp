#include "atomicwrite.h"

#include "error.h"
#include "signalcleanup.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <mutex>
#include <map>
#include <set>
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

// A set of files taking their names together (commitTogether), for the signal handler: one set at
// a time (g_groupMutex). Per member: the slot of its temporary file (in g_slotPath), its target, and
// the backup that keeps the target's previous file (listed before it is made, as a temporary is):
// a hard link, or where the file system has none the previous file itself moved aside (the target
// name then empty until the new file takes it). The phase says what a signal finds: backups being
// made (remove the links, move the moved back), renames under way (put back each member whose
// temporary is gone or whose previous file was moved, remove the links), or every rename done (keep
// the new set, remove the backups).
enum GroupPhase : int { kIdle, kLinking, kRenaming, kComplete };
std::atomic<int> g_groupPhase{kIdle};
std::atomic<int> g_groupMembers{0};
int g_memberSlot[kSlots];
std::atomic<bool> g_memberBackedUp[kSlots];
std::atomic<bool> g_memberMoved[kSlots];  // the backup is the previous file moved aside, not a link
char g_memberTarget[kSlots][kSlotPath];
char g_memberBackup[kSlots][kSlotPath];
std::mutex g_groupMutex;

// A commit the handler must leave to the committing thread: 0 none; -1 one in progress; a signal
// number: one in progress, and that signal arrived meanwhile. Set for every commit: a commit whose
// paths the table cannot hold (unlisted) is never settled by the handler, and a listed one only from
// its own thread (g_committingThread): a signal another thread takes (LibTorch's pool threads,
// once --merge-lora has loaded it) while this one keeps renaming would leave a mixed set. The
// committing thread re-raises the signal once the set is settled (Settle in commitTogether).
std::atomic<int> g_deferral{0};
std::atomic<pid_t> g_committingThread{0};  // listed commits: the thread that may settle; 0: none may
// What a deferred commit settled to, for the handler's message: -1 the new set kept, 1 the previous
// put back, 2 some previous file not put back (commitTogether said which, where it is kept).
std::atomic<int> g_settledOutcome{0};

// write(2) of a NUL-terminated string: strlen by hand, nothing but write is called.
void writeText(const char *text)
{
    std::size_t n = 0;
    while (text[n] != '\0')
        ++n;
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, text, n);
}

// renameat2's RENAME_NOREPLACE (a file at `to` is kept: EEXIST), or rename(2) where the file
// system lacks the flag (EINVAL: some network and FUSE file systems). 0, or -1 with errno set.
// Async-signal-safe.
int renameKeeping(const char *from, const char *to)
{
    if (::renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
    return ::rename(from, to);
}

// The signal handler's part for a set being committed: -1 when the new set was complete (kept),
// 0 when nothing was put back, 1 when previous files were put back, 2 when one could not be (the
// handler has then said which, and the backup that keeps it). Async-signal-safe: lstat, rename,
// unlink and write on the table.
// A member's temporary gone means its rename happened (rename is atomic, and nothing else removes
// it during the commit), so a signal between a rename and the line after it is still seen right;
// putting back is idempotent, so one that lands while commitTogether itself puts back is too. Should
// the temporary have gone by other means, the target is still the previous file, a second name of
// the backup (same device and inode): renaming one onto the other would succeed doing nothing and
// leave the backup, so it is removed instead.
int settleGroup()
{
    const int phase = g_groupPhase.load();
    if (phase == kIdle)
        return 0;
    const int n = g_groupMembers.load();
    bool changed = false;
    bool failed = false;
    for (int i = 0; i < n; ++i) {
        const bool backedUp = g_memberBackedUp[i].load();
        if (phase == kComplete) {
            if (backedUp)
                ::unlink(g_memberBackup[i]);  // the new set is kept: a link or a moved file, both go
            continue;
        }
        struct stat st {};
        const bool renamed =
            phase == kRenaming && ::lstat(g_slotPath[g_memberSlot[i]], &st) != 0 && errno == ENOENT;
        if (renamed || (backedUp && g_memberMoved[i].load())) {
            // A moved-aside file goes back whether or not the new one took the name (it fails
            // harmlessly, ENOENT, when the move itself had not happened yet).
            if (!backedUp) {
                changed = ::unlink(g_memberTarget[i]) == 0 || changed;
                continue;
            }
            struct stat backup {}, target {};
            if (::lstat(g_memberBackup[i], &backup) == 0 && ::lstat(g_memberTarget[i], &target) == 0 &&
                backup.st_dev == target.st_dev && backup.st_ino == target.st_ino) {
                ::unlink(g_memberBackup[i]);  // the target still holds the previous file
            } else if ((renamed ? ::rename(g_memberBackup[i], g_memberTarget[i])
                                : renameKeeping(g_memberBackup[i], g_memberTarget[i])) == 0) {
                // Over the new file; a moved file into its emptied name, where one another
                // program made meanwhile is kept (EEXIST: said below, the backup kept).
                changed = true;
            } else if (errno != ENOENT) {  // ENOENT: never moved, or put back already
                failed = true;
                writeText("\ninterrupted: the previous ");
                writeText(g_memberTarget[i]);
                writeText(" could not be put back: it is kept as ");
                writeText(g_memberBackup[i]);
            }
        } else if (backedUp) {
            ::unlink(g_memberBackup[i]);  // the target still holds the previous file: this is a second name
        }
    }
    return phase == kComplete ? -1 : failed ? 2 : int(changed);
}

extern "C" void removeTemporariesAndDie(int sig)
{
    const int savedErrno = errno;
    // A commit this thread may not settle: noted, and the committing thread raises it again when
    // the set is settled (one signal is enough: a second while one waits is dropped).
    const pid_t owner = g_committingThread.load();
    if (owner == 0 || owner != ::gettid()) {
        int expected = -1;
        if (g_deferral.compare_exchange_strong(expected, sig) || expected > 0) {
            errno = savedErrno;
            return;
        }
    }
    // Before the temporaries go: whether a member was renamed is read from its temporary.
    int group = settleGroup();
    if (group == 0)
        group = g_settledOutcome.exchange(0);  // a deferred commit, settled by its own thread
    bool removed = group > 0;
    for (std::size_t i = 0; i < kSlots; ++i)
        if (g_slotState[i].load() == 2 && g_slotFolderLevels[i] == 0)
            removed = ::unlink(g_slotPath[i]) == 0 || removed;
    // Folders last, the deepest (listed last) first; rmdir leaves one that holds anything.
    for (std::size_t i = kSlots; i-- > 0;)
        if (g_slotState[i].load() == 2 && g_slotFolderLevels[i] > 0)
            removed = removeFolderChain(g_slotPath[i], g_slotFolderLevels[i]) || removed;
    // write(2) only: nothing else is safe in a signal handler.
    if (group < 0)
        writeText("\ninterrupted: the files written had all taken their names and are kept; the previous ones they "
                  "replaced are removed\n");
    else if (group == 2)
        writeText("\ninterrupted: what was being written is removed; the previous files named above could not be put "
                  "back and are kept under the names given, every other holds what it held\n");
    else if (removed)
        // True of a previous file moved aside (no hard links) too: it is back under its name.
        writeText("\ninterrupted: what was being written is removed; every file that was there before holds what it "
                  "held, under its own name\n");
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

// What a write refuses when another program made a file at its name while it was written.
constexpr const char *kAppeared = ": a file of that name appeared while this one was written; it is kept";

// rename(2), or where nothing may be replaced, renameKeeping: a file that took the name after it was
// checked (another program's) is then refused (EEXIST), never replaced. Returns 0, or the errno.
int moveIntoPlace(const std::string &from, const std::string &to, bool mayReplace)
{
    return (mayReplace ? ::rename(from.c_str(), to.c_str()) : renameKeeping(from.c_str(), to.c_str())) == 0 ? 0 : errno;
}

void syncFolder(const std::string &folder)
{
    const int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}
} // namespace

bool isInput(const std::string &path, const WriteOptions &options)
{
    return std::any_of(options.inputs.begin(), options.inputs.end(),
                       [&](const std::string &input) { return sameFile(path, input); });
}

void syncFolderOf(const std::string &file)
{
    syncFolder(std::filesystem::path(file).parent_path().string());
}

std::vector<std::string> interruptedWriteFiles(const std::vector<std::string> &targets)
{
    std::map<std::filesystem::path, std::set<std::string, std::less<>>> byFolder;  // folder -> target names
    for (const auto &t : targets) {
        const std::filesystem::path p(t);
        byFolder[p.parent_path()].insert(p.filename().string());
    }
    // `.NAME.XXXXXX` or `.NAME.bak-XXXXXX`, the suffix as randomSuffix() makes it.
    const auto suffix = [](std::string_view s) {
        return s.size() == 6 && std::all_of(s.begin(), s.end(), [](char c) {
                   return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
               });
    };
    std::vector<std::string> found;
    for (const auto &[folder, names] : byFolder) {
        std::error_code ec;
        for (std::filesystem::directory_iterator it(folder.empty() ? std::filesystem::path(".") : folder, ec), end;
             !ec && it != end; it.increment(ec)) {
            const std::string entry = it->path().filename().string();
            const std::string_view name(entry);
            if (name.size() < 9 || name.front() != '.' || !suffix(name.substr(name.size() - 6)))
                continue;
            // The target's name: between the leading dot and ".XXXXXX" or ".bak-XXXXXX".
            std::string_view stem = name.substr(1, name.size() - 8);
            if (name[name.size() - 7] == '-' && stem.ends_with(".bak"))
                stem.remove_suffix(4);
            else if (name[name.size() - 7] != '.')
                continue;
            if (names.contains(stem))
                found.push_back((folder / entry).string());
        }
    }
    std::sort(found.begin(), found.end());
    return found;
}

void checkWriteTarget(const std::string &path, const WriteOptions &options)
{
    if (isInput(path, options))
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
        if (const int err = moveIntoPlace(m_temp, m_path, m_options.overwrite); err == EEXIST && !m_options.overwrite)
            throw FormatError(m_path + kAppeared + ", and nothing was written (use --force to replace it)");
        else if (err != 0)
            throw FormatError(systemError(m_path, "cannot rename the finished file into place", err));
        unregisterTemporary(m_slot); // renamed: nothing to remove
        m_slot = -1;
        m_temp.clear();
        syncFolderOf(m_path);  // the new name itself made durable
    } catch (...) {
        cancel();
        throw;
    }
}

namespace {
// `.NAME.bak-XXXXXX` beside `target`, as the temporary files are named.
std::string backupName(const std::string &target)
{
    const std::filesystem::path p(target);
    const auto folder = p.parent_path();
    return ((folder.empty() ? std::filesystem::path(".") : folder) / ("." + p.filename().string() + ".bak-"))
               .string() +
           randomSuffix();
}

// link(2)'s answers that mean "no hard link here" rather than "not allowed": the file system has
// none (EPERM from vfat and exFAT, EOPNOTSUPP, ENOSYS from some FUSE mounts) or the file has as
// many as it may (EMLINK).
bool noHardLinks(int error)
{
    return error == EPERM || error == EOPNOTSUPP || error == ENOSYS || error == EMLINK;
}
} // namespace

void commitTogether(std::span<AtomicFileWriter *const> files)
{
    if (files.size() == 1) {
        files[0]->commit();
        return;
    }
    struct Member {
        AtomicFileWriter *file;
        std::string backup;    // the link to the previous file, or the file moved aside; empty: none
        bool moved = false;    // `backup` is the previous file itself: the target name is empty
        bool renamed = false;
    };
    std::vector<Member> members;
    for (auto *f : files)
        members.push_back({f, {}, false, false});
    // The folders to flush, made before any rename: nothing allocates (and so throws) once the new
    // set has taken its names.
    std::set<std::string> folders;
    for (const auto &m : members)
        folders.insert(std::filesystem::path(m.file->m_path).parent_path().string());
    std::lock_guard lock(g_groupMutex);
    // Listed for the signal handler when every path fits its table (a backup's name is the target's
    // and 16 characters at most). Either way a signal another thread takes waits (g_deferral) until
    // the set is settled; one this thread takes settles a listed set at once, and waits too for an
    // unlisted one.
    bool listed = files.size() <= kSlots;
    for (const auto *f : files)
        listed = listed && f->m_slot >= 0 && f->m_path.size() + 16 < kSlotPath;
    // Puts the previous set back (each member renamed so far, the last first), removes the links,
    // and returns what could not be put back, for the message. Once is enough: a second call finds
    // nothing to do.
    const auto undo = [&]() {
        std::string notBack;
        for (std::size_t i = members.size(); i-- > 0;) {
            auto *m = &members[i];
            if (m->renamed || m->moved) {
                // Over the new file it renamed in, or (moved aside, not renamed) into a name left
                // empty, where a file another program made meanwhile is kept.
                if (m->backup.empty())
                    ::unlink(m->file->m_path.c_str());
                else if (const int err = moveIntoPlace(m->backup, m->file->m_path, m->renamed); err != 0)
                    notBack += "; the previous " + m->file->m_path + " could not be put back (" +
                               (err == EEXIST ? std::string("a file of that name appeared meanwhile, and is kept")
                                              : std::string(std::strerror(err))) +
                               "): it is kept as " + m->backup;
                if (m->renamed)
                    m->file->m_temp.clear();  // renamed: nothing left under that name to remove
            } else if (!m->backup.empty()) {
                ::unlink(m->backup.c_str());
            }
            if (listed)
                g_memberBackedUp[i].store(false);  // a signal now finds nothing of this member to do
            m->renamed = false;
            m->moved = false;
            m->backup.clear();
        }
        return notBack;
    };
    // Takes the set off the table however commitTogether ends (a scope guard: an exception anywhere
    // still clears the phase), then raises a signal that waited, for the handler to finish the
    // run with the set settled: `outcome` says how, for its message (see g_settledOutcome).
    struct Settle {
        bool left = false;
        int outcome = 1;
        void leave()
        {
            if (left)
                return;
            left = true;
            g_groupPhase.store(kIdle);
            g_groupMembers.store(0);
            g_committingThread.store(0);
        }
        ~Settle()
        {
            leave();
            if (const int sig = g_deferral.exchange(0); sig > 0) {
                g_settledOutcome.store(outcome);
                ::raise(sig);
            }
        }
    } settle;
    if (listed)
        g_committingThread.store(::gettid());
    g_deferral.store(-1);
    try {
        for (const auto &m : members) {
            if (m.file->m_fd >= 0 || m.file->m_temp.empty())
                throw FormatError(m.file->m_path + ": the file is not finished, or already committed or cancelled");
            // The target may have appeared, or become an input, while we wrote.
            checkWriteTarget(m.file->m_path, m.file->m_options);
        }
        if (listed) {
            for (std::size_t i = 0; i < members.size(); ++i) {
                const auto &path = members[i].file->m_path;
                g_memberSlot[i] = members[i].file->m_slot;
                std::memcpy(g_memberTarget[i], path.c_str(), path.size() + 1);
                g_memberBackedUp[i].store(false);
                g_memberMoved[i].store(false);
            }
            g_groupMembers.store(int(members.size()));
            g_groupPhase.store(kLinking);
        }
        // Each previous file gets a second name first: what a failure puts back. A file system
        // without hard links (vfat, exFAT, some FUSE mounts; or a file at its link limit) refuses
        // the link, and the previous file itself is moved aside instead (same folder: atomic). Its
        // name is then empty until the new file takes it, or until a failure or a signal moves it
        // back: a reader looking meanwhile finds no file there, never a partial or mixed one.
        for (std::size_t i = 0; i < members.size(); ++i) {
            const auto &target = members[i].file->m_path;
            struct stat st {};
            if (::lstat(target.c_str(), &st) != 0) {
                if (errno == ENOENT)
                    continue;
                throw FormatError(systemError(target, "cannot read what is there", errno) + "; nothing was replaced");
            }
            if (!members[i].file->m_options.overwrite)  // checked above: another program's, since
                throw FormatError(target + kAppeared + "; nothing was replaced");
            int error = EEXIST;
            std::string candidate;
            for (int attempt = 0; attempt < 100 && error == EEXIST; ++attempt) {
                candidate = backupName(target);
                if (::lstat(candidate.c_str(), &st) == 0)
                    continue;
                // Listed before it exists, as a temporary is (a name already taken is never listed).
                if (listed) {
                    std::memcpy(g_memberBackup[i], candidate.c_str(), candidate.size() + 1);
                    g_memberBackedUp[i].store(true);
                }
                if (::link(target.c_str(), candidate.c_str()) == 0) {
                    members[i].backup = candidate;
                    error = 0;
                    break;
                }
                error = errno;
                if (noHardLinks(error)) {
                    // Listed as moved before the move: a signal from here on moves it back.
                    if (listed)
                        g_memberMoved[i].store(true);
                    members[i].backup = candidate;
                    members[i].moved = true;
                    if (::rename(target.c_str(), candidate.c_str()) == 0) {
                        error = 0;
                        break;
                    }
                    error = errno;
                    members[i].backup.clear();
                    members[i].moved = false;
                    if (listed)
                        g_memberMoved[i].store(false);
                }
                if (listed)
                    g_memberBackedUp[i].store(false);
            }
            if (error != 0)
                throw FormatError(target + ": cannot keep the previous file aside (as " + candidate +
                                  ") while the new one takes its name: " + std::strerror(error) +
                                  "; nothing was replaced");
        }
        if (listed)
            g_groupPhase.store(kRenaming);
        for (auto &m : members) {
            // Only a previous file with a second name (a link) is renamed over: a name that had no
            // file, or whose file was moved aside, takes none that appeared since, which would be
            // replaced with nothing to put it back from.
            const bool linked = !m.backup.empty() && !m.moved;
            if (const int err = moveIntoPlace(m.file->m_temp, m.file->m_path, linked); err != 0) {
                const bool taken = err == EEXIST && !linked;
                const std::string notBack = undo();
                if (!notBack.empty())
                    settle.outcome = 2;
                throw FormatError(
                    (taken ? m.file->m_path + kAppeared
                           : systemError(m.file->m_path, "cannot rename the finished file into place", err)) +
                    (!notBack.empty() ? notBack
                                      : "; none of the " + std::to_string(members.size()) +
                                            " files took its name, and the folder holds what it held before" +
                                            (taken ? " beside that file" : "")));
            }
            m.renamed = true;
        }
    } catch (...) {
        undo();  // (again after a failed rename: nothing left to do then)
        settle.leave();
        for (const auto &m : members)
            m.file->cancel();
        // A signal waits to end the run: the reason this commit failed would not be said otherwise.
        if (g_deferral.load() > 0) {
            try {
                throw;
            } catch (const std::exception &e) {
                writeText("\n");
                writeText(e.what());
            } catch (...) {
            }
        }
        throw;
    }
    // Every file has its name: a signal now keeps the new set.
    settle.outcome = -1;
    if (listed)
        g_groupPhase.store(kComplete);
    for (const auto &folder : folders)
        syncFolder(folder);
    for (auto &m : members) {
        if (!m.backup.empty())
            ::unlink(m.backup.c_str());
        m.file->m_temp.clear();
    }
    settle.leave();
    for (auto &m : members) {
        unregisterTemporary(m.file->m_slot);
        m.file->m_slot = -1;
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
