#include "computeloader.h"

#include <atomic>
#include <dlfcn.h>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <unistd.h>
#include <vector>

namespace ckpt {

namespace {
std::atomic<ComputeApi *> g_api{nullptr};
std::mutex g_mutex;

std::filesystem::path executableDir()
{
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::filesystem::current_path() : exe.parent_path();
}
} // namespace

std::string ComputeLoader::moduleFileName() { return "libckpt_compute.so"; }

bool ComputeLoader::isLoaded() { return g_api.load() != nullptr; }

ComputeApi &ComputeLoader::api()
{
    if (auto *a = g_api.load())
        return *a;
    std::lock_guard lock(g_mutex);
    if (auto *a = g_api.load())
        return *a;
    // $CKPT_COMPUTE_MODULE is used instead of the installed module, never before it: a build meant to
    // be tested with another LibTorch must not quietly run with the bundled one when the path is wrong.
    std::vector<std::filesystem::path> candidates;
    const char *env = std::getenv("CKPT_COMPUTE_MODULE");
    if (env && *env) {
        candidates.emplace_back(env);
    } else {
        const auto dir = executableDir();
        candidates.push_back(dir / moduleFileName());
        candidates.push_back(dir / ".." / "lib" / "checkpoint-studio" / moduleFileName());
    }
    // Every place tried and why it failed, on one line: the CLI prints an error as one line.
    std::vector<std::string> tried;
    const auto failed = [&tried](const std::filesystem::path &c, const std::string &why) {
        tried.push_back(c.lexically_normal().string() + " (" + why + ")");
    };
    for (const auto &c : candidates) {
        if (!std::filesystem::exists(c)) {
            failed(c, "not found");
            continue;
        }
        void *handle = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            const char *why = ::dlerror();
            failed(c, why ? why : "dlopen failed");
            continue;
        }
        using Factory = ComputeApi *(*)();
        auto factory = reinterpret_cast<Factory>(::dlsym(handle, "ckpt_compute_api"));
        if (!factory) {
            failed(c, "not a compute module (no ckpt_compute_api symbol)");
            continue;
        }
        ComputeApi *a = factory();
        g_api.store(a);
        return *a;
    }
    std::string places;
    for (std::size_t i = 0; i < tried.size(); ++i)
        places += (i == 0 ? "" : i + 1 == tried.size() ? " and " : ", ") + tried[i];
    if (env && *env)
        throw std::runtime_error("cannot load the compute module (LibTorch), which computes the numbers, from "
                                 "CKPT_COMPUTE_MODULE=" + places + "; correct that path, or unset it to use the "
                                 "module installed with the program");
    throw std::runtime_error("cannot load the compute module " + moduleFileName() +
                             " (LibTorch), which computes the numbers: looked for it at " + places +
                             "; install it beside the program, or set CKPT_COMPUTE_MODULE to its path");
}

} // namespace ckpt
