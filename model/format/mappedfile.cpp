#include "mappedfile.h"

#include "error.h"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt {

namespace {
// Live mappings, readable from a signal handler: fixed slots of atomics, no locks, no allocation.
struct Slot {
    std::atomic<std::uintptr_t> begin{0};  // 0: free or being set up
    std::atomic<std::uintptr_t> end{0};    // page-rounded end of the mapping
    std::atomic<bool> truncated{false};
    std::atomic<const MappedFile *> owner{nullptr};
};
constexpr std::size_t kSlots = 4096;
std::array<Slot, kSlots> g_slots;
struct sigaction g_previous {};
std::uintptr_t g_pageSize = 4096;

void onSigbus(int sig, siginfo_t *info, void *context)
{
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    // Only a fault has an address (si_code > 0); a SIGBUS sent by kill() is never ours.
    for (auto &slot : g_slots) {
        if (info->si_code <= 0)
            break;
        const auto begin = slot.begin.load(std::memory_order_acquire);
        const auto end = slot.end.load(std::memory_order_acquire);
        if (begin == 0 || addr < begin || addr >= end)
            continue;
        // The file ends before this page now, and so before every later one: zeros from here on.
        const auto page = addr & ~(g_pageSize - 1);
        void *p = ::mmap(reinterpret_cast<void *>(page), end - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                         -1, 0);
        if (p != MAP_FAILED) {
            slot.truncated.store(true, std::memory_order_release);
            return;  // the read is repeated and finds zeros
        }
        break;
    }
    // Not ours: whoever handled SIGBUS before us, or the default action (the process ends).
    if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) {
        g_previous.sa_sigaction(sig, info, context);
        return;
    }
    if (!(g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        g_previous.sa_handler(sig);
        return;
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGBUS, &dfl, nullptr);
    ::raise(sig);  // pending until we return; a faulting access would fault again anyway
}

void installGuard()
{
    static std::once_flag once;
    std::call_once(once, [] {
        g_pageSize = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        struct sigaction sa {};
        sa.sa_sigaction = onSigbus;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        ::sigemptyset(&sa.sa_mask);
        ::sigaction(SIGBUS, &sa, &g_previous);
    });
}

int registerMapping(const MappedFile *owner, const void *data, std::size_t size)
{
    for (std::size_t i = 0; i < kSlots; ++i) {
        const MappedFile *expected = nullptr;
        if (!g_slots[i].owner.compare_exchange_strong(expected, owner))
            continue;
        const auto begin = reinterpret_cast<std::uintptr_t>(data);
        g_slots[i].truncated.store(false);
        g_slots[i].end.store(begin + (size + g_pageSize - 1) / g_pageSize * g_pageSize, std::memory_order_release);
        g_slots[i].begin.store(begin, std::memory_order_release);
        return static_cast<int>(i);
    }
    return -1;  // more live mappings than slots: this one reads unguarded
}

} // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string &path)
{
    installGuard();
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. Only
    // mmap reads through this descriptor, and it ignores the flag, so it is not cleared.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        throw FormatError(std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        throw FormatError(std::string("cannot stat: ") + std::strerror(e));
    }
    // Only a regular file has a size to map: a FIFO or a device would block, or read as empty.
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        const char *what = S_ISDIR(st.st_mode)    ? "a directory"
                           : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                           : S_ISCHR(st.st_mode)  ? "a character device"
                           : S_ISBLK(st.st_mode)  ? "a block device"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                                                  : "of an unknown kind";
        throw FormatError(std::string("is ") + what + ", not a regular file");
    }
    std::shared_ptr<MappedFile> f(new MappedFile);
    f->m_path = path;
    f->m_size = static_cast<std::size_t>(st.st_size);
    if (f->m_size > 0) {
        void *p = ::mmap(nullptr, f->m_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            throw FormatError(std::string("cannot map: ") + std::strerror(e));
        }
        f->m_map = p;
        f->m_data = static_cast<const std::uint8_t *>(p);
        f->m_slot = registerMapping(f.get(), p, f->m_size);
        if (f->m_slot >= 0)
            f->m_truncated = &g_slots[static_cast<std::size_t>(f->m_slot)].truncated;
        f->setAccess(Access::Random);  // readers index first (see setAccess)
    }
    ::close(fd);
    return f;
}

void MappedFile::setAccess(Access access) const
{
    if (!m_map || m_access.load(std::memory_order_relaxed) == access ||
        m_access.exchange(access, std::memory_order_relaxed) == access)
        return;
#ifdef POSIX_MADV_RANDOM
    // A hint: when it fails the reads still work, only at another speed.
    ::posix_madvise(m_map, m_size, access == Access::Random ? POSIX_MADV_RANDOM : POSIX_MADV_NORMAL);
#endif
}

void prefetchMapped(std::span<const std::uint8_t> bytes)
{
#ifdef POSIX_MADV_WILLNEED
    if (bytes.empty())
        return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(bytes.data()) & ~(page - 1);
    const auto end = reinterpret_cast<std::uintptr_t>(bytes.data()) + bytes.size();
    ::posix_madvise(reinterpret_cast<void *>(begin), end - begin, POSIX_MADV_WILLNEED);
#else
    (void)bytes;
#endif
}

std::shared_ptr<MappedFile> MappedFile::fromBytes(std::string bytes, std::string name)
{
    std::shared_ptr<MappedFile> f(new MappedFile);
    f->m_path = std::move(name);
    f->m_owned = std::move(bytes);
    f->m_data = reinterpret_cast<const std::uint8_t *>(f->m_owned.data());
    f->m_size = f->m_owned.size();
    return f;
}

MappedFile::~MappedFile()
{
    if (m_slot >= 0) {
        auto &slot = g_slots[static_cast<std::size_t>(m_slot)];
        slot.begin.store(0, std::memory_order_release);
        slot.end.store(0, std::memory_order_release);
        slot.owner.store(nullptr, std::memory_order_release);
    }
    if (m_map)
        ::munmap(m_map, m_size);
}

} // namespace ckpt
