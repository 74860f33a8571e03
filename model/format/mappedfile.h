#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace ckpt {

// A read-only memory mapping of a whole file. Tensor data are views on it, so it lives as long
// as any document or tensor reference that needs it (hold it by shared_ptr).
//
// A file truncated while mapped would kill the process with SIGBUS on the next read past its new
// end. A process-wide SIGBUS handler (installed by the first open, chained to any earlier one)
// answers such reads in our mappings with zero pages and marks the mapping truncated(); whoever
// consumes the bytes checks that and reports "the file changed or was truncated while open"
// instead of numbers made of zeros. Faults anywhere else go to the earlier handler or the default.
class MappedFile {
public:
    // Maps the regular file `path` (never blocks on a FIFO); throws FormatError with the reason.
    static std::shared_ptr<MappedFile> open(const std::string &path);
    // Wraps bytes already in memory (tests, decompressed records); the mapping owns a copy.
    static std::shared_ptr<MappedFile> fromBytes(std::string bytes, std::string name = "<memory>");
    ~MappedFile();
    MappedFile(const MappedFile &) = delete;
    MappedFile &operator=(const MappedFile &) = delete;

    std::span<const std::uint8_t> bytes() const { return {m_data, m_size}; }

    // How the mapping is about to be read, so that the kernel reads ahead, or not, to suit.
    enum class Access {
        Random,  // scattered small reads (indexing): each read brings in its own page and no more
        Normal,  // passes over tensor data: the kernel's usual read-ahead
    };
    // Sets the pattern for the whole mapping (a range would split it into as many mappings as
    // ranges). open() sets Random: with the usual read-ahead, touching each record's header of a
    // zip (or each storage's size of a legacy stream) reads a window around it, and windows of a
    // few MiB add up to the whole file. Whatever then reads tensor bytes in bulk sets Normal
    // (Random kept for a pass over gigabytes makes it several times slower). Cheap when the
    // pattern is already set; no effect on bytes in memory or where the platform cannot say it.
    // Random is set only while the file is read, before its document is shared with other threads:
    // after that, threads only ever ask for Normal, so the pattern and the kernel's agree.
    void setAccess(Access access) const;
    Access access() const { return m_access.load(std::memory_order_relaxed); }
    std::size_t size() const { return m_size; }
    const std::string &path() const { return m_path; }

    // True once a read past the file's current end was answered with zeros: the file shrank
    // while mapped, and bytes read from it since may be zeros instead of its content. Inline, so
    // a second copy of this library (the compute module links its own) sees the same flag.
    bool truncated() const { return m_truncated && m_truncated->load(std::memory_order_acquire); }
    // Whether the SIGBUS guard covers this mapping (false when it is empty, in memory, or no slot
    // of the guard's table was free).
    bool guarded() const { return m_truncated != nullptr; }

private:
    MappedFile() = default;
    std::string m_path;
    const std::uint8_t *m_data = nullptr;
    std::size_t m_size = 0;
    void *m_map = nullptr;
    std::string m_owned;
    int m_slot = -1;  // entry in the SIGBUS guard's table of live mappings
    const std::atomic<bool> *m_truncated = nullptr;  // that entry's flag
    mutable std::atomic<Access> m_access{Access::Normal};
};

// Asks the kernel to start reading `bytes` (a part of a mapping) now, in large reads: they are
// about to be read in order while the mapping is Random. Only a hint: no effect on memory that is
// not a file mapping, or where the platform cannot say it.
void prefetchMapped(std::span<const std::uint8_t> bytes);

} // namespace ckpt
