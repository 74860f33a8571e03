#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ckpt {

struct TensorRef;
struct StorageRef;
class Value;
using ValuePtr = std::shared_ptr<Value>;

// One node of the tree a pickle describes. Nothing in it is ever executed: a Python call the pickle
// asks for is either understood (OrderedDict, tensor rebuilds, ...) or kept as an opaque Object.
class Value {
public:
    enum class Kind : std::uint8_t {
        None,
        Bool,
        Int,      // fits in int64
        BigInt,   // wider integer, kept exact as decimal text
        Float,
        Complex,
        String,
        Bytes,
        Tuple,
        List,
        Dict,     // insertion-ordered; keys of any scalar type
        Set,
        FrozenSet,
        Global,   // a reference to a module-level name (class, function, dtype); never resolved
        Object,   // an opaque instance: class, constructor arguments, state, appended items
        Tensor,
        Storage,  // a persistent id resolved to a storage record (only inside tensor rebuilds)
    };

    struct DictEntry {
        ValuePtr key;
        ValuePtr value;
    };

    Value() = default;
    explicit Value(Kind kind) : m_kind(kind) {}
    ~Value();
    Value(const Value &) = delete;
    Value &operator=(const Value &) = delete;

    static ValuePtr none();
    static ValuePtr boolean(bool v);
    static ValuePtr integer(std::int64_t v);
    static ValuePtr bigInteger(std::string decimal);
    static ValuePtr floating(double v);
    static ValuePtr complex(double re, double im);
    static ValuePtr string(std::string utf8);
    static ValuePtr bytes(std::string raw);
    static ValuePtr tuple(std::vector<ValuePtr> items = {});
    static ValuePtr list(std::vector<ValuePtr> items = {});
    static ValuePtr dict();
    static ValuePtr set(Kind kind = Kind::Set);
    static ValuePtr global(std::string module, std::string name);
    static ValuePtr object(ValuePtr cls, ValuePtr args);
    static ValuePtr tensor(std::shared_ptr<TensorRef> ref);
    static ValuePtr storage(std::shared_ptr<StorageRef> ref);

    Kind kind() const { return m_kind; }
    bool isNone() const { return m_kind == Kind::None; }
    bool isInt() const { return m_kind == Kind::Int; }
    bool isString() const { return m_kind == Kind::String; }
    bool isDict() const { return m_kind == Kind::Dict; }
    bool isTensor() const { return m_kind == Kind::Tensor; }
    bool isSequence() const { return m_kind == Kind::Tuple || m_kind == Kind::List; }
    bool isContainer() const;

    bool asBool() const { return m_int != 0; }
    std::int64_t asInt() const { return m_int; }
    double asFloat() const { return m_float; }
    double imag() const { return m_extra ? m_extra->imag : 0.0; }
    // String, Bytes and BigInt text; for Global the module.
    const std::string &text() const { return m_text; }
    // For Global: the name inside the module.
    const std::string &name() const { return m_extra ? m_extra->name : emptyText(); }
    std::string qualifiedName() const { return m_text + "." + name(); }

    // Tuple, List, Set, FrozenSet elements; Object: items appended after construction.
    std::vector<ValuePtr> &items() { return m_items; }
    const std::vector<ValuePtr> &items() const { return m_items; }
    // Dict entries; Object: items set after construction (SETITEM on a defaultdict, ...).
    std::vector<DictEntry> &entries() { return m_entries; }
    const std::vector<DictEntry> &entries() const { return m_entries; }

    // Python class this value came from when it is not the plain builtin ("collections.OrderedDict",
    // "torch.Size", "torch.device", "torch.torch_version.TorchVersion", "builtins.bytearray").
    const std::string &pythonClass() const { return m_extra ? m_extra->pythonClass : emptyText(); }
    void setPythonClass(std::string cls) { extra().pythonClass = std::move(cls); }

    // Object: its class (a Global), constructor arguments (a Tuple) and state set by BUILD.
    // Dict: state holds what BUILD set, e.g. the OrderedDict's `_metadata` attribute, kept apart.
    // Tensor: state holds extra attributes a parameter or subclass carried.
    const ValuePtr &objectClass() const { return m_extra ? m_extra->cls : noValue(); }
    const ValuePtr &args() const { return m_extra ? m_extra->args : noValue(); }
    const ValuePtr &state() const { return m_extra ? m_extra->state : noValue(); }
    void setState(ValuePtr state) { extra().state = std::move(state); }
    void setArgs(ValuePtr args) { extra().args = std::move(args); }
    // Object: made by cls.__new__(cls, *args) (NEWOBJ, or INST/OBJ without arguments) rather than
    // by calling its class or function (REDUCE): a writer must say the same.
    bool builtByNew() const { return m_extra && m_extra->builtByNew; }
    void setBuiltByNew(bool v) { extra().builtByNew = v; }

    const std::shared_ptr<TensorRef> &tensorRef() const;
    // Turns this node (an object being built) into a tensor in place, so that every memo
    // reference to it sees the tensor: torch < 0.4 parameters are filled in by BUILD.
    void becomeTensor(std::shared_ptr<TensorRef> ref);
    const std::shared_ptr<StorageRef> &storageRef() const;

    // Dict lookup by string key; nullptr when absent.
    ValuePtr get(const std::string &key) const;
    // Height of the tree under this node as known when children were added; guards nesting depth.
    // A child that grows after it was added does not raise its parents' heights: see treeHeight().
    std::uint32_t height() const { return m_height; }
    void noteChild(const ValuePtr &child);
    // True once this value was noted as another's child (it may then be reached through a parent).
    bool hasParent() const { return m_hasParent; }

    // Drops every child (items, entries, class, arguments, state): breaks reference cycles.
    void releaseChildren();

    // Short description of the type for display ("OrderedDict", "tuple", "Tensor", "argparse.Namespace").
    std::string typeName() const;

private:
    // What few values have (a global's name, an object's class, arguments and state, a dict's
    // Python class, a storage, a tensor's reference, a complex's imaginary part) lives out of line: a file of 20,000
    // tensors makes half a million values, and their size was most of the time spent reading it
    // (the kernel zeroing the pages they fill).
    struct Extra {
        void *pool = nullptr;  // the value pool it was carved from, which it keeps alive; null: the heap
        double imag = 0.0;
        std::string name;
        std::string pythonClass;
        ValuePtr cls;
        ValuePtr args;
        ValuePtr state;
        bool builtByNew = false;
        std::shared_ptr<StorageRef> storage;
        std::shared_ptr<TensorRef> tensor;
    };
    // Made from the thread's value pool when one is active (see ValuePoolScope), else the heap:
    // 20,000 tensors have 60,000 of these (tensors, storages, their OrderedDicts of hooks).
    Extra &extra();
    struct ExtraDeleter {
        void operator()(Extra *e) const noexcept;
    };
    static const std::string &emptyText();
    static const ValuePtr &noValue();

    Kind m_kind = Kind::None;
    bool m_hasParent = false;
    std::uint32_t m_height = 0;
    std::int64_t m_int = 0;
    double m_float = 0.0;
    std::string m_text;
    std::vector<ValuePtr> m_items;
    std::vector<DictEntry> m_entries;
    std::unique_ptr<Extra, ExtraDeleter> m_extra;
};

// A float as Python's repr prints it ("0.1", "1.0", "nan", "inf").
std::string formatFloat(double v);
// A float32 (bits 32) or float16 (bits 16) value as numpy's repr prints its scalar: the fewest
// digits that read back to the same value in that precision (0.1, not 0.10000000149011612), laid
// out as Python lays out a float.
std::string formatFloat(double v, int bits);

// While one of these is alive on a thread, the values made on that thread are carved from blocks
// of a pool instead of being allocated one by one; the pool's memory goes back when the last value
// made from it is destroyed (on any thread). Reading a file of 20,000 tensors makes half a million
// values, and malloc was most of the time. Scopes nest; the innermost one is used.
class ValuePoolScope {
public:
    ValuePoolScope();
    ~ValuePoolScope();
    ValuePoolScope(const ValuePoolScope &) = delete;
    ValuePoolScope &operator=(const ValuePoolScope &) = delete;

private:
    std::shared_ptr<void> m_previous;
};

// Owns the containers a pickle built, so that cycles (a list that holds itself, through the memo)
// are broken when the last document using them goes away: shared pointers alone would leak them.
class ValueArena {
public:
    ValueArena() = default;
    ValueArena(const ValueArena &) = delete;
    ValueArena &operator=(const ValueArena &) = delete;
    ~ValueArena();
    void add(const ValuePtr &v) { m_values.push_back(v); }
    // Every container the pickle built, in the order it was made, reachable from the result or
    // not (a call's arguments, what was popped): the security report looks at how each value was used.
    const std::vector<ValuePtr> &values() const { return m_values; }

private:
    std::vector<ValuePtr> m_values;
};

// The true height of the graph under `root` (the longest chain of children, a cycle counted once),
// computed iteratively in O(nodes + edges); stops early, returning a value above `limit`, as soon
// as a chain longer than `limit` is found. Unlike Value::height() it holds whatever order the
// graph was built in (a list appended to after it was put in its parent).
std::uint32_t treeHeight(const Value &root, std::uint32_t limit);

// A scalar key rendered as Python would print it inside a path ("fc1.weight", "0", "True").
std::string keyText(const Value &key);

} // namespace ckpt
