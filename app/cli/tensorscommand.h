#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace ckpt::cli {

struct TensorsOptions {
    std::string file;
    bool stats = false;
    std::string filter;
    bool json = false;
    std::string weights;  // --weights: the set of weights used as the model's (a tree path)
};

struct ShowOptions {
    std::string file;
    std::string key;
    std::int64_t limit = 100;
    int histogram = 0;  // bins; 0 for none
    bool json = false;
    std::string weights;  // --weights: the set of weights used as the model's (a tree path)
};

// `ckpt tensors`: the tensor table (the state dict, or every tensor when there is none), with
// statistics computed by the compute module when asked. 0 on success, 1 on error.
int runTensors(const TensorsOptions &options, std::ostream &out, std::ostream &err);

// `ckpt show`: one entry by state-dict name or tree path ("a/b/0"): a tensor's summary,
// statistics and first values, or any other value as JSON. 0 on success, 1 on error.
int runShow(const ShowOptions &options, std::ostream &out, std::ostream &err);

} // namespace ckpt::cli
