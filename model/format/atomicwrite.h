#pragma once

#include <cstdint>
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

// Writes `data` to `path` so that the folder holds either the complete new file or what it held
// before: a temporary file beside the target, fsync, read back and compared, then renamed over the
// target. Refuses an existing target unless asked, and always refuses an input file (compared by
// device and inode, so another name for the same file is caught). Throws FormatError naming the
// path and the system's reason (unwritable folder, full disk).
void writeFileAtomically(const std::string &path, std::span<const std::uint8_t> data, const WriteOptions &options = {});

} // namespace ckpt
