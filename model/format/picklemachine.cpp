#include "picklemachine.h"

#include "error.h"
#include "pythonnames.h"
#include "tensorref.h"
#include "textcodec.h"
#include "valuetree.h"

#include <algorithm>
#include <array>
#include <bit>
#include <type_traits>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <cstring>
#include <unordered_map>

namespace ckpt {

namespace {

enum Op : std::uint8_t {
    MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I', BININT = 'J',
    BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P', BINPERSID = 'Q', REDUCE = 'R',
    STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U', UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a',
    BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h',
    INST = 'i', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q',
    LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
    PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85, TUPLE2 = 0x86,
    TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b, BINBYTES = 'B',
    SHORT_BINBYTES = 'C', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f,
    ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
    BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98,
};

struct OpName {
    std::uint8_t op;
    std::string_view name;
};

constexpr OpName kOpNames[] = {
    {MARK, "MARK"}, {STOP, "STOP"}, {POP, "POP"}, {POP_MARK, "POP_MARK"}, {DUP, "DUP"}, {FLOAT, "FLOAT"},
    {INT, "INT"}, {BININT, "BININT"}, {BININT1, "BININT1"}, {LONG, "LONG"}, {BININT2, "BININT2"},
    {NONE, "NONE"}, {PERSID, "PERSID"}, {BINPERSID, "BINPERSID"}, {REDUCE, "REDUCE"}, {STRING, "STRING"},
    {BINSTRING, "BINSTRING"}, {SHORT_BINSTRING, "SHORT_BINSTRING"}, {UNICODE, "UNICODE"},
    {BINUNICODE, "BINUNICODE"}, {APPEND, "APPEND"}, {BUILD, "BUILD"}, {GLOBAL, "GLOBAL"}, {DICT, "DICT"},
    {EMPTY_DICT, "EMPTY_DICT"}, {APPENDS, "APPENDS"}, {GET, "GET"}, {BINGET, "BINGET"}, {INST, "INST"},
    {LONG_BINGET, "LONG_BINGET"}, {LIST, "LIST"}, {EMPTY_LIST, "EMPTY_LIST"}, {OBJ, "OBJ"}, {PUT, "PUT"},
    {BINPUT, "BINPUT"}, {LONG_BINPUT, "LONG_BINPUT"}, {SETITEM, "SETITEM"}, {TUPLE, "TUPLE"},
    {EMPTY_TUPLE, "EMPTY_TUPLE"}, {SETITEMS, "SETITEMS"}, {BINFLOAT, "BINFLOAT"}, {PROTO, "PROTO"},
    {NEWOBJ, "NEWOBJ"}, {EXT1, "EXT1"}, {EXT2, "EXT2"}, {EXT4, "EXT4"}, {TUPLE1, "TUPLE1"},
    {TUPLE2, "TUPLE2"}, {TUPLE3, "TUPLE3"}, {NEWTRUE, "NEWTRUE"}, {NEWFALSE, "NEWFALSE"}, {LONG1, "LONG1"},
    {LONG4, "LONG4"}, {BINBYTES, "BINBYTES"}, {SHORT_BINBYTES, "SHORT_BINBYTES"},
    {SHORT_BINUNICODE, "SHORT_BINUNICODE"}, {BINUNICODE8, "BINUNICODE8"}, {BINBYTES8, "BINBYTES8"},
    {EMPTY_SET, "EMPTY_SET"}, {ADDITEMS, "ADDITEMS"}, {FROZENSET, "FROZENSET"}, {NEWOBJ_EX, "NEWOBJ_EX"},
    {STACK_GLOBAL, "STACK_GLOBAL"}, {MEMOIZE, "MEMOIZE"}, {FRAME, "FRAME"}, {BYTEARRAY8, "BYTEARRAY8"},
    {NEXT_BUFFER, "NEXT_BUFFER"}, {READONLY_BUFFER, "READONLY_BUFFER"},
};

// Python 2 names as Python 3's unpickler maps them (pickle.Unpickler.find_class, fix_imports): for a
// pickle of protocol < 3 only, the (module, name) pairs of _compat_pickle.NAME_MAPPING first, then
// the modules of its IMPORT_MAPPING for every name in them. The tables are generated from Python
// (scripts/python_names.py).
std::pair<std::string, std::string> remapGlobal(std::string module, std::string name, int protocol)
{
    if (protocol >= 3)
        return {std::move(module), std::move(name)};
    const std::array<std::string_view, 4> key{module, name, {}, {}};
    const auto *names = std::lower_bound(std::begin(pynames::kNameMapping), std::end(pynames::kNameMapping), key,
                                         [](const auto &a, const auto &b) {
                                             return std::pair(a[0], a[1]) < std::pair(b[0], b[1]);
                                         });
    if (names != std::end(pynames::kNameMapping) && (*names)[0] == module && (*names)[1] == name)
        return {std::string((*names)[2]), std::string((*names)[3])};
    const std::array<std::string_view, 2> mod{module, {}};
    const auto *imports = std::lower_bound(std::begin(pynames::kImportMapping), std::end(pynames::kImportMapping), mod,
                                           [](const auto &a, const auto &b) { return a[0] < b[0]; });
    if (imports != std::end(pynames::kImportMapping) && (*imports)[0] == module)
        return {std::string((*imports)[1]), std::move(name)};
    return {std::move(module), std::move(name)};
}

} // namespace

std::string_view opcodeName(std::uint8_t op)
{
    for (const auto &n : kOpNames)
        if (n.op == op)
            return n.name;
    return {};
}

void PickleMachine::noteGlobal(const std::string &module, const std::string &qualname, std::uint64_t offset)
{
    const std::string name = module == kComputedName ? module : module + "." + qualname;
    auto it = m_globalIndex.find(name);
    if (it == m_globalIndex.end()) {
        m_globalIndex.emplace(name, m_globals.size());
        m_globals.push_back({name, 1, offset, module, qualname});
    } else {
        ++m_globals[it->second].count;
    }
}

std::vector<GlobalUse> PickleMachine::globals() const { return m_globals; }

std::vector<OpcodeUse> PickleMachine::opcodes() const
{
    std::vector<OpcodeUse> out;
    for (std::size_t op = 0; op < m_opcodeFirst.size(); ++op)
        if (m_opcodeFirst[op] != kNever)
            out.push_back({static_cast<std::uint8_t>(op), m_opcodeFirst[op]});
    return out;
}

// One execution of the machine over one pickle.
class PickleRun {
public:
    PickleRun(PickleMachine &m, std::span<const std::uint8_t> d) : m_machine(m), m_data(d) {}

    PickleMachine::Result run();

private:
    PickleMachine &m_machine;
    std::span<const std::uint8_t> m_data;
    std::size_t m_pos = 0;
    std::size_t m_opStart = 0;
    std::uint8_t m_op = 0;
    int m_protocol = 0;
    static constexpr int kMaxRebuildNesting = 8;
    int m_rebuildNesting = 0;
    std::vector<ValuePtr> m_stack;
    std::vector<std::size_t> m_marks;
    // The memo. Picklers number entries 0, 1, 2, ... in order, so they live in a vector; an index
    // far past the entries stored (a hand-made pickle) goes to the map, so that no allocation is
    // sized by a number read from the file.
    std::vector<ValuePtr> m_memoDense;
    std::unordered_map<std::uint64_t, ValuePtr> m_memo;
    std::size_t m_memoCount = 0;

    [[noreturn]] void fail(const std::string &what) const
    {
        std::string op(opcodeName(m_op));
        throw FormatError("pickle offset " + std::to_string(m_machine.m_base + m_opStart) +
                          (op.empty() ? std::string() : " (" + op + ")") + ": " + what);
    }

    std::uint64_t fileOffset() const { return m_machine.m_base + m_opStart; }

    // --- reading the byte stream -------------------------------------------------------------
    std::span<const std::uint8_t> take(std::uint64_t n)
    {
        if (n > m_data.size() - m_pos)
            fail("needs " + std::to_string(n) + " bytes but only " + std::to_string(m_data.size() - m_pos) +
                 " remain (truncated pickle?)");
        auto s = m_data.subspan(m_pos, static_cast<std::size_t>(n));
        m_pos += static_cast<std::size_t>(n);
        return s;
    }
    template <typename T> T readLE()
    {
        auto s = take(sizeof(T));
        std::make_unsigned_t<T> u = 0;
        for (std::size_t i = sizeof(T); i-- > 0;)
            u = static_cast<std::make_unsigned_t<T>>((u << 8) | s[i]);
        return static_cast<T>(u);
    }
    std::string takeString(std::uint64_t n)
    {
        auto s = take(n);
        return {reinterpret_cast<const char *>(s.data()), s.size()};
    }
    // A str opcode's bytes: Python decodes them as UTF-8 with 'surrogatepass', so lone surrogates
    // are text and anything else that is not UTF-8 is an error (UnicodeDecodeError) in Python too.
    std::string takeUtf8(std::uint64_t n)
    {
        std::string s = takeString(n);
        if (!isValidUtf8(s))
            fail("text of " + std::to_string(s.size()) + " bytes is not valid UTF-8 (" + hexPreview(s, 16) +
                 "); Python refuses it too (UnicodeDecodeError)");
        return s;
    }
    std::string readLine()
    {
        const auto *begin = m_data.data() + m_pos;
        const auto *end = m_data.data() + m_data.size();
        const auto *nl = std::find(begin, end, static_cast<std::uint8_t>('\n'));
        if (nl == end)
            fail("line is not terminated by a newline (truncated pickle?)");
        std::string line(reinterpret_cast<const char *>(begin), static_cast<std::size_t>(nl - begin));
        m_pos += line.size() + 1;
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        return line;
    }

    // --- the stacks ---------------------------------------------------------------------------
    void push(ValuePtr v)
    {
        // Only containers can close a cycle (they are what APPEND, SETITEM and BUILD mutate).
        if (v->kind() >= Value::Kind::Tuple && v->kind() != Value::Kind::Global && v->kind() != Value::Kind::Storage)
            m_machine.m_arena->add(v);
        m_stack.push_back(std::move(v));
    }
    ValuePtr pop()
    {
        if (m_stack.size() <= (m_marks.empty() ? 0 : m_marks.back()))
            fail("stack underflow");
        ValuePtr v = std::move(m_stack.back());
        m_stack.pop_back();
        return v;
    }
    ValuePtr &top()
    {
        if (m_stack.size() <= (m_marks.empty() ? 0 : m_marks.back()))
            fail("stack underflow");
        return m_stack.back();
    }
    std::vector<ValuePtr> popMark()
    {
        if (m_marks.empty())
            fail("no MARK on the stack");
        const std::size_t mark = m_marks.back();
        m_marks.pop_back();
        std::vector<ValuePtr> items(std::make_move_iterator(m_stack.begin() + static_cast<std::ptrdiff_t>(mark)),
                                    std::make_move_iterator(m_stack.end()));
        m_stack.resize(mark);
        return items;
    }

    // A container that is already some value's child and grows taller leaves its parents' heights
    // stale (they were noted when it was added): the depth limit is then checked on the whole
    // result at STOP. Pickles Python writes fill each container before adding it to its parent.
    void noteGrowth(const Value &target, std::uint32_t heightBefore)
    {
        if (target.hasParent() && target.height() > heightBefore)
            m_lateNesting = true;
    }

    void checkDepth(const ValuePtr &v)
    {
        if (v && v->height() > PickleLimits::kMaxDepth)
            fail("nesting deeper than the limit of " + std::to_string(PickleLimits::kMaxDepth) + " levels");
    }
    ValuePtr makeTuple(std::vector<ValuePtr> items)
    {
        auto t = Value::tuple(std::move(items));
        checkDepth(t);
        return t;
    }

    void memoPut(std::uint64_t index, const ValuePtr &v)
    {
        if (m_memo.empty() && index == m_memoDense.size() && m_memoCount == index &&
            m_memoCount < PickleLimits::kMaxMemo) {
            // The usual case (entries numbered 0, 1, 2, ... as picklers write them): append.
            m_memoDense.push_back(v);
            ++m_memoCount;
            return;
        }
        if (index < m_memoDense.size()) {
            if (!m_memoDense[index] && m_memo.erase(index) == 0)  // counted once, wherever it was
                ++m_memoCount;
            m_memoDense[index] = v;
            return;
        }
        if (index <= 2 * m_memoCount + 1024 && !m_memo.contains(index)) {
            if (m_memoCount >= PickleLimits::kMaxMemo)
                fail("memo grows past the limit of " + std::to_string(PickleLimits::kMaxMemo) + " entries");
            m_memoDense.resize(static_cast<std::size_t>(index) + 1);
            m_memoDense[index] = v;
            ++m_memoCount;
            return;
        }
        if (!m_memo.contains(index)) {
            if (m_memoCount >= PickleLimits::kMaxMemo)
                fail("memo grows past the limit of " + std::to_string(PickleLimits::kMaxMemo) + " entries");
            ++m_memoCount;
        }
        m_memo[index] = v;
    }
    ValuePtr memoGet(std::uint64_t index)
    {
        if (index < m_memoDense.size() && m_memoDense[index])
            return m_memoDense[index];
        auto it = m_memo.find(index);
        if (it == m_memo.end())
            fail("memo entry " + std::to_string(index) + " was never stored");
        return it->second;
    }

    // --- containers -------------------------------------------------------------------------
    void appendTo(ValuePtr &target, std::vector<ValuePtr> items)
    {
        if (target->kind() != Value::Kind::List && target->kind() != Value::Kind::Object)
            fail("cannot append to " + target->typeName());
        const auto before = target->height();
        for (auto &i : items) {
            target->noteChild(i);
            target->items().push_back(std::move(i));
        }
        checkDepth(target);
        noteGrowth(*target, before);
    }

    void setItems(ValuePtr &target, std::vector<ValuePtr> kv)
    {
        if (kv.size() % 2 != 0)
            fail("odd number of items for a dict");
        if (target->kind() != Value::Kind::Dict && target->kind() != Value::Kind::Object)
            fail("cannot set items on " + target->typeName() + " (expected a dict)");
        const auto before = target->height();
        auto &entries = target->entries();
        DictIndex *index = nullptr;  // this dict's key index, once used
        for (std::size_t i = 0; i < kv.size(); i += 2) {
            target->noteChild(kv[i]);
            target->noteChild(kv[i + 1]);
            // Assigning an existing key keeps its position and replaces the value, as Python does.
            bool replaced = false;
            if (target->kind() == Value::Kind::Dict) {
                const auto kind = kv[i]->kind();
                if (kind == Value::Kind::List || kind == Value::Kind::Dict || kind == Value::Kind::Set)
                    fail("unhashable type '" + kv[i]->typeName() + "' as a dict key (Python refuses it too)");
            }
            if (target->kind() == Value::Kind::Dict && !entries.empty()) {
                std::size_t found = entries.size();
                if (entries.size() < kIndexFrom) {
                    const auto key = dictKey(*kv[i]);
                    for (std::size_t j = 0; j < entries.size(); ++j)
                        if (entries[j].key && dictKey(*entries[j].key) == key)
                            found = j;
                } else {
                    if (!index) {  // looked up once per call: a SETITEMS adds up to 1,000 entries
                        auto &slot = m_dictIndex[target.get()];
                        slot.first = target;  // keeps the address from being reused while indexed
                        index = &slot.second;
                    }
                    if (index->size() != entries.size())
                        rebuildIndex(*index, entries);
                    const auto [at, fresh] = index->add(*kv[i], entries.size());
                    if (!fresh)
                        found = at;
                }
                if (found < entries.size()) {
                    entries[found].value = std::move(kv[i + 1]);
                    replaced = true;
                }
            }
            if (!replaced)
                entries.push_back({std::move(kv[i]), std::move(kv[i + 1])});
        }
        checkDepth(target);
        noteGrowth(*target, before);
    }

    static constexpr std::size_t kIndexFrom = 16;  // dicts this large get a key index
    std::size_t m_mergedEntries = 0;               // entries copied by BUILD updates so far
    std::size_t m_copied = 0;                      // bytes calls and STACK_GLOBAL copied so far

    // Bytes that calls (and STACK_GLOBAL) may copy from their arguments beyond twice the pickle's
    // size; an element of a container copied counts as the memory it takes.
    static constexpr std::size_t kCopyRoom = 64u << 20;
    static constexpr std::size_t kItemBytes = sizeof(ValuePtr);  // a list's or tuple's element
    static constexpr std::size_t kEntryBytes = 64;               // a dict's entry, with its index

    // Calls this reader interprets copy their arguments (the text of a str _codecs.encode makes
    // bytes of, the pairs of an OrderedDict, a global's name), and the memo lets a pickle hand one
    // value to any number of calls for a few bytes each. A pickle Python writes copies each value
    // once, so copies beyond the pickle's own size (and some room) are such a file.
    void chargeCopy(std::size_t units)
    {
        m_copied += units;
        if (m_copied > 2 * m_data.size() + kCopyRoom)
            fail("calls copy more than " + std::to_string(2 * m_data.size() + kCopyRoom) +
                 " bytes from values they share through the memo, more than a pickle of this size can mean");
    }
    // A large dict's keys -> their entries. String keys (nearly all) are viewed in place: the key
    // values are the dict's own, never changed, and the dict is held while indexed. Other keys go
    // by dictKey().
    struct DictIndex {
        std::unordered_map<std::string_view, std::size_t> strings;
        std::unordered_map<std::string, std::size_t> others;
        std::size_t size() const { return strings.size() + others.size(); }
        // The entry that has key `k` already (false), or `at`, now recorded for it (true).
        std::pair<std::size_t, bool> add(const Value &k, std::size_t at)
        {
            if (k.kind() == Value::Kind::String) {
                const auto [it, fresh] = strings.try_emplace(std::string_view(k.text()), at);
                return {it->second, fresh};
            }
            const auto [it, fresh] = others.try_emplace(dictKey(k), at);
            return {it->second, fresh};
        }
        void clear()
        {
            strings.clear();
            others.clear();
        }
    };
    std::unordered_map<const Value *, std::pair<ValuePtr, DictIndex>> m_dictIndex;

    ValuePtr bytesOrText(std::string raw)
    {
        // Python 2 `str`: torch.load decodes it as UTF-8; what is not UTF-8 stays bytes.
        if (isValidUtf8(raw))
            return Value::string(std::move(raw));
        return Value::bytes(std::move(raw));
    }

    static bool isHashableScalar(const Value &v)
    {
        switch (v.kind()) {
        case Value::Kind::String:
        case Value::Kind::Int:
        case Value::Kind::BigInt:
        case Value::Kind::Bool:
        case Value::Kind::None:
        case Value::Kind::Bytes:
            return true;
        default:
            return false;
        }
    }
    static std::string scalarKey(const Value &v)
    {
        // Python: True == 1 and hash(True) == hash(1), so bools share the int key space.
        switch (v.kind()) {
        case Value::Kind::Bool:
        case Value::Kind::Int: return "i" + std::to_string(v.asInt());
        case Value::Kind::BigInt: return "i" + v.text();
        case Value::Kind::String: return "s" + v.text();
        case Value::Kind::Bytes: return "b" + v.text();
        default: return "n";
        }
    }
    // A dict key's identity: equal scalars are one key (True == 1 == 1.0, as in Python); other
    // hashable values (tuples, objects, globals) are the same key when they are the same object.
    static std::string dictKey(const Value &v)
    {
        if (isHashableScalar(v))
            return scalarKey(v);
        if (v.kind() == Value::Kind::Float && std::isfinite(v.asFloat()) && v.asFloat() == std::trunc(v.asFloat()) &&
            std::abs(v.asFloat()) < 9.0e15)
            return "i" + std::to_string(static_cast<std::int64_t>(v.asFloat()));
        if (v.kind() == Value::Kind::Float)
            return "f" + formatFloat(v.asFloat());
        char buf[32];
        std::snprintf(buf, sizeof buf, "p%p", static_cast<const void *>(&v));
        return buf;
    }
    static void rebuildIndex(DictIndex &index, const std::vector<Value::DictEntry> &entries)
    {
        index.clear();
        for (std::size_t i = 0; i < entries.size(); ++i)
            if (entries[i].key)
                index.add(*entries[i].key, i);
    }

    // --- globals and calls --------------------------------------------------------------------
    ValuePtr makeGlobal(std::string module, std::string name)
    {
        if (!isValidUtf8(module) || !isValidUtf8(name))
            fail("global name is not UTF-8 text (Python refuses it too)");
        auto [m, n] = remapGlobal(std::move(module), std::move(name), m_protocol);
        m_machine.noteGlobal(m, n, fileOffset());
        return Value::global(std::move(m), std::move(n));
    }

    // An opaque object this class's NEWOBJ made: built by __new__, not by a call.
    static ValuePtr markNew(ValuePtr v, const ValuePtr &cls)
    {
        if (v && v->kind() == Value::Kind::Object && v->objectClass() == cls)
            v->setBuiltByNew(true);
        return v;
    }

    static bool isGlobal(const ValuePtr &v, std::string_view qualified)
    {
        return v && v->kind() == Value::Kind::Global && v->qualifiedName() == qualified;
    }

    std::vector<std::int64_t> intTuple(const ValuePtr &v, const char *what)
    {
        if (!v || !v->isSequence())
            fail(std::string(what) + " is not a tuple of ints");
        chargeCopy(v->items().size() * sizeof(std::int64_t));
        std::vector<std::int64_t> out;
        out.reserve(v->items().size());
        for (const auto &i : v->items()) {
            if (!i || (i->kind() != Value::Kind::Int && i->kind() != Value::Kind::Bool))
                fail(std::string(what) + (i && i->kind() == Value::Kind::BigInt
                                               ? " holds an integer past int64 (" + i->text().substr(0, 40) + ")"
                                               : " holds a " + (i ? i->typeName() : std::string("null")) + ", not an int"));
            out.push_back(i->asInt());
        }
        return out;
    }

    // A storage the pickle makes itself by calling a typed storage class on a size
    // (torch.ByteStorage(1), torch.storage.TypedStorage(n)) and hands to a tensor rebuild, which
    // torch.load(weights_only=True) runs: its bytes are not in the file. A storage without a record,
    // its key the call, its problem saying so; held by the call (keepAlive), which is how the
    // security report knows it. One per call, as the tensors on it share it. Null for anything else.
    std::shared_ptr<StorageRef> madeStorage(const ValuePtr &call)
    {
        if (!call)
            return nullptr;
        const Value &v = *call;
        if (v.kind() != Value::Kind::Object || v.builtByNew() || !v.objectClass() ||
            v.objectClass()->kind() != Value::Kind::Global || !v.args() || !v.args()->isSequence())
            return nullptr;
        const Value &cls = *v.objectClass();
        const auto &args = v.args()->items();
        std::optional<DType> dtype;
        if ((cls.text() == "torch.storage" || cls.text() == "torch") && cls.name() == "TypedStorage")
            dtype = DType::Float32;  // torch's default dtype
        else if (cls.text() == "torch")
            dtype = dtypeFromStorageClass(cls.name());
        if (!dtype || args.size() > 1 || (args.size() == 1 && (!args[0] || !args[0]->isInt() || args[0]->asInt() < 0)))
            return nullptr;
        auto &storage = m_madeStorages[&v];
        if (!storage) {
            const std::int64_t n = args.empty() ? 0 : args[0]->asInt();
            chargeCopy(2 * cls.qualifiedName().size() + 128);
            storage = std::make_shared<StorageRef>();
            storage->key = cls.qualifiedName() + "(" + (args.empty() ? "" : std::to_string(n)) + ")";
            storage->dtype = *dtype;
            storage->location = "cpu";
            storage->declaredNumel = n;
            storage->problem = "its storage is not in the file: the pickle makes it by calling " + storage->key +
                               " (uninitialised memory in torch)";
            storage->keepAlive = call;  // (not read through: it names the call)
        }
        return storage;
    }
    std::unordered_map<const Value *, std::shared_ptr<StorageRef>> m_madeStorages;

    ValuePtr rebuildTensor(const std::string &fn, const std::vector<ValuePtr> &a)
    {
        const bool v1 = fn == "_rebuild_tensor";
        const bool v3 = fn == "_rebuild_tensor_v3";
        const std::size_t need = v1 ? 4 : (v3 ? 7 : 6);
        if (a.size() < need)
            fail("torch._utils." + fn + " takes at least " + std::to_string(need) + " arguments, got " +
                 std::to_string(a.size()));
        std::shared_ptr<StorageRef> made = madeStorage(a[0]);
        if (!made && (!a[0] || a[0]->kind() != Value::Kind::Storage))
            fail("torch._utils." + fn + ": first argument is a " + (a[0] ? a[0]->typeName() : "null") +
                 ", not a storage");
        auto ref = makeTensorRef();
        ref->storage = made ? made : a[0]->storageRef();
        ref->dtype = ref->storage->dtype;
        ref->rebuild = fn;
        if (!a[1] || a[1]->kind() != Value::Kind::Int)
            fail("torch._utils." + fn + ": storage offset is not an int");
        ref->storageOffset = a[1]->asInt();
        ref->shape = intTuple(a[2], "tensor size");
        ref->strides = intTuple(a[3], "tensor stride");
        if (ref->shape.size() != ref->strides.size())
            fail("tensor size has " + std::to_string(ref->shape.size()) + " dimensions but stride has " +
                 std::to_string(ref->strides.size()));
        if (!v1) {
            ref->requiresGrad = a[4] && a[4]->kind() == Value::Kind::Bool && a[4]->asBool();
            if (a[5] && !(a[5]->isNone() || (a[5]->isDict() && a[5]->entries().empty())))
                m_warnings.push_back("pickle offset " + std::to_string(fileOffset()) +
                                     ": a tensor carries backward hooks (not run)");
        }
        if (v3) {
            if (!a[6] || a[6]->kind() != Value::Kind::Global || a[6]->text() != "torch")
                fail("torch._utils._rebuild_tensor_v3: dtype argument is not a torch dtype");
            auto dt = dtypeFromTorchName(a[6]->name());
            if (!dt)
                fail("torch._utils._rebuild_tensor_v3: unsupported dtype torch." + a[6]->name());
            ref->dtype = *dt;
        }
        auto v = Value::tensor(ref);
        return v;
    }

    ValuePtr rebuildQTensor(const std::vector<ValuePtr> &a)
    {
        // _rebuild_qtensor(storage, offset, size, stride, quantizer_params, requires_grad, hooks)
        if (a.size() < 5)
            fail("torch._utils._rebuild_qtensor takes 7 arguments, got " + std::to_string(a.size()));
        auto v = rebuildTensor("_rebuild_tensor", {a[0], a[1], a[2], a[3]});
        auto ref = std::const_pointer_cast<TensorRef>(v->tensorRef());
        ref->rebuild = "_rebuild_qtensor";
        const auto &q = a[4];
        if (q && (q->kind() == Value::Kind::Float || q->isInt()) && a.size() >= 6) {
            // torch 1.3: _rebuild_qtensor(storage, offset, size, stride, scale, zero_point, requires_grad, hooks)
            auto quant = std::make_shared<TensorRef::Quantization>();
            quant->scheme = "per_tensor_affine";
            quant->scale = q->kind() == Value::Kind::Float ? q->asFloat() : static_cast<double>(q->asInt());
            quant->zeroPoint = a[5] && a[5]->isInt() ? a[5]->asInt() : 0;
            ref->requiresGrad = a.size() > 6 && a[6] && a[6]->kind() == Value::Kind::Bool && a[6]->asBool();
            ref->quantization = quant;
            return v;
        }
        ref->requiresGrad = a.size() > 5 && a[5] && a[5]->kind() == Value::Kind::Bool && a[5]->asBool();
        if (!q || !q->isSequence() || q->items().empty() || !q->items()[0] ||
            q->items()[0]->kind() != Value::Kind::Global)
            fail("torch._utils._rebuild_qtensor: quantizer parameters are not (scheme, ...)");
        auto quant = std::make_shared<TensorRef::Quantization>();
        quant->scheme = q->items()[0]->name();
        const auto &p = q->items();
        auto number = [](const ValuePtr &x) {
            return !x ? 0.0 : x->kind() == Value::Kind::Float ? x->asFloat() : static_cast<double>(x->asInt());
        };
        if (quant->scheme == "per_tensor_affine" && p.size() >= 3) {
            quant->scale = number(p[1]);
            quant->zeroPoint = p[2] && p[2]->isInt() ? p[2]->asInt() : 0;
        } else if ((quant->scheme == "per_channel_affine" || quant->scheme == "per_channel_affine_float_qparams") &&
                   p.size() >= 4) {
            quant->scales = p[1];
            quant->zeroPoints = p[2];
            quant->axis = p[3] && p[3]->isInt() ? p[3]->asInt() : -1;
        } else {
            m_warnings.push_back("pickle offset " + std::to_string(fileOffset()) + ": quantization scheme '" +
                                 quant->scheme + "' is shown raw");
        }
        ref->quantization = quant;
        v->noteChild(quant->scales);
        v->noteChild(quant->zeroPoints);
        return v;
    }

    ValuePtr rebuildSparse(const std::string &fn, const std::vector<ValuePtr> &a)
    {
        // _rebuild_sparse_tensor(layout, (indices, values, size)) for COO;
        // _rebuild_sparse_csr_tensor(layout, (crow_indices, col_indices, values, size)) for CSR (torch
        // 1.x), which torch 2 writes as _rebuild_sparse_tensor with the layout torch.sparse_csr.
        if (a.size() < 2 || !a[1] || !a[1]->isSequence())
            fail("torch._utils." + fn + ": malformed arguments");
        const std::string layout = a[0] && a[0]->isString() ? a[0]->text() : "";
        const auto &d = a[1]->items();
        const auto isTensor = [](const ValuePtr &x) { return x && x->isTensor(); };
        if (layout == "torch.sparse_csr" && d.size() >= 4 && isTensor(d[0]) && isTensor(d[1]) && isTensor(d[2])) {
            auto ref = std::make_shared<TensorRef>();
            ref->layout = TensorRef::Layout::SparseCsr;
            ref->rebuild = fn;
            ref->dtype = d[2]->tensorRef()->dtype;
            ref->shape = intTuple(d[3], "sparse CSR tensor size");
            ref->sparseCrowIndices = d[0];
            ref->sparseColIndices = d[1];
            ref->sparseValues = d[2];
            auto v = Value::tensor(ref);
            for (int i = 0; i < 3; ++i)
                v->noteChild(d[static_cast<std::size_t>(i)]);
            return v;
        }
        if (fn != "_rebuild_sparse_tensor" || layout != "torch.sparse_coo" || d.size() < 3 || !isTensor(d[0]) ||
            !isTensor(d[1]))
            return Value::object(Value::global("torch._utils", fn), makeTuple(a));
        auto ref = std::make_shared<TensorRef>();
        ref->layout = TensorRef::Layout::SparseCoo;
        ref->rebuild = "_rebuild_sparse_tensor";
        ref->dtype = d[1]->tensorRef()->dtype;
        ref->shape = intTuple(d[2], "sparse tensor size");
        ref->sparseIndices = d[0];
        ref->sparseValues = d[1];
        auto v = Value::tensor(ref);
        v->noteChild(d[0]);
        v->noteChild(d[1]);
        return v;
    }

    ValuePtr rebuildMeta(const std::vector<ValuePtr> &a)
    {
        // _rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad)
        if (a.size() < 3 || !a[0] || a[0]->kind() != Value::Kind::Global)
            fail("torch._utils._rebuild_meta_tensor_no_storage: malformed arguments");
        auto ref = std::make_shared<TensorRef>();
        ref->layout = TensorRef::Layout::Meta;
        ref->rebuild = "_rebuild_meta_tensor_no_storage";
        auto dt = dtypeFromTorchName(a[0]->name());
        ref->dtype = dt ? *dt : DType::Unknown;
        ref->shape = intTuple(a[1], "meta tensor size");
        ref->strides = intTuple(a[2], "meta tensor stride");
        ref->requiresGrad = a.size() > 3 && a[3] && a[3]->kind() == Value::Kind::Bool && a[3]->asBool();
        return Value::tensor(ref);
    }

    ValuePtr withTensorFlags(const ValuePtr &t, bool parameter, bool requiresGrad)
    {
        chargeCopy(t->pythonClass().size() +
                   (t->tensorRef()->shape.size() + t->tensorRef()->strides.size()) * sizeof(std::int64_t));
        auto ref = std::make_shared<TensorRef>(*t->tensorRef());
        ref->isParameter = parameter;
        ref->requiresGrad = requiresGrad;
        auto v = Value::tensor(ref);
        v->setPythonClass(t->pythonClass());
        if (t->state())
            v->noteChild(t->state());  // the copy is as tall as the tensor it copies
        v->setState(t->state());
        return v;
    }

    // A call the pickle asks for. Understood reconstructors are interpreted; anything else is kept.
    ValuePtr call(const ValuePtr &callable, const ValuePtr &argsValue)
    {
        const std::vector<ValuePtr> noArgs;
        const auto &a = argsValue && argsValue->isSequence() ? argsValue->items() : noArgs;
        if (callable && callable->kind() == Value::Kind::Global) {
            const std::string &mod = callable->text();
            const std::string &fn = callable->name();
            const bool utils = mod == "torch._utils";  // most calls of a checkpoint: compared once
            if (utils &&
                (fn == "_rebuild_tensor_v2" || fn == "_rebuild_tensor" || fn == "_rebuild_tensor_v3"))
                return rebuildTensor(fn, a);
            if (utils && fn == "_rebuild_qtensor")
                return rebuildQTensor(a);
            if (utils && (fn == "_rebuild_sparse_tensor" || fn == "_rebuild_sparse_csr_tensor"))
                return rebuildSparse(fn, a);
            if (utils && fn == "_rebuild_meta_tensor_no_storage")
                return rebuildMeta(a);
            if (mod == "torch.serialization" && fn == "_get_layout" && a.size() == 1 && a[0] && a[0]->isString()) {
                chargeCopy(a[0]->text().size());
                auto s = Value::string(a[0]->text());
                s->setPythonClass("torch.layout");
                return s;
            }
            if (utils && (fn == "_rebuild_parameter" || fn == "_rebuild_parameter_with_state")) {
                if (a.size() < 2 || !a[0] || !a[0]->isTensor())
                    fail("torch._utils." + fn + ": first argument is not a tensor");
                auto v = withTensorFlags(a[0], true, a[1] && a[1]->kind() == Value::Kind::Bool && a[1]->asBool());
                if (fn == "_rebuild_parameter_with_state" && a.size() >= 4 && a[3] && !a[3]->isNone()) {
                    v->noteChild(a[3]);
                    v->setState(a[3]);
                }
                return v;
            }
            if ((mod == "torch.nn.parameter" && fn == "Parameter") || (mod == "torch.autograd.variable" && fn == "Variable")) {
                // Torch < 0.4 pickled parameters by calling the class on (data, requires_grad).
                if (!a.empty() && a[0] && a[0]->isTensor()) {
                    const bool grad = a.size() < 2 || !a[1] || a[1]->kind() != Value::Kind::Bool || a[1]->asBool();
                    return withTensorFlags(a[0], fn == "Parameter", grad);
                }
            }
            if ((mod == "torch._tensor" || mod == "torch.tensor") &&
                (fn == "_rebuild_from_type_v2" || fn == "_rebuild_from_type")) {
                if (a.size() < 3)
                    fail("torch._tensor." + fn + " takes at least 3 arguments");
                // It calls its first argument on its third: a file can make that itself, or nest it
                // without end. PyTorch nests it once.
                if (m_rebuildNesting >= kMaxRebuildNesting)
                    fail("torch._tensor." + fn + " nested more than " + std::to_string(kMaxRebuildNesting) + " deep");
                struct Nest {
                    int &depth;
                    explicit Nest(int &d) : depth(++d) {}
                    ~Nest() { --depth; }
                } nest(m_rebuildNesting);
                ValuePtr inner = call(a[0], a[2]);
                if (inner && inner->isTensor() && a[1] && a[1]->kind() == Value::Kind::Global) {
                    chargeCopy(a[1]->text().size() + a[1]->name().size());
                    const std::string cls = a[1]->qualifiedName();
                    const bool param = cls == "torch.nn.parameter.Parameter";
                    auto v = withTensorFlags(inner, param || inner->tensorRef()->isParameter,
                                             inner->tensorRef()->requiresGrad);
                    if (cls != "torch.Tensor" && !param)
                        v->setPythonClass(cls);
                    if (a.size() >= 4 && a[3] && !(a[3]->isDict() && a[3]->entries().empty()) && !a[3]->isNone()) {
                        v->noteChild(a[3]);
                        v->setState(a[3]);
                    }
                    return v;
                }
                return inner;
            }
            if (mod == "collections" && fn == "OrderedDict") {
                auto d = Value::dict();
                d->setPythonClass("collections.OrderedDict");
                if (!a.empty() && a[0] && a[0]->isSequence()) {
                    chargeCopy(a[0]->items().size() * kEntryBytes);
                    std::vector<ValuePtr> kv;
                    for (const auto &pair : a[0]->items()) {
                        if (!pair || !pair->isSequence() || pair->items().size() != 2)
                            fail("collections.OrderedDict: argument is not a sequence of pairs");
                        kv.push_back(pair->items()[0]);
                        kv.push_back(pair->items()[1]);
                    }
                    setItems(d, std::move(kv));
                }
                return d;
            }
            if (mod == "torch" && fn == "Size") {
                if (a.size() != 1 || !a[0] || !a[0]->isSequence())
                    fail("torch.Size expects one tuple");
                chargeCopy(a[0]->items().size() * kItemBytes);
                auto t = makeTuple(a[0]->items());
                t->setPythonClass("torch.Size");
                return t;
            }
            if (mod == "torch" && fn == "device") {
                if (a.empty() || !a[0] || !a[0]->isString())
                    fail("torch.device expects a device type string");
                chargeCopy(a[0]->text().size());
                std::string dev = a[0]->text();
                if (a.size() >= 2 && a[1] && a[1]->isInt())
                    dev += ":" + std::to_string(a[1]->asInt());
                auto s = Value::string(dev);
                s->setPythonClass("torch.device");
                return s;
            }
            if (mod == "torch.torch_version" && fn == "TorchVersion" && a.size() == 1 && a[0] && a[0]->isString()) {
                chargeCopy(a[0]->text().size());
                auto s = Value::string(a[0]->text());
                s->setPythonClass("torch.torch_version.TorchVersion");
                return s;
            }
            if (mod == "_codecs" && fn == "encode" && !a.empty() && a[0] && a[0]->isString()) {
                chargeCopy(a[0]->text().size());
                const std::string enc = a.size() >= 2 && a[1] && a[1]->isString() ? a[1]->text() : "utf-8";
                if (enc == "latin1" || enc == "latin-1" || enc == "iso-8859-1") {
                    std::string out;
                    if (!utf8ToLatin1(a[0]->text(), out))
                        fail("_codecs.encode: text has characters outside latin-1");
                    return Value::bytes(std::move(out));
                }
                if (enc == "utf-8" || enc == "utf8" || enc == "ascii")
                    return Value::bytes(a[0]->text());
            }
            if (mod == "builtins" && (fn == "set" || fn == "frozenset")) {
                auto s = Value::set(fn == "set" ? Value::Kind::Set : Value::Kind::FrozenSet);
                if (!a.empty() && a[0] && (a[0]->isSequence() || a[0]->kind() == Value::Kind::Set ||
                                           a[0]->kind() == Value::Kind::FrozenSet)) {
                    chargeCopy(a[0]->items().size() * kItemBytes);
                    for (const auto &i : a[0]->items())
                        s->noteChild(i);
                    s->items() = a[0]->items();
                }
                checkDepth(s);
                return s;
            }
            if (mod == "builtins" && fn == "complex" && a.size() == 2 && a[0] && a[1] &&
                (a[0]->kind() == Value::Kind::Float || a[0]->isInt()) &&
                (a[1]->kind() == Value::Kind::Float || a[1]->isInt())) {
                auto num = [](const ValuePtr &v) {
                    return v->kind() == Value::Kind::Float ? v->asFloat() : static_cast<double>(v->asInt());
                };
                return Value::complex(num(a[0]), num(a[1]));
            }
            // Protocol 2 pickles an empty bytes as a call `bytes()` (a non-empty one goes through
            // _codecs.encode above); numpy's reduce of an empty array puts exactly that in its state.
            if (mod == "builtins" && fn == "bytes" && a.empty())
                return Value::bytes({});
            if (mod == "builtins" && fn == "bytearray") {
                if (!a.empty() && a[0])
                    chargeCopy(a[0]->text().size());
                ValuePtr b;
                if (a.empty())
                    b = Value::bytes({});
                else if (a[0] && a[0]->kind() == Value::Kind::Bytes)
                    b = Value::bytes(a[0]->text());
                else if (a[0] && a[0]->isString()) {
                    std::string out;
                    if (!utf8ToLatin1(a[0]->text(), out))
                        out = a[0]->text();
                    b = Value::bytes(std::move(out));
                }
                if (b) {
                    b->setPythonClass("builtins.bytearray");
                    return b;
                }
            }
            if ((mod == "numpy.core.multiarray" || mod == "numpy._core.multiarray") && fn == "scalar")
                if (auto v = numpyScalar(a))
                    return v;
            if (mod == "datetime" && (fn == "datetime" || fn == "date" || fn == "time"))
                if (auto v = datetimeValue(fn, a)) {
                    v->setPythonClass("datetime." + fn);
                    return v;
                }
            if (mod.starts_with("pathlib") && fn.find("Path") != std::string::npos && !a.empty() &&
                std::all_of(a.begin(), a.end(), [](const ValuePtr &x) { return x && x->isString(); })) {
                std::size_t size = mod.size() + fn.size() + 1;
                for (const auto &x : a)
                    size += x->text().size() + 1;
                chargeCopy(size);
                std::string path;
                for (std::size_t i = 0; i < a.size(); ++i) {
                    if (i > 0 && !path.empty() && path.back() != '/')
                        path += '/';
                    path += a[i]->text();
                }
                auto v = Value::string(path);
                v->setPythonClass(mod + "." + fn);
                return v;
            }
            if (mod == "copyreg" && fn == "_reconstructor" && a.size() >= 2) {
                chargeCopy(a.size() * kItemBytes);
                // Protocol 0/1 instances: copyreg._reconstructor(cls, base, state). With base
                // object and no state that is object.__new__(cls), as NEWOBJ makes it.
                const bool plain = isGlobal(a[1], "builtins.object") && (a.size() < 3 || !a[2] || a[2]->isNone());
                auto obj = Value::object(a[0], plain ? makeTuple({}) : makeTuple(std::vector<ValuePtr>(a.begin() + 1, a.end())));
                obj->setBuiltByNew(plain);
                checkDepth(obj);
                return obj;
            }
        }
        auto obj = Value::object(callable, argsValue ? argsValue : makeTuple({}));
        checkDepth(obj);
        return obj;
    }

    // numpy dtype object (numpy.dtype('f4', False, True) with BUILD state (3, '<', ...)) to a dtype
    // and whether its bytes are big-endian.
    static std::optional<std::pair<DType, bool>> numpyDType(const ValuePtr &d)
    {
        if (!d || d->kind() != Value::Kind::Object || !d->args() || !d->args()->isSequence() ||
            d->args()->items().empty() || !d->args()->items()[0]->isString())
            return std::nullopt;
        static const std::map<std::string, DType> codes{
            {"f2", DType::Float16}, {"f4", DType::Float32}, {"f8", DType::Float64}, {"i1", DType::Int8},
            {"i2", DType::Int16},   {"i4", DType::Int32},   {"i8", DType::Int64},   {"u1", DType::UInt8},
            {"u2", DType::UInt16},  {"u4", DType::UInt32},  {"u8", DType::UInt64},  {"b1", DType::Bool},
            {"c8", DType::Complex64}, {"c16", DType::Complex128}};
        auto it = codes.find(d->args()->items()[0]->text());
        if (it == codes.end())
            return std::nullopt;
        bool big = false;
        if (d->state() && d->state()->isSequence() && d->state()->items().size() > 1 && d->state()->items()[1]->isString())
            big = d->state()->items()[1]->text() == ">";
        return std::make_pair(it->second, big);
    }

    static std::string numpyName(const ValuePtr &d) { return d->args()->items()[0]->text(); }

    // numpy array state: (version, shape, dtype, is_fortran, raw bytes). Arrays become tensors.
    bool buildNumpyArray(ValuePtr &target, const ValuePtr &state)
    {
        if (!state->isSequence() || state->items().size() < 5)
            return false;
        const auto &st = state->items();
        auto dt = numpyDType(st[2]);
        if (!dt || !st[4] || st[4]->kind() != Value::Kind::Bytes || !st[1] || !st[1]->isSequence())
            return false;  // object arrays and exotic dtypes stay opaque
        auto ref = std::make_shared<TensorRef>();
        ref->dtype = dt->first;
        ref->shape = intTuple(st[1], "numpy array shape");
        const bool fortran = st[3] && st[3]->kind() == Value::Kind::Bool && st[3]->asBool();
        ref->strides.assign(ref->shape.size(), 1);
        std::int64_t step = 1;
        for (std::size_t k = 0; k < ref->shape.size(); ++k) {
            const std::size_t i = fortran ? k : ref->shape.size() - 1 - k;
            ref->strides[i] = step;
            if (__builtin_mul_overflow(step, std::max<std::int64_t>(1, ref->shape[i]), &step))
                fail("numpy array shape overflows");
        }
        ref->rebuild = "numpy.ndarray";
        auto storage = std::make_shared<StorageRef>();
        storage->key = "numpy@" + std::to_string(fileOffset());
        storage->dtype = ref->dtype;
        storage->location = "cpu";
        const std::size_t size = dtypeSize(ref->dtype);
        if (dt->second && size > 1) {
            // Big-endian array: keep a byte-swapped copy so the numbers read natively.
            chargeCopy(st[4]->text().size());
            auto swapped = std::make_shared<std::string>(st[4]->text());
            const std::size_t unit = dtypeIsComplex(ref->dtype) ? size / 2 : size;
            for (std::size_t off = 0; off + unit <= swapped->size(); off += unit)
                std::reverse(swapped->begin() + static_cast<std::ptrdiff_t>(off),
                             swapped->begin() + static_cast<std::ptrdiff_t>(off + unit));
            storage->setBytes({reinterpret_cast<const std::uint8_t *>(swapped->data()), swapped->size()});
            storage->keepAlive = swapped;
        } else {
            const auto &raw = st[4]->text();
            storage->setBytes({reinterpret_cast<const std::uint8_t *>(raw.data()), raw.size()});
            storage->keepAlive = st[4];
        }
        storage->declaredNumel = static_cast<std::int64_t>(storage->byteSize / std::max<std::size_t>(1, size));
        ref->storage = storage;
        target->becomeTensor(ref);
        target->setPythonClass("numpy.ndarray");
        return true;
    }

    // numpy scalar: numpy.core.multiarray.scalar(dtype, bytes) to a number.
    ValuePtr numpyScalar(const std::vector<ValuePtr> &a)
    {
        if (a.size() < 2 || !a[1] || a[1]->kind() != Value::Kind::Bytes)
            return nullptr;
        auto dt = numpyDType(a[0]);
        if (!dt || dtypeSize(dt->first) != a[1]->text().size() || dtypeIsComplex(dt->first))
            return nullptr;
        std::string raw = a[1]->text();
        if (dt->second)
            std::reverse(raw.begin(), raw.end());
        auto le = [&raw]() {
            std::uint64_t u = 0;
            for (std::size_t i = raw.size(); i-- > 0;)
                u = (u << 8) | static_cast<unsigned char>(raw[i]);
            return u;
        };
        ValuePtr v;
        const std::uint64_t u = le();
        switch (dt->first) {
        case DType::Float64: v = Value::floating(std::bit_cast<double>(u)); break;
        case DType::Float32: v = Value::floating(std::bit_cast<float>(static_cast<std::uint32_t>(u))); break;
        case DType::Float16: v = Value::floating(halfToDouble(static_cast<std::uint16_t>(u))); break;
        case DType::Bool: v = Value::boolean(u != 0); break;
        case DType::UInt64:
            if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                v = Value::bigInteger(std::to_string(u));
            else
                v = Value::integer(static_cast<std::int64_t>(u));
            break;
        case DType::UInt8:
        case DType::UInt16:
        case DType::UInt32: v = Value::integer(static_cast<std::int64_t>(u)); break;
        default: {
            // Signed: sign-extend from the value's width.
            const unsigned bits = static_cast<unsigned>(raw.size() * 8);
            std::int64_t sv = static_cast<std::int64_t>(u);
            if (bits < 64 && (u >> (bits - 1)) & 1)
                sv = static_cast<std::int64_t>(u | (~std::uint64_t(0) << bits));
            v = Value::integer(sv);
        }
        }
        v->setPythonClass("numpy." + std::string(dtypeName(dt->first)));
        return v;
    }

    static double halfToDouble(std::uint16_t h)
    {
        const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
        double v;
        if (exp == 0)
            v = std::ldexp(mant, -24);
        else if (exp == 31)
            v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
        else
            v = std::ldexp(mant + 1024, exp - 25);
        return sign ? -v : v;
    }

    // The UTC offset of a datetime.timezone as isoformat writes it ("+05:30", "-05:00",
    // "+00:00:30.000001"); empty for other tzinfo classes (zoneinfo, pytz: their offset depends on
    // a time zone database the file does not hold).
    static std::string isoOffset(const Value &tz)
    {
        if (className(tz) != "datetime.timezone" || !tz.args() || tz.args()->items().empty())
            return {};
        const ValuePtr &delta = tz.args()->items()[0];
        if (!delta || className(*delta) != "datetime.timedelta" || !delta->args() || delta->args()->items().size() != 3)
            return {};
        std::int64_t part[3];
        for (std::size_t i = 0; i < 3; ++i) {
            const ValuePtr &x = delta->args()->items()[i];
            if (!x || !x->isInt() || x->asInt() < -1 || x->asInt() > 86'400'000'000)
                return {};
            part[i] = x->asInt();
        }
        // Python keeps |offset| < 1 day: days is -1 or 0.
        std::int64_t us = (part[0] * 86'400 + part[1]) * 1'000'000 + part[2];
        const char sign = us < 0 ? '-' : '+';
        us = us < 0 ? -us : us;
        if (us >= std::int64_t(86'400) * 1'000'000)
            return {};
        char buf[48];
        const auto secs = us / 1'000'000;
        std::snprintf(buf, sizeof buf, "%c%02d:%02d", sign, static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60));
        std::string out = buf;
        if (secs % 60 || us % 1'000'000) {
            std::snprintf(buf, sizeof buf, ":%02d", static_cast<int>(secs % 60));
            out += buf;
        }
        if (us % 1'000'000) {
            std::snprintf(buf, sizeof buf, ".%06d", static_cast<int>(us % 1'000'000));
            out += buf;
        }
        return out;
    }

    // datetime.datetime/date/time pickled as their packed bytes: ISO text (with the UTC offset of
    // a datetime.timezone); the tzinfo itself is kept as the value's state.
    static ValuePtr datetimeValue(const std::string &fn, const std::vector<ValuePtr> &a)
    {
        if (a.empty() || a.size() > 2 || !a[0] || a[0]->kind() != Value::Kind::Bytes)
            return nullptr;
        const ValuePtr tz = a.size() == 2 && a[1] && !a[1]->isNone() ? a[1] : nullptr;
        if (tz && fn == "date")
            return nullptr;
        auto value = datetimeText(fn, a[0]->text(), tz ? isoOffset(*tz) : std::string());
        if (value && tz)
            value->setState(tz);
        return value;
    }

    static ValuePtr datetimeText(const std::string &fn, const std::string &b, const std::string &offset)
    {
        auto u = [&b](std::size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(b[i])); };
        char buf[64];
        if (fn == "datetime" && b.size() == 10) {
            const unsigned us = (u(7) << 16) | (u(8) << 8) | u(9);
            std::snprintf(buf, sizeof buf, "%04u-%02u-%02uT%02u:%02u:%02u", (u(0) << 8) | u(1), u(2) & 0x7f, u(3), u(4),
                          u(5), u(6));
            std::string s = buf;
            if (us) {
                std::snprintf(buf, sizeof buf, ".%06u", us);
                s += buf;
            }
            return Value::string(s + offset);
        }
        if (fn == "date" && b.size() == 4) {
            std::snprintf(buf, sizeof buf, "%04u-%02u-%02u", (u(0) << 8) | u(1), u(2), u(3));
            return Value::string(buf);
        }
        if (fn == "time" && b.size() == 6) {
            const unsigned us = (u(3) << 16) | (u(4) << 8) | u(5);
            std::snprintf(buf, sizeof buf, "%02u:%02u:%02u", u(0) & 0x7f, u(1), u(2));
            std::string s = buf;
            if (us) {
                std::snprintf(buf, sizeof buf, ".%06u", us);
                s += buf;
            }
            return Value::string(s + offset);
        }
        return nullptr;
    }

    void build(ValuePtr &target, const ValuePtr &state)
    {
        if (target->kind() == Value::Kind::Object && state &&
            (className(*target) == "numpy.core.multiarray._reconstruct" ||
             className(*target) == "numpy._core.multiarray._reconstruct") &&
            buildNumpyArray(target, state))
            return;
        // torch < 0.4: Parameter/Variable objects get (data, grad, hooks, requires_grad, volatile).
        if (target->kind() == Value::Kind::Object && state && state->isSequence() && !state->items().empty() &&
            state->items()[0] && state->items()[0]->isTensor()) {
            const std::string cls = target->objectClass() && target->objectClass()->kind() == Value::Kind::Global
                                        ? target->objectClass()->qualifiedName()
                                        : std::string();
            if (cls == "torch.nn.parameter.Parameter" || cls == "torch.autograd.variable.Variable") {
                auto ref = std::make_shared<TensorRef>(*state->items()[0]->tensorRef());
                ref->isParameter = cls == "torch.nn.parameter.Parameter";
                const auto &st = state->items();
                ref->requiresGrad = st.size() > 3 && st[3] && st[3]->kind() == Value::Kind::Bool ? st[3]->asBool()
                                                                                                 : ref->isParameter;
                target->becomeTensor(std::move(ref));
                return;
            }
        }
        switch (target->kind()) {
        case Value::Kind::Object:
        case Value::Kind::Dict:
        case Value::Kind::Tensor:
            if (target->state() && target->state()->isDict() && state && state->isDict()) {
                // A second BUILD updates the attributes, as Python's default __setstate__ does.
                // Copies do not consume input, so their total is capped by the input's size.
                m_mergedEntries += state->entries().size();
                if (m_mergedEntries > std::max<std::size_t>(1u << 20, 64 * m_data.size()))
                    fail("BUILD updates copy more entries than a pickle of this size can mean");
                auto merged = target->state();
                std::vector<ValuePtr> kv;
                for (const auto &e : state->entries()) {
                    kv.push_back(e.key);
                    kv.push_back(e.value);
                }
                setItems(merged, std::move(kv));
            } else {
                target->setState(state);
            }
            {
                const auto before = target->height();
                target->noteChild(state);
                checkDepth(target);
                noteGrowth(*target, before);
            }
            break;
        case Value::Kind::String:
            // TorchVersion and other str subclasses: an empty attribute dict carries nothing.
            if (state && state->isDict() && state->entries().empty())
                break;
            [[fallthrough]];
        default:
            m_warnings.push_back("pickle offset " + std::to_string(fileOffset()) + ": BUILD on a " +
                                 target->typeName() + " was ignored");
            break;
        }
    }

    std::int64_t parseDecimal(const std::string &text, bool &isBig, std::string &digits)
    {
        std::string t = text;
        if (!t.empty() && (t.back() == 'L'))
            t.pop_back();
        isBig = false;
        std::int64_t v = 0;
        auto res = std::from_chars(t.data(), t.data() + t.size(), v);
        if (res.ec == std::errc() && res.ptr == t.data() + t.size())
            return v;
        const std::size_t start = (!t.empty() && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
        if (t.size() == start || !std::all_of(t.begin() + static_cast<std::ptrdiff_t>(start), t.end(),
                                              [](char c) { return c >= '0' && c <= '9'; }))
            fail("'" + text.substr(0, 40) + "' is not an integer");
        if (t.size() > PickleLimits::kMaxBigIntBytes * 3)
            fail("integer of " + std::to_string(t.size()) + " digits exceeds the limit of " +
                 std::to_string(PickleLimits::kMaxBigIntBytes * 3) + " digits");
        isBig = true;
        digits = t[0] == '+' ? t.substr(1) : t;
        return 0;
    }

    ValuePtr intFromText(const std::string &text)
    {
        bool big = false;
        std::string digits;
        const std::int64_t v = parseDecimal(text, big, digits);
        return big ? Value::bigInteger(digits) : Value::integer(v);
    }

    ValuePtr longFromBytes(std::span<const std::uint8_t> b)
    {
        if (b.empty())
            return Value::integer(0);
        if (b.size() <= 8) {
            std::uint64_t u = 0;
            for (std::size_t i = 0; i < b.size(); ++i)
                u |= static_cast<std::uint64_t>(b[i]) << (8 * i);
            if (b.size() < 8 && (b.back() & 0x80))
                u |= ~std::uint64_t(0) << (8 * b.size());  // sign-extend
            return Value::integer(static_cast<std::int64_t>(u));
        }
        if (b.size() > PickleLimits::kMaxBigIntBytes)
            fail("integer of " + std::to_string(b.size()) + " bytes exceeds the limit of " +
                 std::to_string(PickleLimits::kMaxBigIntBytes));
        return Value::bigInteger(twosComplementToDecimal(b));
    }

    std::vector<std::string> m_warnings;

    // None, the booleans and small ints, made once per pickle and shared, as Python shares them
    // (a state dict's shapes, strides, offsets and requires_grad flags are a third of its values).
    // Nothing changes a scalar once made: only containers are mutated, and identity is looked at
    // only for containers (memo of writers, aliases in trees, cycles).
    static constexpr std::int64_t kSmallIntMin = -5, kSmallIntMax = 256;
    std::array<ValuePtr, kSmallIntMax - kSmallIntMin + 1> m_smallInts;
    ValuePtr m_none, m_true, m_false;
    template <class Make> static const ValuePtr &shared(ValuePtr &slot, Make make)
    {
        if (!slot)
            slot = make();
        return slot;
    }
    ValuePtr smallInt(std::int64_t v)
    {
        if (v < kSmallIntMin || v > kSmallIntMax)
            return Value::integer(v);
        return shared(m_smallInts[static_cast<std::size_t>(v - kSmallIntMin)], [v] { return Value::integer(v); });
    }

public:
    const std::vector<std::string> &warnings() const { return m_warnings; }

private:
    void step();
    bool m_stopped = false;
    bool m_lateNesting = false;  // a container grew after it was added to another (see noteGrowth)
    ValuePtr m_result;
};

PickleMachine::Result PickleRun::run()
{
    std::uint64_t steps = 0;
    while (!m_stopped) {
        if (m_pos >= m_data.size()) {
            m_opStart = m_pos;
            m_op = 0;
            fail("pickle ends without STOP (truncated?)");
        }
        step();
        if ((++steps & 0xFFFF) == 0 && m_machine.m_progress &&
            !m_machine.m_progress(static_cast<double>(m_pos) / static_cast<double>(m_data.size())))
            throw FormatError("cancelled");
    }
    PickleMachine::Result r;
    r.value = m_result;
    r.end = m_pos;
    r.protocol = m_protocol;
    return r;
}

void PickleRun::step()
{
    m_opStart = m_pos;
    m_op = m_data[m_pos++];
    if (auto &first = m_machine.m_opcodeFirst[m_op]; first == PickleMachine::kNever)
        first = fileOffset();
    switch (m_op) {
    case PROTO: {
        const int p = take(1)[0];
        if (p > 5)
            fail("unsupported pickle protocol " + std::to_string(p));
        m_protocol = p;
        break;
    }
    case FRAME: {
        const auto n = readLE<std::uint64_t>();
        if (n > m_data.size() - m_pos)
            fail("frame of " + std::to_string(n) + " bytes but only " + std::to_string(m_data.size() - m_pos) +
                 " remain");
        break;  // framing only groups reads; the opcodes inside are read as usual
    }
    case STOP:
        m_result = pop();
        // Heights noted while building miss nesting made by filling a container after it was
        // added to its parent: measure the result itself then, so the limit holds either way.
        if (m_lateNesting && m_result && treeHeight(*m_result, PickleLimits::kMaxDepth) > PickleLimits::kMaxDepth)
            fail("nesting deeper than the limit of " + std::to_string(PickleLimits::kMaxDepth) + " levels");
        m_stopped = true;
        break;
    case MARK: m_marks.push_back(m_stack.size()); break;
    case POP:
        if (!m_marks.empty() && m_marks.back() == m_stack.size())
            m_marks.pop_back();  // POP of a mark, as Python allows
        else
            pop();
        break;
    case POP_MARK: popMark(); break;
    case DUP: push(top()); break;
    case NONE: push(shared(m_none, [] { return Value::none(); })); break;
    case NEWTRUE: push(shared(m_true, [] { return Value::boolean(true); })); break;
    case NEWFALSE: push(shared(m_false, [] { return Value::boolean(false); })); break;
    case INT: {
        const std::string line = readLine();
        if (line == "01")
            push(Value::boolean(true));
        else if (line == "00")
            push(Value::boolean(false));
        else
            push(intFromText(line));
        break;
    }
    case BININT: push(smallInt(readLE<std::int32_t>())); break;
    case BININT1: push(smallInt(take(1)[0])); break;
    case BININT2: push(smallInt(readLE<std::uint16_t>())); break;
    case LONG: push(intFromText(readLine())); break;
    case LONG1: {
        const auto n = take(1)[0];
        push(longFromBytes(take(n)));
        break;
    }
    case LONG4: {
        const auto n = readLE<std::int32_t>();
        if (n < 0)
            fail("negative byte count " + std::to_string(n));
        push(longFromBytes(take(static_cast<std::uint64_t>(n))));
        break;
    }
    case FLOAT: {
        const std::string line = readLine();
        double v = 0;
        auto res = std::from_chars(line.data(), line.data() + line.size(), v);
        if (res.ec != std::errc() || res.ptr != line.data() + line.size())
            fail("'" + line.substr(0, 40) + "' is not a float");
        push(Value::floating(v));
        break;
    }
    case BINFLOAT: {
        auto s = take(8);
        std::uint64_t u = 0;
        for (int i = 0; i < 8; ++i)
            u = (u << 8) | s[static_cast<std::size_t>(i)];  // big-endian
        push(Value::floating(std::bit_cast<double>(u)));
        break;
    }
    case STRING: {
        std::string decoded;
        if (!decodePythonStringLiteral(readLine(), decoded))
            fail("malformed quoted string");
        push(bytesOrText(std::move(decoded)));
        break;
    }
    case BINSTRING: {
        const auto n = readLE<std::int32_t>();
        if (n < 0)
            fail("negative string length " + std::to_string(n));
        push(bytesOrText(takeString(static_cast<std::uint64_t>(n))));
        break;
    }
    case SHORT_BINSTRING: push(bytesOrText(takeString(take(1)[0]))); break;
    case UNICODE: {
        std::string text, error;
        if (!decodeRawUnicodeEscape(readLine(), text, error))
            fail("text is not valid raw-unicode-escape: " + error + " (Python refuses it too)");
        push(Value::string(std::move(text)));
        break;
    }
    case BINUNICODE: push(Value::string(takeUtf8(readLE<std::uint32_t>()))); break;
    case SHORT_BINUNICODE: push(Value::string(takeUtf8(take(1)[0]))); break;
    case BINUNICODE8: push(Value::string(takeUtf8(readLE<std::uint64_t>()))); break;
    case BINBYTES: push(Value::bytes(takeString(readLE<std::uint32_t>()))); break;
    case SHORT_BINBYTES: push(Value::bytes(takeString(take(1)[0]))); break;
    case BINBYTES8: push(Value::bytes(takeString(readLE<std::uint64_t>()))); break;
    case BYTEARRAY8: {
        auto b = Value::bytes(takeString(readLE<std::uint64_t>()));
        b->setPythonClass("builtins.bytearray");
        push(b);
        break;
    }
    case NEXT_BUFFER: fail("out-of-band buffers are not part of a checkpoint file");
    case READONLY_BUFFER: top(); break;
    case EMPTY_TUPLE: push(makeTuple({})); break;
    case TUPLE1:
    case TUPLE2:
    case TUPLE3: {
        // Items moved off the stack, last first (an initializer list would copy each).
        std::vector<ValuePtr> items(static_cast<std::size_t>(m_op - TUPLE1 + 1));
        for (auto it = items.rbegin(); it != items.rend(); ++it)
            *it = pop();
        push(makeTuple(std::move(items)));
        break;
    }
    case TUPLE: push(makeTuple(popMark())); break;
    case EMPTY_LIST: push(Value::list()); break;
    case LIST: {
        auto l = Value::list(popMark());
        checkDepth(l);
        push(l);
        break;
    }
    case EMPTY_DICT: push(Value::dict()); break;
    case DICT: {
        auto items = popMark();
        auto d = Value::dict();
        setItems(d, std::move(items));
        push(d);
        break;
    }
    case EMPTY_SET: push(Value::set(Value::Kind::Set)); break;
    case FROZENSET: {
        auto s = Value::set(Value::Kind::FrozenSet);
        for (auto &i : popMark()) {
            s->noteChild(i);
            s->items().push_back(std::move(i));
        }
        checkDepth(s);
        push(s);
        break;
    }
    case ADDITEMS: {
        auto items = popMark();
        auto &s = top();
        if (s->kind() != Value::Kind::Set)
            fail("ADDITEMS target is a " + s->typeName() + ", not a set");
        const auto before = s->height();
        for (auto &i : items) {
            s->noteChild(i);
            s->items().push_back(std::move(i));
        }
        checkDepth(s);
        noteGrowth(*s, before);
        break;
    }
    case APPEND: {
        auto v = pop();
        appendTo(top(), {v});
        break;
    }
    case APPENDS: {
        auto items = popMark();
        appendTo(top(), std::move(items));
        break;
    }
    case SETITEM: {
        auto v = pop();
        auto k = pop();
        setItems(top(), {k, v});
        break;
    }
    case SETITEMS: {
        auto items = popMark();
        setItems(top(), std::move(items));
        break;
    }
    case GET: {
        bool big = false;
        std::string digits;
        const auto idx = parseDecimal(readLine(), big, digits);
        if (big || idx < 0)
            fail("memo index out of range");
        push(memoGet(static_cast<std::uint64_t>(idx)));
        break;
    }
    case BINGET: push(memoGet(take(1)[0])); break;
    case LONG_BINGET: push(memoGet(readLE<std::uint32_t>())); break;
    case PUT: {
        bool big = false;
        std::string digits;
        const auto idx = parseDecimal(readLine(), big, digits);
        if (big || idx < 0)
            fail("memo index out of range");
        memoPut(static_cast<std::uint64_t>(idx), top());
        break;
    }
    case BINPUT: memoPut(take(1)[0], top()); break;
    case LONG_BINPUT: memoPut(readLE<std::uint32_t>(), top()); break;
    case MEMOIZE: memoPut(m_memoCount, top()); break;
    case GLOBAL: {
        std::string module = readLine();
        std::string name = readLine();
        push(makeGlobal(std::move(module), std::move(name)));
        break;
    }
    case STACK_GLOBAL: {
        auto name = pop();
        auto module = pop();
        const auto computed = [](const ValuePtr &v) { return v->kind() == Value::Kind::Object; };
        if ((!name->isString() && !computed(name)) || (!module->isString() && !computed(module)))
            fail("STACK_GLOBAL needs two strings, found " + module->typeName() + " and " + name->typeName());
        if (!name->isString() || !module->isString()) {
            // Results of calls this reader does not make (_codecs.encode(..., 'rot13'), str(...)):
            // strings when Python loads the file, naming whatever function they spell. Kept as
            // an opaque global, flagged.
            m_machine.noteGlobal(std::string(kComputedName), std::string(kComputedName), fileOffset());
            push(Value::global(std::string(kComputedName), std::string(kComputedName)));
            break;
        }
        chargeCopy(module->text().size() + name->text().size());
        push(makeGlobal(module->text(), name->text()));
        break;
    }
    case EXT1:
    case EXT2:
    case EXT4: {
        const std::uint64_t code = m_op == EXT1 ? take(1)[0] : m_op == EXT2 ? readLE<std::uint16_t>()
                                                                               : readLE<std::uint32_t>();
        fail("extension code " + std::to_string(code) + " is not registered (copyreg extensions are never "
             "part of a checkpoint)");
    }
    case REDUCE: {
        auto args = pop();
        auto callable = pop();
        if (!args->isSequence())
            fail("REDUCE arguments are a " + args->typeName() + ", not a tuple");
        push(call(callable, args));
        break;
    }
    case NEWOBJ: {
        auto args = pop();
        auto cls = pop();
        if (!args->isSequence())
            fail("NEWOBJ arguments are a " + args->typeName() + ", not a tuple");
        push(markNew(call(cls, args), cls));
        break;
    }
    case NEWOBJ_EX: {
        auto kwargs = pop();
        auto args = pop();
        auto cls = pop();
        if (!args->isSequence() || !kwargs->isDict())
            fail("NEWOBJ_EX needs a tuple and a dict");
        ValuePtr v = markNew(call(cls, args), cls);
        if (v->kind() == Value::Kind::Object && !kwargs->entries().empty()) {
            // The keyword arguments nest like any child: their height counts toward the limit.
            auto both = makeTuple({args, kwargs});
            const auto before = v->height();
            v->noteChild(both);
            v->setArgs(both);
            checkDepth(v);
            noteGrowth(*v, before);
        }
        push(v);
        break;
    }
    case INST: {
        std::string module = readLine();
        std::string name = readLine();
        auto cls = makeGlobal(std::move(module), std::move(name));
        auto args = popMark();
        // Python calls the class when there are arguments, else takes cls.__new__(cls).
        auto v = call(cls, makeTuple(args));
        push(args.empty() ? markNew(v, cls) : v);
        break;
    }
    case OBJ: {
        auto items = popMark();
        if (items.empty())
            fail("OBJ without a class");
        auto cls = items.front();
        auto v = call(cls, makeTuple(std::vector<ValuePtr>(items.begin() + 1, items.end())));
        push(items.size() == 1 ? markNew(v, cls) : v);
        break;
    }
    case BUILD: {
        auto state = pop();
        build(top(), state);
        break;
    }
    case PERSID:
    case BINPERSID: {
        ValuePtr pid = m_op == PERSID ? Value::string(readLine()) : pop();
        if (!m_machine.m_persistentLoad)
            fail("persistent id outside a checkpoint container");
        push(m_machine.m_persistentLoad(pid, fileOffset()));
        break;
    }
    default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", m_op);
        fail(std::string("unknown opcode ") + hex);
    }
    }
}

PickleMachine::Result PickleMachine::run(std::span<const std::uint8_t> data)
{
    PickleRun r(*this, data);
    auto result = r.run();
    m_warnings.insert(m_warnings.end(), r.warnings().begin(), r.warnings().end());
    return result;
}

} // namespace ckpt
