#pragma once

#include <iosfwd>
#include <string>

namespace ckpt::cli {

struct InfoOptions {
    std::string file;
    bool json = false;
    std::string weights;  // --weights: the set of weights used as the model's (a tree path)
};

// `ckpt info`: 0 on success; otherwise one line "ckpt: FILE: reason" on `err` and 1.
int runInfo(const InfoOptions &options, std::ostream &out, std::ostream &err);

} // namespace ckpt::cli
