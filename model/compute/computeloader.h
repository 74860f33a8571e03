#pragma once

#include "computeapi.h"

#include <string>

namespace ckpt {

// Loads the compute module (LibTorch) on first use. Looks for it in $CKPT_COMPUTE_MODULE, beside
// the running program, then in ../lib/checkpoint-studio relative to it. Thread-safe.
class ComputeLoader {
public:
    // The module's API; throws std::runtime_error saying where it looked and why it failed.
    static ComputeApi &api();
    // True once the module is loaded in this process.
    static bool isLoaded();
    // File name of the module ("libckpt_compute.so").
    static std::string moduleFileName();
};

} // namespace ckpt
