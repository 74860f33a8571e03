#include "pythonrepr.h"

#include "tensorref.h"
#include "textcodec.h"
#include "unicodeprintable.h"
#include "valuetree.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace ckpt {

namespace {

bool printable(std::uint32_t cp)
{
    const auto *end = std::end(unicode::kNotPrintable);
    const auto *it = std::upper_bound(std::begin(unicode::kNotPrintable), end, cp,
                                      [](std::uint32_t c, const unicode::Range &r) { return c < r.first; });
    return it == std::begin(unicode::kNotPrintable) || cp > std::prev(it)->last;
}

void appendEscape(std::string &out, std::uint32_t cp)
{
    char buf[16];
    if (cp < 0x100)
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(cp));
    else if (cp < 0x10000)
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
    else
        std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(cp));
    out += buf;
}

// Python picks single quotes unless the text holds a single quote and no double quote.
char quoteFor(std::string_view s)
{
    return s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos ? '"' : '\'';
}

bool appendCommonEscape(std::string &out, std::uint32_t c, char quote)
{
    switch (c) {
    case '\\': out += "\\\\"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    case '\t': out += "\\t"; return true;
    default: break;
    }
    if (c == static_cast<unsigned char>(quote)) {
        out += '\\';
        out += quote;
        return true;
    }
    return false;
}

std::string noTrailingZero(double v)
{
    std::string s = formatFloat(v);
    if (s.size() > 2 && s.ends_with(".0"))
        s.resize(s.size() - 2);
    return s;
}

std::string shortName(const std::string &qualified)
{
    const auto dot = qualified.rfind('.');
    return dot == std::string::npos ? qualified : qualified.substr(dot + 1);
}

class ReprWriter {
public:
    explicit ReprWriter(const ReprLimits &limits) : m_limits(limits) {}

    std::string take(const Value &v)
    {
        write(v, 0);
        if (m_cut)
            m_out += "…";
        return std::move(m_out);
    }

private:
    bool full()
    {
        if (m_out.size() >= m_limits.maxChars)
            m_cut = true;
        return m_cut;
    }

    void write(const ValuePtr &v, std::uint32_t depth)
    {
        if (!v)
            m_out += "None";
        else
            write(*v, depth);
    }

    void write(const Value &v, std::uint32_t depth)
    {
        if (full())
            return;
        // A container reached again inside itself: Python writes [...] / {...}.
        if (std::find(m_open.begin(), m_open.end(), &v) != m_open.end()) {
            m_out += v.kind() == Value::Kind::List ? "[...]" : v.kind() == Value::Kind::Dict ? "{...}" : "...";
            return;
        }
        using K = Value::Kind;
        switch (v.kind()) {
        case K::None: m_out += "None"; return;
        case K::Bool: m_out += v.asBool() ? "True" : "False"; return;
        case K::Int: m_out += std::to_string(v.asInt()); return;
        case K::BigInt: m_out += v.text(); return;
        case K::Float:
            // numpy.float32 / numpy.float16 scalars as numpy prints them: 0.1, not 0.10000000149011612.
            m_out += formatFloat(v.asFloat(), v.pythonClass() == "numpy.float32"   ? 32
                                              : v.pythonClass() == "numpy.float16" ? 16
                                                                                   : 64);
            return;
        case K::Complex: m_out += pythonComplexRepr(v.asFloat(), v.imag()); return;
        case K::String: writeString(v); return;
        case K::Bytes: {
            const bool array = v.pythonClass() == "builtins.bytearray";
            m_out += array ? "bytearray(" : "";
            m_out += pythonBytesRepr(v.text(), room());
            m_out += array ? ")" : "";
            return;
        }
        case K::Global: append(v.qualifiedName()); return;
        case K::Tensor: writeTensor(v); return;
        case K::Storage: {
            const auto &s = v.storageRef();
            append(s ? "<storage " + s->key + " " + std::string(dtypeName(s->dtype)) + " " + s->location + ">"
                     : std::string("<storage>"));
            return;
        }
        default: break;
        }
        if (depth >= m_limits.maxDepth) {  // containers below the limit are not followed
            m_out += "…";
            return;
        }
        m_open.push_back(&v);
        switch (v.kind()) {
        case K::Tuple: writeTuple(v, depth); break;
        case K::List: writeItems(v.items(), "[", "]", depth); break;
        case K::Set:
            if (v.items().empty())
                m_out += "set()";
            else
                writeItems(v.items(), "{", "}", depth);
            break;
        case K::FrozenSet:
            m_out += "frozenset(";
            if (!v.items().empty())
                writeItems(v.items(), "{", "}", depth);
            m_out += ")";
            break;
        case K::Dict: writeDict(v, depth); break;
        case K::Object: writeObject(v, depth); break;
        default: m_out += "<" + v.typeName() + ">"; break;
        }
        m_open.pop_back();
    }

    std::size_t room() const { return m_limits.maxChars > m_out.size() ? m_limits.maxChars - m_out.size() : 0; }

    // Text from the file that is not a literal (a class's or an attribute's name): at most the room
    // left, cut at a character, and made safe to show.
    void append(std::string_view text)
    {
        if (text.size() > room()) {
            std::size_t at = room();
            while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80)
                --at;
            text = text.substr(0, at);
            m_cut = true;
        }
        m_out += displayText(text);
    }

    void writeString(const Value &v)
    {
        if (v.pythonClass() == "torch.device") {
            // device(type='cuda', index=0), from the "cuda:0" the reader keeps.
            const std::string &t = v.text();
            const auto colon = t.find(':');
            m_out += "device(type=" + pythonStringRepr(t.substr(0, colon), room());
            if (colon != std::string::npos) {
                m_out += ", index=";
                append(std::string_view(t).substr(colon + 1));
            }
            m_out += ")";
            return;
        }
        const std::string &cls = v.pythonClass();
        if (cls == "torch.layout") {  // torch.strided, as the reader keeps it
            m_out += v.text();
        } else if (cls.starts_with("datetime.")) {
            m_out += datetimeRepr(cls, v.text());
        } else if (cls.empty() || cls == "torch.torch_version.TorchVersion") {
            m_out += pythonStringRepr(v.text(), room());  // a str subclass writes as str
        } else {
            append(shortName(cls));  // PosixPath('/runs')
            m_out += "(" + pythonStringRepr(v.text(), room()) + ")";
        }
    }

    // datetime.datetime(2024, 5, 6, 7, 8, 9, 123456) from the ISO text the reader keeps: seconds
    // and microseconds are left out when zero, as Python leaves them out.
    static std::string datetimeRepr(const std::string &cls, const std::string &iso)
    {
        std::vector<std::string> fields;
        for (std::size_t i = 0; i < iso.size();) {
            std::size_t j = i;
            while (j < iso.size() && iso[j] >= '0' && iso[j] <= '9')
                ++j;
            if (j > i) {
                const std::string_view digits = std::string_view(iso).substr(i, j - i);
                const std::size_t nonZero = digits.find_first_not_of('0');
                fields.emplace_back(nonZero == std::string_view::npos ? "0" : digits.substr(nonZero));
            }
            i = j == i ? i + 1 : j;
        }
        const std::size_t clock = cls == "datetime.datetime" ? 3 : cls == "datetime.time" ? 0 : fields.size();
        std::size_t keep = fields.size();
        while (keep > clock + 2 && fields[keep - 1] == "0")  // hour and minute always stay
            --keep;
        std::string out = cls + "(";
        for (std::size_t i = 0; i < keep; ++i)
            out += (i ? ", " : "") + fields[i];
        return out + ")";
    }

    void writeTensor(const Value &v)
    {
        const auto &t = v.tensorRef();
        if (!t) {
            m_out += "<tensor>";
            return;
        }
        m_out += std::string(t->isParameter ? "<parameter " : "<tensor ") + std::string(dtypeName(t->dtype)) + " " +
                 shapeText(t->shape) + " " + t->device() + ">";
    }

    void writeTuple(const Value &v, std::uint32_t depth)
    {
        const std::string &cls = v.pythonClass();
        if (cls == "torch.Size") {
            writeItems(v.items(), "torch.Size([", "])", depth);
            return;
        }
        if (!cls.empty()) {
            append(shortName(cls));
            writeItems(v.items(), "(", ")", depth);
            return;
        }
        writeItems(v.items(), "(", v.items().size() == 1 ? ",)" : ")", depth);
    }

    // `n` elements with ", " between them, the first maxItems of them (then "…"), each written by
    // `one(i)`; false when the output filled up on the way.
    template <class WriteOne> bool writeSeparated(std::size_t n, WriteOne &&one)
    {
        for (std::size_t i = 0; i < n; ++i) {
            if (full())
                return false;
            if (i)
                m_out += ", ";
            if (i == m_limits.maxItems) {
                m_out += "…";
                break;
            }
            one(i);
        }
        return true;
    }

    void writeItems(const std::vector<ValuePtr> &items, const std::string &open, const std::string &close,
                    std::uint32_t depth)
    {
        m_out += open;
        if (writeSeparated(items.size(), [&](std::size_t i) { write(items[i], depth + 1); }))
            m_out += close;
    }

    void writeEntries(const Value &v, bool asPairs, std::uint32_t depth)
    {
        const auto &entries = v.entries();
        writeSeparated(entries.size(), [&](std::size_t i) {
            m_out += asPairs ? "(" : "";
            write(entries[i].key, depth + 1);
            m_out += asPairs ? ", " : ": ";
            write(entries[i].value, depth + 1);
            m_out += asPairs ? ")" : "";
        });
    }

    void writeDict(const Value &v, std::uint32_t depth)
    {
        const std::string &cls = v.pythonClass();
        if (cls == "collections.OrderedDict") {
            // As Python 3.11 writes it (3.12 writes OrderedDict({...})).
            if (v.entries().empty()) {
                m_out += "OrderedDict()";
                return;
            }
            m_out += "OrderedDict([";
            writeEntries(v, true, depth);
            m_out += "])";
            return;
        }
        if (!cls.empty())
            append(shortName(cls) + "(");
        m_out += "{";
        writeEntries(v, false, depth);
        m_out += cls.empty() ? "}" : "})";
    }

    // What an object's class is called: a global by its qualified name (or, for an instance made
    // by __new__, the class's own name, as Namespace and dataclasses print); getattr(Outer, 'Inner'),
    // as protocol 2 pickles a nested class, as Outer.Inner. Empty when the class is another value.
    static std::string classText(const Value &v, bool own)
    {
        const ValuePtr &cls = v.objectClass();
        if (!cls)
            return "object";
        if (cls->kind() == Value::Kind::Global)
            return own ? shortName(cls->qualifiedName()) : cls->qualifiedName();
        if (cls->kind() == Value::Kind::Object && className(*cls) == "builtins.getattr" && cls->args() &&
            cls->args()->items().size() == 2 && cls->args()->items()[0] &&
            cls->args()->items()[0]->kind() == Value::Kind::Global && cls->args()->items()[1] &&
            cls->args()->items()[1]->isString()) {
            const Value &outer = *cls->args()->items()[0];
            return (own ? outer.name() : outer.qualifiedName()) + "." + cls->args()->items()[1]->text();
        }
        return {};
    }

    // Whether Python would write `name=value` for this attribute (an identifier), rather than
    // putting it into **{...}.
    static bool identifier(const std::string &name)
    {
        if (name.empty() || (name[0] >= '0' && name[0] <= '9'))
            return false;
        return std::all_of(name.begin(), name.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u >= 0x80 || u == '_' || (u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z');
        });
    }

    // datetime.timedelta(days=1, seconds=3), as Python writes it, from its (days, seconds,
    // microseconds) arguments; false when they are not three integers.
    bool writeTimedelta(const Value &v)
    {
        const ValuePtr &args = v.args();
        if (!args || args->items().size() != 3 || !v.items().empty() || (v.state() && !v.state()->isNone()))
            return false;
        static constexpr const char *kNames[] = {"days", "seconds", "microseconds"};
        std::string out;
        for (std::size_t i = 0; i < 3; ++i) {
            const ValuePtr &a = args->items()[i];
            if (!a || !a->isInt())
                return false;
            if (a->asInt() != 0)
                out += (out.empty() ? "" : ", ") + std::string(kNames[i]) + "=" + std::to_string(a->asInt());
        }
        m_out += "datetime.timedelta(" + (out.empty() ? std::string("0") : out) + ")";
        return true;
    }

    // An object as its class called with its arguments and its state's attributes.
    void writeObject(const Value &v, std::uint32_t depth)
    {
        const std::string cls = className(v);
        if (cls == "collections.defaultdict" && v.args() && v.args()->items().size() == 1 && v.args()->items()[0] &&
            v.args()->items()[0]->kind() == Value::Kind::Global && v.items().empty()) {
            // defaultdict(<class 'list'>, {...}): its factory is a class in every common use.
            const Value &factory = *v.args()->items()[0];
            m_out += "defaultdict(<class '";
            append(factory.text() == "builtins" ? factory.name() : factory.qualifiedName());
            m_out += "'>, {";
            writeEntries(v, false, depth);
            m_out += "})";
            return;
        }
        if (cls == "datetime.timedelta" && writeTimedelta(v))
            return;
        // An instance made by its class's __new__ (Namespace, a dataclass) by the class's own name,
        // as their repr writes it; a call (REDUCE) by the full name of what it calls, so that
        // venv.main([...]) does not read as a harmless main([...]); a class that is itself a
        // call's result as that call.
        const std::string name = classText(v, v.builtByNew());
        if (name.empty())
            write(v.objectClass(), depth + 1);
        else
            append(name);
        m_out += "(";
        bool first = true;
        const auto next = [&] {
            if (!first)
                m_out += ", ";
            first = false;
        };
        if (const auto &args = v.args(); args && args->isSequence() && !args->items().empty()) {
            next();
            writeSeparated(args->items().size(), [&](std::size_t i) { write(args->items()[i], depth + 1); });
        }
        const ValuePtr &state = v.state();
        // BUILD's state: a dict of attributes, or (dict, slots) as __reduce_ex__ gives it.
        const ValuePtr attrs =
            state && state->isDict() ? state
            : state && state->kind() == Value::Kind::Tuple && state->items().size() == 2 && state->items()[0] &&
                      state->items()[0]->isDict()
                ? state->items()[0]
                : nullptr;
        if (attrs) {
            std::vector<const Value::DictEntry *> others;  // not identifiers: **{...}, as argparse writes them
            std::size_t n = 0;
            for (const auto &e : attrs->entries()) {
                if (full())
                    break;
                if (!e.key || !e.key->isString() || !identifier(e.key->text())) {
                    others.push_back(&e);
                    continue;
                }
                next();
                if (n++ == m_limits.maxItems) {
                    m_out += "…";
                    break;
                }
                append(e.key->text());
                m_out += "=";
                write(e.value, depth + 1);
            }
            if (!others.empty() && !full()) {
                next();
                m_out += "**{";
                writeSeparated(others.size(), [&](std::size_t i) {
                    write(others[i]->key, depth + 1);
                    m_out += ": ";
                    write(others[i]->value, depth + 1);
                });
                m_out += "}";
            }
        } else if (state && !state->isNone()) {
            next();
            m_out += "state=";
            write(state, depth + 1);
        }
        if (!v.items().empty()) {
            next();
            writeItems(v.items(), "items=[", "]", depth);
        }
        if (!v.entries().empty()) {
            next();
            m_out += "entries={";
            writeEntries(v, false, depth);
            m_out += "}";
        }
        m_out += ")";
    }

    const ReprLimits &m_limits;
    std::string m_out;
    std::vector<const Value *> m_open;  // the containers being written, outermost first
    bool m_cut = false;
};

} // namespace

std::string pythonStringRepr(std::string_view utf8, std::size_t maxChars)
{
    const char quote = quoteFor(utf8);
    std::string out(1, quote);
    std::size_t shown = 0;
    for (std::size_t i = 0; i < utf8.size();) {
        if (shown++ == maxChars) {
            out += "…";
            break;
        }
        std::uint32_t cp = 0;
        const std::size_t len = decodeUtf8(utf8, i, cp);
        if (len == 0) {  // not UTF-8: the byte, escaped
            appendEscape(out, static_cast<unsigned char>(utf8[i]));
            ++i;
            continue;
        }
        if (!appendCommonEscape(out, cp, quote)) {
            if (printable(cp))
                out.append(utf8.substr(i, len));
            else
                appendEscape(out, cp);
        }
        i += len;
    }
    out += quote;
    return out;
}

std::string pythonBytesRepr(std::string_view raw, std::size_t maxBytes)
{
    const char quote = quoteFor(raw);
    std::string out = "b";
    out += quote;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (i == maxBytes) {
            out += "…";
            break;
        }
        const auto c = static_cast<unsigned char>(raw[i]);
        if (appendCommonEscape(out, c, quote))
            continue;
        if (c < 0x20 || c >= 0x7F)
            appendEscape(out, c);
        else
            out += static_cast<char>(c);
    }
    out += quote;
    return out;
}

std::string pythonComplexRepr(double re, double im)
{
    const std::string imag = noTrailingZero(im) + "j";
    if (re == 0.0 && !std::signbit(re))
        return imag;
    // Python writes "+" before a positive imaginary part and before nan, whatever its sign bit.
    const bool minus = !std::isnan(im) && std::signbit(im);
    return "(" + noTrailingZero(re) + (minus ? "" : "+") + imag + ")";
}

std::string pythonRepr(const Value &v, const ReprLimits &limits)
{
    return ReprWriter(limits).take(v);
}

} // namespace ckpt
