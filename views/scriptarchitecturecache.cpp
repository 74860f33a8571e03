#include "scriptarchitecturecache.h"

#include "error.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <optional>
#include <system_error>

namespace ckpt {

std::vector<std::string> ScriptArchitectureCache::notesFor(const std::string &path, const std::string &weightsKey,
                                                           const Loader &load)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path absolute = fs::absolute(path, ec);
    const std::uintmax_t size = ec ? 0 : fs::file_size(absolute, ec);
    const auto modified = ec ? fs::file_time_type() : fs::last_write_time(absolute, ec);
    if (ec) {  // missing or unreadable: the loader says so, in its words; nothing to remember
        {
            const std::lock_guard lock(m_mutex);
            ++m_loads;
        }
        return load();
    }
    const Key key{absolute.string(), size,
                  std::chrono::duration_cast<std::chrono::nanoseconds>(modified.time_since_epoch()).count(), weightsKey};
    // What was found for the key, copied under the lock (another job may drop entries meanwhile).
    auto remembered = [this, &key]() -> std::optional<Outcome> {
        const std::lock_guard lock(m_mutex);
        const auto it = m_entries.find(key);
        if (it == m_entries.end())
            return std::nullopt;
        it->second.used = ++m_clock;
        return it->second;
    };
    auto answer = [](const Outcome &o) {
        if (!o.error.empty())
            throw FormatError(o.error);
        return o.notes;
    };
    if (const auto o = remembered())
        return answer(*o);
    // One load at a time: a job that waited here while another loaded the same file finds what
    // that one found, rather than loading it again.
    const std::lock_guard loading(m_loading);
    if (const auto o = remembered())
        return answer(*o);
    {
        const std::lock_guard lock(m_mutex);
        ++m_loads;
    }
    Outcome outcome;
    try {
        outcome.notes = load();
    } catch (const std::exception &e) {
        outcome.error = e.what();
        if (outcome.error.empty())
            outcome.error = path + ": cannot be loaded as a TorchScript architecture";
    }
    {
        const std::lock_guard lock(m_mutex);
        // Entries for the file's earlier states are of no further use.
        for (auto it = m_entries.begin(); it != m_entries.end();)
            it = std::get<0>(it->first) == std::get<0>(key) &&
                         (std::get<1>(it->first) != size || std::get<2>(it->first) != std::get<2>(key))
                     ? m_entries.erase(it)
                     : std::next(it);
        if (m_entries.size() >= kMaxEntries)
            m_entries.erase(std::min_element(m_entries.begin(), m_entries.end(), [](const auto &a, const auto &b) {
                return a.second.used < b.second.used;
            }));
        outcome.used = ++m_clock;
        m_entries[key] = outcome;
    }
    if (!outcome.error.empty())
        throw FormatError(outcome.error);
    return outcome.notes;
}

int ScriptArchitectureCache::loads() const
{
    const std::lock_guard lock(m_mutex);
    return m_loads;
}

} // namespace ckpt
