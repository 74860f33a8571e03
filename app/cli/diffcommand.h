#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace ckpt::cli {

struct DiffOptions {
    std::string a;
    std::string b;
    double atol = 0.0;
    double rtol = 0.0;
    std::vector<std::string> mappings;  // "OLD=NEW", applied to a's names
    bool json = false;
    // --weights: one path for both files, or two (the first file's, then the second's; an empty
    // one keeps that file's own choice).
    std::vector<std::string> weights;
};

struct SeriesOptions {
    std::vector<std::string> files;
    bool json = false;
    std::string weights;  // --weights: the set of weights of every file (a tree path)
};

// `ckpt diff A B`: what changed between two checkpoints. Exit status 0 when the weights are equal
// within tolerance (same names after prefix alignment, same shapes), 1 when they differ, 2 on error.
int runDiff(const DiffOptions &options, std::ostream &out, std::ostream &err);

// `ckpt series FILE...`: per tensor, its norm and drift across a run's checkpoints (ordered by
// epoch, step, then name). 0 on success, 1 on error.
int runSeries(const SeriesOptions &options, std::ostream &out, std::ostream &err);

} // namespace ckpt::cli
