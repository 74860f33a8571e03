#pragma once

#include <iosfwd>
#include <string>

namespace ckpt::cli {

struct ExportOptions {
    std::string file;
    std::string key;
    std::string output;  // .npy or .csv, by extension
    bool force = false;
    std::string weights;  // --weights: the set of weights used as the model's (a tree path)
};

// `ckpt export`: one tensor to .npy or .csv, written safely (temporary file, verified, renamed;
// never over an input, over an existing file only with --force). 0 on success, 1 on error.
int runExport(const ExportOptions &options, std::ostream &out, std::ostream &err);

} // namespace ckpt::cli
