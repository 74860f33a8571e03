#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace ckpt::cli {

struct ScanOptions {
    std::vector<std::string> files;
    bool json = false;
    bool verbose = false;  // text: list the understood globals too
};

// `ckpt scan`: what each file would do if loaded in Python. Exit 0 when nothing dangerous is
// named, 3 when something dangerous is, 1 when a file cannot be read (errors win over findings).
int runScan(const ScanOptions &options, std::ostream &out, std::ostream &err);

} // namespace ckpt::cli
