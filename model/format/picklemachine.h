#pragma once

#include "value.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt {

// Limits no input can move. Each has a test at and just past it.
struct PickleLimits {
    static constexpr std::uint32_t kMaxDepth = 1000;              // nesting of containers
    static constexpr std::size_t kMaxMemo = 16u << 20;            // memo entries
    static constexpr std::size_t kMaxBigIntBytes = 4096;  // LONG1/LONG4 payload (decimal text is quadratic)
    // Paths made of keys (tensor names, modules' dotted paths) of one file together: a long key
    // shared through the memo and nested deep would otherwise make gigabytes from a small file.
    static constexpr std::size_t kMaxPathTotalBytes = 256u << 20;
};

// Every global name a pickle mentions, with how often and where first.
struct GlobalUse {
    std::string name;  // "module.qualname"
    std::int64_t count = 0;
    std::uint64_t firstOffset = 0;
    std::string module;      // as remapped for Python 3
    std::string qualname;    // may hold dots: an attribute chain Python would follow
};

// Module and name of a global that STACK_GLOBAL takes from values other than strings: Python
// would import whatever those values are when it loads the file.
inline constexpr std::string_view kComputedName = "<computed at load time>";

// An opcode a pickle uses, and where first (a file offset).
struct OpcodeUse {
    std::uint8_t op = 0;
    std::uint64_t firstOffset = 0;
};

// Interprets pickle opcodes (protocols 0-5) as data and builds a Value tree.
// No name is ever resolved to code: known reconstructors are understood, anything else becomes
// an opaque Object that records its class, arguments and state.
class PickleMachine {
public:
    // Resolves a persistent id (a storage reference) to a value; `offset` is where it was met.
    using PersistentLoad = std::function<ValuePtr(const ValuePtr &pid, std::uint64_t offset)>;
    // Called now and then with the fraction done; returning false cancels.
    using Progress = std::function<bool(double)>;

    struct Result {
        ValuePtr value;
        std::size_t end = 0;  // offset just past STOP, relative to the data given
        int protocol = 0;
    };

    PickleMachine() = default;
    void setPersistentLoad(PersistentLoad load) { m_persistentLoad = std::move(load); }
    void setProgress(Progress p) { m_progress = std::move(p); }
    // The containers built so far; whoever keeps the values keeps this too (see ValueArena).
    const std::shared_ptr<ValueArena> &arena() const { return m_arena; }
    // Offset of the data within the file, so that errors and globals name file offsets.
    void setBaseOffset(std::uint64_t base) { m_base = base; }

    // Runs one pickle from the start of `data` to its STOP. Throws FormatError naming the offset.
    Result run(std::span<const std::uint8_t> data);

    // Globals seen in every run of this machine, in order of first use.
    std::vector<GlobalUse> globals() const;
    // Every opcode met in the runs of this machine, by opcode byte, with the offset it was first met at.
    std::vector<OpcodeUse> opcodes() const;
    // Things worth telling the user that did not stop the reading (hooks, ignored BUILDs).
    const std::vector<std::string> &warnings() const { return m_warnings; }

private:
    PersistentLoad m_persistentLoad;
    Progress m_progress;
    std::uint64_t m_base = 0;
    std::map<std::string, std::size_t> m_globalIndex;
    std::vector<GlobalUse> m_globals;
    static constexpr std::uint64_t kNever = ~std::uint64_t(0);
    std::array<std::uint64_t, 256> m_opcodeFirst = [] {
        std::array<std::uint64_t, 256> a{};
        a.fill(kNever);
        return a;
    }();
    std::vector<std::string> m_warnings;
    std::shared_ptr<ValueArena> m_arena = std::make_shared<ValueArena>();

    friend class PickleRun;
    void noteGlobal(const std::string &module, const std::string &qualname, std::uint64_t offset);
};

// Name of a pickle opcode byte ("BINUNICODE"), or "" when the byte is no opcode.
std::string_view opcodeName(std::uint8_t op);

} // namespace ckpt
