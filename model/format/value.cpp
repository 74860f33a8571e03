#include "value.h"

#include <atomic>
#include <cstdint>
#include <memory_resource>
#include <new>

#include <sys/mman.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CKPT_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CKPT_LSAN 1
#endif
#ifdef CKPT_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "dtypecast.h"
#include "tensorref.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

namespace ckpt {

namespace {

// Where a pool's blocks come from: whole 2 MiB-aligned mappings, marked for transparent huge
// pages, so that filling half a million values costs one page fault per 2 MiB rather than per 4 KiB.
class HugePageResource final : public std::pmr::memory_resource {
    static constexpr std::size_t kHuge = std::size_t{2} << 20;

    void *do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        const std::size_t size = (bytes + kHuge - 1) / kHuge * kHuge;
        if (alignment > kHuge)
            throw std::bad_alloc();
        void *raw = ::mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED)
            throw std::bad_alloc();
        // Keep the aligned part; give back the slack on both sides.
        const auto start = reinterpret_cast<std::uintptr_t>(raw);
        const auto aligned = (start + kHuge - 1) / kHuge * kHuge;
        if (aligned > start)
            ::munmap(raw, aligned - start);
        if (const auto tail = start + size + kHuge - (aligned + size); tail > 0)
            ::munmap(reinterpret_cast<void *>(aligned + size), tail);
        ::madvise(reinterpret_cast<void *>(aligned), size, MADV_HUGEPAGE);
#ifdef CKPT_LSAN
        // The values here point to what they allocated: the leak checker must look in here too.
        __lsan_register_root_region(reinterpret_cast<void *>(aligned), size);
#endif
        return reinterpret_cast<void *>(aligned);
    }
    void do_deallocate(void *p, std::size_t bytes, std::size_t) override
    {
        const std::size_t size = (bytes + kHuge - 1) / kHuge * kHuge;
#ifdef CKPT_LSAN
        __lsan_unregister_root_region(p, size);
#endif
        ::munmap(p, size);
    }
    bool do_is_equal(const std::pmr::memory_resource &other) const noexcept override { return this == &other; }
};

HugePageResource &hugePages()
{
    static HugePageResource r;  // stateless: safe from any thread
    return r;
}

// A pool of blocks handed out in order and never given back one by one: values die together.
// Counted by hand (the scope that made it, and each value's allocator): a shared_ptr in every
// value's control block would cost 8 bytes more per value, of which a file can make half a million.
struct ValuePool {
    std::atomic<std::size_t> refs{1};

    ValuePool() = default;
    ValuePool(const ValuePool &) = delete;
    ValuePool &operator=(const ValuePool &) = delete;
    ~ValuePool()
    {
        for (const auto &[at, size] : m_blocks)
            hugePages().deallocate(at, size, alignof(std::max_align_t));
    }

    // Inline bump allocation (half a million calls for a large state dict); a new block, twice
    // the last up to 64 MiB, when this one is full.
    void *allocate(std::size_t bytes, std::size_t align)
    {
        const auto at = (reinterpret_cast<std::uintptr_t>(m_next) + align - 1) & ~(std::uintptr_t(align) - 1);
        const auto end = reinterpret_cast<std::uintptr_t>(m_end);
        if (m_next && at <= end && bytes <= end - at) {
            m_next = reinterpret_cast<char *>(at + bytes);
            return reinterpret_cast<void *>(at);
        }
        return refill(bytes, align);
    }

private:
    std::vector<std::pair<void *, std::size_t>> m_blocks;
    char *m_next = nullptr;
    char *m_end = nullptr;
    std::size_t m_blockSize = std::size_t{2} << 20;

    void *refill(std::size_t bytes, std::size_t align)
    {
        const std::size_t size = std::max(m_blockSize, bytes + align);
        m_blocks.reserve(m_blocks.size() + 1);
        void *block = hugePages().allocate(size, alignof(std::max_align_t));
        m_blocks.emplace_back(block, size);
        m_blockSize = std::min(m_blockSize * 2, std::size_t{64} << 20);
        m_next = static_cast<char *>(block);
        m_end = m_next + size;
        return allocate(bytes, align);
    }
};

void retain(ValuePool *p) { p->refs.fetch_add(1, std::memory_order_relaxed); }
void release(ValuePool *p)
{
    if (p->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
        delete p;
}

thread_local ValuePool *t_pool = nullptr;

// The allocator allocate_shared keeps in each value's control block: it holds the pool, so the
// pool lives as long as any value carved from it.
template <class T> struct PoolAllocator {
    using value_type = T;
    ValuePool *pool;
    explicit PoolAllocator(ValuePool *p) : pool(p) { retain(pool); }
    PoolAllocator(const PoolAllocator &o) : pool(o.pool) { retain(pool); }
    template <class U> PoolAllocator(const PoolAllocator<U> &o) : pool(o.pool) { retain(pool); }
    PoolAllocator &operator=(const PoolAllocator &) = delete;
    ~PoolAllocator() { release(pool); }
    T *allocate(std::size_t n) { return static_cast<T *>(pool->allocate(n * sizeof(T), alignof(T))); }
    void deallocate(T *, std::size_t) noexcept {}
    template <class U> bool operator==(const PoolAllocator<U> &o) const { return pool == o.pool; }
};

ValuePtr makeValue(Value::Kind kind)
{
    if (t_pool)
        return std::allocate_shared<Value>(PoolAllocator<Value>(t_pool), kind);
    return std::make_shared<Value>(kind);
}

template <class T> std::shared_ptr<T> makePooled()
{
    if (t_pool)
        return std::allocate_shared<T>(PoolAllocator<T>(t_pool));
    return std::make_shared<T>();
}

} // namespace

std::shared_ptr<TensorRef> makeTensorRef() { return makePooled<TensorRef>(); }

std::shared_ptr<StorageRef> makeStorageRef() { return makePooled<StorageRef>(); }

Value::Extra &Value::extra()
{
    if (!m_extra) {
        if (ValuePool *pool = t_pool) {
            void *at = pool->allocate(sizeof(Extra), alignof(Extra));
            auto *e = new (at) Extra;
            retain(pool);
            e->pool = pool;
            m_extra.reset(e);
        } else {
            m_extra.reset(new Extra);
        }
    }
    return *m_extra;
}

void Value::ExtraDeleter::operator()(Extra *e) const noexcept
{
    if (auto *pool = static_cast<ValuePool *>(e->pool)) {
        e->~Extra();  // its memory goes back with the pool
        release(pool);
    } else {
        delete e;
    }
}

const std::string &Value::emptyText()
{
    static const std::string empty;
    return empty;
}

const ValuePtr &Value::noValue()
{
    static const ValuePtr none;
    return none;
}

const std::shared_ptr<TensorRef> &Value::tensorRef() const
{
    static const std::shared_ptr<TensorRef> none;
    return m_extra ? m_extra->tensor : none;
}

const std::shared_ptr<StorageRef> &Value::storageRef() const
{
    static const std::shared_ptr<StorageRef> none;
    return m_extra ? m_extra->storage : none;
}

// The enclosing scope keeps its own pool alive: m_previous only remembers it (owning nothing).
ValuePoolScope::ValuePoolScope() : m_previous(std::shared_ptr<void>(), t_pool) { t_pool = new ValuePool; }

ValuePoolScope::~ValuePoolScope()
{
    release(t_pool);  // values made from it keep it until they go
    t_pool = static_cast<ValuePool *>(m_previous.get());
}

Value::~Value()
{
    // Destroy children iteratively: a deeply nested tree must not overflow the stack on the way out.
    if (m_items.empty() && m_entries.empty() && !m_extra)
        return;
    std::vector<ValuePtr> pending;
    auto take = [&pending](Value &v) {
        for (auto &c : v.m_items)
            pending.push_back(std::move(c));
        v.m_items.clear();
        for (auto &e : v.m_entries) {
            pending.push_back(std::move(e.key));
            pending.push_back(std::move(e.value));
        }
        v.m_entries.clear();
        if (v.m_extra) {
            pending.push_back(std::move(v.m_extra->args));
            pending.push_back(std::move(v.m_extra->state));
            pending.push_back(std::move(v.m_extra->cls));
        }
    };
    take(*this);
    while (!pending.empty()) {
        ValuePtr p = std::move(pending.back());
        pending.pop_back();
        if (p && p.use_count() == 1)
            take(*p);
        // p released here with its children already moved out
    }
}

void Value::releaseChildren()
{
    // Moved out first, so that destroying them cannot reach back into this node's vectors.
    std::vector<ValuePtr> items = std::move(m_items);
    std::vector<DictEntry> entries = std::move(m_entries);
    ValuePtr cls, args, state;
    if (m_extra) {
        cls = std::move(m_extra->cls);
        args = std::move(m_extra->args);
        state = std::move(m_extra->state);
    }
    m_items.clear();
    m_entries.clear();
}

ValueArena::~ValueArena()
{
    for (auto &v : m_values)
        if (v)
            v->releaseChildren();
}

ValuePtr Value::none() { return makeValue(Kind::None); }

ValuePtr Value::boolean(bool v)
{
    auto r = makeValue(Kind::Bool);
    r->m_int = v ? 1 : 0;
    return r;
}

ValuePtr Value::integer(std::int64_t v)
{
    auto r = makeValue(Kind::Int);
    r->m_int = v;
    return r;
}

ValuePtr Value::bigInteger(std::string decimal)
{
    auto r = makeValue(Kind::BigInt);
    r->m_text = std::move(decimal);
    return r;
}

ValuePtr Value::floating(double v)
{
    auto r = makeValue(Kind::Float);
    r->m_float = v;
    return r;
}

ValuePtr Value::complex(double re, double im)
{
    auto r = makeValue(Kind::Complex);
    r->m_float = re;
    r->extra().imag = im;
    return r;
}

ValuePtr Value::string(std::string utf8)
{
    auto r = makeValue(Kind::String);
    r->m_text = std::move(utf8);
    return r;
}

ValuePtr Value::bytes(std::string raw)
{
    auto r = makeValue(Kind::Bytes);
    r->m_text = std::move(raw);
    return r;
}

ValuePtr Value::tuple(std::vector<ValuePtr> items)
{
    auto r = makeValue(Kind::Tuple);
    for (const auto &i : items)
        r->noteChild(i);
    r->m_items = std::move(items);
    return r;
}

ValuePtr Value::list(std::vector<ValuePtr> items)
{
    auto r = makeValue(Kind::List);
    for (const auto &i : items)
        r->noteChild(i);
    r->m_items = std::move(items);
    return r;
}

ValuePtr Value::dict() { return makeValue(Kind::Dict); }

ValuePtr Value::set(Kind kind) { return makeValue(kind); }

ValuePtr Value::global(std::string module, std::string name)
{
    auto r = makeValue(Kind::Global);
    r->m_text = std::move(module);
    r->extra().name = std::move(name);
    return r;
}

ValuePtr Value::object(ValuePtr cls, ValuePtr args)
{
    auto r = makeValue(Kind::Object);
    r->noteChild(cls);
    r->noteChild(args);
    r->extra().cls = std::move(cls);
    r->extra().args = std::move(args);
    return r;
}

ValuePtr Value::tensor(std::shared_ptr<TensorRef> ref)
{
    auto r = makeValue(Kind::Tensor);
    r->extra().tensor = std::move(ref);
    return r;
}

void Value::becomeTensor(std::shared_ptr<TensorRef> ref)
{
    m_kind = Kind::Tensor;
    // The class, arguments, state and Python class that built it are no longer its own.
    m_extra.reset();
    extra().tensor = std::move(ref);
}

ValuePtr Value::storage(std::shared_ptr<StorageRef> ref)
{
    auto r = makeValue(Kind::Storage);
    r->extra().storage = std::move(ref);
    return r;
}

bool Value::isContainer() const
{
    switch (m_kind) {
    case Kind::Tuple:
    case Kind::List:
    case Kind::Dict:
    case Kind::Set:
    case Kind::FrozenSet:
    case Kind::Object:
        return true;
    default:
        return m_kind == Kind::Tensor && state() != nullptr;
    }
}

ValuePtr Value::get(const std::string &key) const
{
    for (const auto &e : m_entries)
        if (e.key && e.key->m_kind == Kind::String && e.key->m_text == key)
            return e.value;
    return nullptr;
}

void Value::noteChild(const ValuePtr &child)
{
    if (!child)
        return;
    child->m_hasParent = true;
    if (child->m_height + 1 > m_height)
        m_height = child->m_height + 1;
}

namespace {
// The i-th child in the order noteChild sees them: items, entries (key, value), class, args, state.
const Value *childAt(const Value &v, std::size_t i)
{
    if (i < v.items().size())
        return v.items()[i].get();
    i -= v.items().size();
    if (i < 2 * v.entries().size()) {
        const auto &e = v.entries()[i / 2];
        return (i % 2 ? e.value : e.key).get();
    }
    return nullptr;
}
} // namespace

std::uint32_t treeHeight(const Value &root, std::uint32_t limit)
{
    // Post-order walk with an explicit stack; a node on the stack (a cycle) counts as height 0.
    constexpr std::uint32_t kOnStack = ~std::uint32_t(0);
    std::unordered_map<const Value *, std::uint32_t> height;  // finished nodes, and kOnStack
    struct Frame {
        const Value *v;
        std::size_t next;
        std::uint32_t h;
    };
    std::vector<Frame> stack{{&root, 0, 0}};
    height.emplace(&root, kOnStack);
    while (!stack.empty()) {
        Frame &f = stack.back();
        const Value &v = *f.v;
        const std::size_t plain = v.items().size() + 2 * v.entries().size();
        const Value *child = nullptr;
        while (!child && f.next < plain + 3) {
            const std::size_t i = f.next++;
            child = i < plain ? childAt(v, i) : (i == plain ? v.objectClass() : i == plain + 1 ? v.args() : v.state()).get();
            if (!child)
                continue;
            auto [it, fresh] = height.try_emplace(child, kOnStack);
            if (!fresh) {
                if (it->second != kOnStack)
                    f.h = std::max(f.h, it->second + 1);
                else
                    f.h = std::max<std::uint32_t>(f.h, 1);
                child = nullptr;
            }
        }
        if (child) {
            if (stack.size() > limit)
                return limit + 1;  // a chain of more than `limit` children below the root
            stack.push_back({child, 0, 0});
            continue;
        }
        const std::uint32_t h = f.h;
        height[f.v] = h;
        stack.pop_back();
        if (h > limit)
            return h;
        if (!stack.empty())
            stack.back().h = std::max(stack.back().h, h + 1);
    }
    return height[&root];
}

std::string Value::typeName() const
{
    if (!pythonClass().empty()) {
        // Short, familiar names for the classes the reader understands.
        const std::string &c = pythonClass();
        auto dot = c.rfind('.');
        if (c == "collections.OrderedDict" || c == "torch.Size" || c == "torch.device" || c == "builtins.bytearray")
            return dot == std::string::npos ? c : c.substr(dot + 1);
        return c;
    }
    switch (m_kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int:
    case Kind::BigInt: return "int";
    case Kind::Float: return "float";
    case Kind::Complex: return "complex";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Set: return "set";
    case Kind::FrozenSet: return "frozenset";
    case Kind::Global: return "global";
    case Kind::Object: return objectClass() && objectClass()->m_kind == Kind::Global ? objectClass()->qualifiedName() : "object";
    case Kind::Tensor: return tensorRef() && tensorRef()->isParameter ? "Parameter" : "Tensor";
    case Kind::Storage: return "Storage";
    }
    return "?";
}

namespace {

// Python's repr layout of a finite value given as std::to_chars' scientific text of its shortest
// digits ("1.5e-05"): written out in full while the decimal exponent is from -4 to 15 (100000.0,
// 0.0001, 1000000000000000.0), else in scientific notation with at least two exponent digits
// (1e-05, 1e+16). std::to_chars's own choice differs (it takes whichever text is shorter: 1e+05).
std::string pythonLayout(std::string_view sci, bool negative)
{
    const std::size_t e = sci.find('e');
    std::string digits;
    for (char c : sci.substr(0, e))
        if (c >= '0' && c <= '9')
            digits += c;
    int exponent = 0;
    const std::string_view exp = sci.substr(e + 1);
    std::from_chars(exp.data() + (exp.front() == '+' ? 1 : 0), exp.data() + exp.size(), exponent);
    std::string s = negative ? "-" : "";
    if (exponent < -4 || exponent >= 16) {
        s += digits.substr(0, 1);
        if (digits.size() > 1)
            s += "." + digits.substr(1);
        const int mag = exponent < 0 ? -exponent : exponent;
        s += std::string(exponent < 0 ? "e-" : "e+") + (mag < 10 ? "0" : "") + std::to_string(mag);
        return s;
    }
    const int point = exponent + 1;  // digits before the decimal point
    if (point <= 0)
        return s + "0." + std::string(static_cast<std::size_t>(-point), '0') + digits;
    if (static_cast<std::size_t>(point) >= digits.size())
        return s + digits + std::string(static_cast<std::size_t>(point) - digits.size(), '0') + ".0";
    return s + digits.substr(0, static_cast<std::size_t>(point)) + "." + digits.substr(static_cast<std::size_t>(point));
}

const char *nonFinite(double v)
{
    return std::isnan(v) ? "nan" : !std::isinf(v) ? nullptr : v > 0 ? "inf" : "-inf";
}

} // namespace

std::string formatFloat(double v)
{
    if (const char *word = nonFinite(v))
        return word;
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    return pythonLayout(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)), std::signbit(v));
}

std::string formatFloat(double v, int bits)
{
    if (bits == 64 || nonFinite(v))
        return formatFloat(v);
    char buf[64];
    if (bits == 32) {
        const auto res = std::to_chars(buf, buf + sizeof buf, static_cast<float>(v), std::chars_format::scientific);
        return pythonLayout(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)), std::signbit(v));
    }
    // float16: the fewest significant digits that read back to the same half (at most 5 do).
    const std::uint16_t bitsOf = floatToHalfBits(static_cast<float>(v));
    int n = 0;
    for (int digits = 1; digits <= 5; ++digits) {
        n = std::snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
        if (floatToHalfBits(static_cast<float>(std::strtod(buf, nullptr))) == bitsOf)
            break;
    }
    return pythonLayout(std::string_view(buf, static_cast<std::size_t>(n)), std::signbit(v));
}

std::string keyText(const Value &key)
{
    switch (key.kind()) {
    case Value::Kind::String: return key.text();
    case Value::Kind::Int: return std::to_string(key.asInt());
    case Value::Kind::BigInt: return key.text();
    case Value::Kind::Bool: return key.asBool() ? "True" : "False";
    case Value::Kind::None: return "None";
    case Value::Kind::Float: return formatFloat(key.asFloat());
    case Value::Kind::Bytes: return "b'" + key.text() + "'";
    case Value::Kind::Global: return key.qualifiedName();
    case Value::Kind::Tuple: {
        std::string s = "(";
        for (std::size_t i = 0; i < key.items().size() && i < 16; ++i) {
            if (i)
                s += ", ";
            s += key.items()[i] ? keyText(*key.items()[i]) : "?";
        }
        if (key.items().size() == 1)
            s += ",";
        return s + ")";
    }
    default: return "<" + key.typeName() + ">";
    }
}

} // namespace ckpt
