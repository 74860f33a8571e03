#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace ckpt {

struct WriteOptions {
    bool overwrite = false;                 // replace an existing file (the CLI's --force)
    std::vector<std::string> inputs;        // files being read: never written, whatever `overwrite` says
    WriteOptions &allowOverwrite(bool v) { overwrite = v; return *this; }
    WriteOptions &protect(std::string path) { inputs.push_back(std::move(path)); return *this; }
};

// Refuses a target that is an input (by device and inode), a directory, or an existing file
// without `overwrite`. Throws FormatError naming the path.
void checkWriteTarget(const std::string &path, const WriteOptions &options);
// Whether `path` is one of `options.inputs` (the same file by device and inode).
bool isInput(const std::string &path, const WriteOptions &options);
// Hidden files beside the `targets` that a write of them leaves when killed (SIGKILL, a crash,
// power lost): its temporary file `.NAME.XXXXXX` and a group commit's backup `.NAME.bak-XXXXXX`,
// or those of a write running now. Paths, sorted; each folder is read once.
std::vector<std::string> interruptedWriteFiles(const std::vector<std::string> &targets);
// Flushes the folder holding `file` (its names: a rename or a removal made durable).
void syncFolderOf(const std::string &file);

// A file written in pieces that appears under its final name only when complete and verified:
// a temporary file beside the target, appended to (short writes and EINTR handled), fsync'ed,
// checked by the caller's verifier, then renamed. Cancelled (the temporary removed) by cancel(),
// by an exception escaping commit(), or by destruction before commit().
class AtomicFileWriter {
public:
    AtomicFileWriter(std::string path, const WriteOptions &options);
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter &) = delete;
    AtomicFileWriter &operator=(const AtomicFileWriter &) = delete;

    // Appends bytes; throws FormatError with the system's reason (full disk ...).
    void write(std::span<const std::uint8_t> data);
    void write(const std::string &data) { write({reinterpret_cast<const std::uint8_t *>(data.data()), data.size()}); }
    // Bytes written so far.
    std::uint64_t size() const { return m_size; }
    const std::string &path() const { return m_path; }
    // Where the bytes go until commit(); empty once committed or cancelled.
    const std::string &temporaryPath() const { return m_temp; }

    // Runs `verify(temporaryPath)` (it throws to refuse) and flushes to disk, leaving the file
    // under its temporary name (still removed by cancel(), destruction or a signal) until
    // commit(): a set of files (a sharded checkpoint's shards) is verified whole before any takes
    // its name.
    void finish(const std::function<void(const std::string &temporaryPath)> &verify = {});
    // finish(verify) unless finished already (`verify` is then not run again), then renames into place.
    void commit(const std::function<void(const std::string &temporaryPath)> &verify = {});
    // Removes the temporary file; the folder is as it was. Safe to call twice.
    void cancel();

private:
    friend void commitTogether(std::span<AtomicFileWriter *const> files);

    std::string m_path;
    std::string m_temp;
    WriteOptions m_options;
    int m_fd = -1;
    std::uint64_t m_size = 0;
    std::uint64_t m_flushStarted = 0;  // bytes the disk was asked to start writing
    int m_slot = -1;                   // where the signal handler finds m_temp (-1: not there)
};

// Renames a set of finished files (finish() called on each) into place together, in the order
// given: every one takes its name, or none does and the folder holds exactly what it held before.
// Each existing target is first hard-linked to `.NAME.bak-XXXXXX` beside it; where the file system
// has no hard links (link(2) answers EPERM, EOPNOTSUPP, ENOSYS or EMLINK: vfat, exFAT, some FUSE
// mounts) the previous file is moved to that name instead, its own name then empty until the new
// file takes it (any other refusal: nothing changed). A rename that fails puts the previous files
// back (a name that had none is removed), and success removes the backups. A signal the handler of
// removeTemporaryFilesOnSignals catches meanwhile does the same: before the last rename the
// previous set is put back, after it the new set stays. Cancels every file when it throws (the
// message names the file, the reason, and any previous file that could not be put back and where
// it is kept). One file is commit().
void commitTogether(std::span<AtomicFileWriter *const> files);

// A command-line run killed by Ctrl-C, SIGTERM or SIGHUP while it writes would leave its
// temporary files (`.NAME.XXXXXX`, as large as the output) behind. After this call those signals
// remove every temporary file an AtomicFileWriter holds at that moment (and settle a set that
// commitTogether is renaming: the previous files put back, or the complete new set kept), then end
// the process as the signal would have (re-raised with its default action). A signal that lands
// in another thread than the one committing a set, or while a set whose paths the handler's table
// cannot hold is committed, waits until the set is settled, and ends the process then. A previous
// file the handler cannot put back is named, with the backup that keeps it. Async-signal-safe: the
// handler only reads fixed tables of paths and calls lstat, rename, unlink and write. Idempotent;
// the CLI calls it before converting.
void removeTemporaryFilesOnSignals();
// Temporary files the signal handler's table can list at once, less room for a few of the caller's
// own (SignalCleanupEntry) and for the index and sidecar committed with the shards: the most shards
// a sharded conversion writes.
inline constexpr std::size_t kMaxShards = 1000;

// Throws FormatError (naming `name`) unless `file` holds exactly `data`.
void verifyFileBytes(const std::string &file, std::span<const std::uint8_t> data, const std::string &name);

// Writes `data` to `path` so that the folder holds either the complete new file or what it held
// before: a temporary file beside the target, fsync, read back and compared, then renamed over the
// target. Refuses an existing target unless asked, and always refuses an input file (compared by
// device and inode, so another name for the same file is caught). Throws FormatError naming the
// path and the system's reason (unwritable folder, full disk).
void writeFileAtomically(const std::string &path, std::span<const std::uint8_t> data, const WriteOptions &options = {});

} // namespace ckpt
