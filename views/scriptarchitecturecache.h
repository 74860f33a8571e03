#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace ckpt {

// What loading a TorchScript architecture file with a file's weights found (the loader's notes,
// or why the file cannot be used), kept per state of the architecture file: planning a
// conversion again (every settings change replans) reuses it instead of loading the module
// again, and a file changed on disk (another size or modification time) is loaded afresh.
// Safe to use from several planning jobs at once.
class ScriptArchitectureCache {
public:
    // Loads the architecture with the weights: returns the notes, throws saying why it cannot.
    using Loader = std::function<std::vector<std::string>()>;

    // The notes for `path` with the weights `weightsKey` describes: remembered, or `load`ed now
    // (and remembered); what `load` threw is thrown again, as a FormatError with its text.
    std::vector<std::string> notesFor(const std::string &path, const std::string &weightsKey, const Loader &load);
    // How many times a loader ran (tests count them).
    int loads() const;

private:
    // Absolute path, size, modification time (ns), weights.
    using Key = std::tuple<std::string, std::uintmax_t, std::int64_t, std::string>;
    struct Outcome {
        std::vector<std::string> notes;
        std::string error;  // empty: the file loads
        std::uint64_t used = 0;
    };
    static constexpr std::size_t kMaxEntries = 16;  // a few files and weight sets; the oldest goes
    mutable std::mutex m_mutex;
    std::mutex m_loading;  // one load at a time: replans in a row load a changed file once
    std::map<Key, Outcome> m_entries;
    std::uint64_t m_clock = 0;
    int m_loads = 0;
};

} // namespace ckpt
