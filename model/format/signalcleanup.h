#pragma once

#include <string>

namespace ckpt {

// A scratch file of the caller's own (not an AtomicFileWriter's: a check's copy beside the output,
// such as the TorchScript dtype check's `.uncast`) listed, for this object's life, among the files
// the handler of removeTemporaryFilesOnSignals (atomicwrite.h) removes when Ctrl-C, SIGTERM or
// SIGHUP ends the process. List it once the caller has created it (never a path that may be
// another's file); the caller still removes it on every normal path. A path too long for the
// handler's table, or one past its places (atomicwrite.cpp), is not listed.
// A folder the caller made (EmptyFolder) is removed with rmdir after the files, the folders listed
// last first: only while it is empty, so never one that holds anything.
class SignalCleanupEntry {
public:
    enum class Kind { File, EmptyFolder };
    explicit SignalCleanupEntry(const std::string &path, Kind kind = Kind::File);
    // A chain of `levels` folders the caller made, one in the other (mkdir -p's new part), named by
    // the deepest: one place however deep. The handler removes the deepest, then each parent up to
    // `levels` of them, with rmdir in a buffer of its own (nothing allocated): only while each is
    // empty, and never a folder above the chain, which was there before.
    SignalCleanupEntry(const std::string &deepest, int levels);
    ~SignalCleanupEntry();
    SignalCleanupEntry(const SignalCleanupEntry &) = delete;
    SignalCleanupEntry &operator=(const SignalCleanupEntry &) = delete;
    bool listed() const { return m_slot >= 0; }

private:
    int m_slot = -1;
};

} // namespace ckpt
