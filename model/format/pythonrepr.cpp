#include "pythonrepr.h"

#include "dtypecast.h"
#include "mappedfile.h"
#include "tensorref.h"
#include "textcodec.h"
#include "unicodeprintable.h"
#include "valuetree.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
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

// Python picks single quotes unless the text holds a single quote and no double quote: a rule on the
// whole text. A text shown whole (`shown` units or fewer, at most 4 bytes each) is looked at whole; a
// longer one, which is shown cut ("…"), by its first kQuoteScanBytes: one 64 MiB text that a file
// names 100,000 times (dict values sharing it through the memo) would otherwise be read whole for
// each display. The quote of a cut text can then differ from Python's only when the text is longer
// than kQuoteScanBytes and its first quote character comes after them.
constexpr std::size_t kQuoteScanBytes = 16 * 1024;
char quoteFor(std::string_view s, std::size_t shown, std::size_t bytesPerUnit)
{
    if (shown < s.size() / bytesPerUnit)  // more units than shown: cut
        s = s.substr(0, std::max(kQuoteScanBytes, shown * bytesPerUnit));
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

// torch's repr of a tensor, as torch 1.13's _tensor_str writes it with the default print options
// (precision 4, line width 80), for the tensors it writes on one line: 0-d, and 1-d ones short
// enough (best_acc1 = tensor(76.1300), mean = tensor([0.4850, 0.4560, 0.4060])). Empty when the
// tensor is not one of those, or its values cannot be read: the caller writes a summary instead.
namespace torchrepr {

constexpr std::size_t kLineWidth = 80;
constexpr std::size_t kIndent = 7;  // "tensor("
// The window asks for a repr while painting: a record bigger than this (a view into a large one,
// which might have to be inflated) is summarised rather than read.
constexpr std::uint64_t kMaxStorageBytes = std::uint64_t(1) << 20;

bool isFloating(DType t)
{
    return t == DType::Float32 || t == DType::Float64 || t == DType::Float16 || t == DType::BFloat16;
}

bool isIntegral(DType t)
{
    return t == DType::Int64 || t == DType::Int32 || t == DType::Int16 || t == DType::Int8 || t == DType::UInt8 ||
           t == DType::Bool;
}

template <class T> T load(const std::uint8_t *p)
{
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// One element as Python's float (double) or int, as tensor.tolist() gives it.
struct Element {
    double f = 0;
    std::int64_t i = 0;
};

Element readElement(DType t, const std::uint8_t *p)
{
    switch (t) {
    case DType::Float64: return {load<double>(p), 0};
    case DType::Float32: return {load<float>(p), 0};
    case DType::Float16: return {halfBitsToFloat(load<std::uint16_t>(p)), 0};
    case DType::BFloat16: return {bfloat16BitsToFloat(load<std::uint16_t>(p)), 0};
    case DType::Int64: return {0, load<std::int64_t>(p)};
    case DType::Int32: return {0, load<std::int32_t>(p)};
    case DType::Int16: return {0, load<std::int16_t>(p)};
    case DType::Int8: return {0, load<std::int8_t>(p)};
    case DType::UInt8: return {0, load<std::uint8_t>(p)};
    case DType::Bool: return {0, load<std::uint8_t>(p) != 0};
    default: return {};
    }
}

std::string printf1(const char *format, int width, double v)
{
    // Python writes nan and inf without a sign for NaN, glibc may write "-nan".
    if (std::isnan(v))
        return std::string(static_cast<std::size_t>(std::max(0, width - 3)), ' ') + "nan";
    char buf[400];
    std::snprintf(buf, sizeof buf, format, width, v);
    return buf;
}

// _Formatter: one width and one style (integer-valued, fixed or scientific) for all elements.
class Formatter {
public:
    Formatter(DType dtype, const std::vector<Element> &values) : m_floating(isFloating(dtype)), m_bool(dtype == DType::Bool)
    {
        if (!m_floating) {
            for (const auto &e : values)
                m_width = std::max(m_width, intText(e).size());
            return;
        }
        double lo = 0, hi = 0;
        bool any = false;
        for (const auto &e : values) {
            if (!std::isfinite(e.f) || e.f == 0)
                continue;
            const double a = std::fabs(e.f);
            lo = any ? std::min(lo, a) : a;
            hi = any ? std::max(hi, a) : a;
            any = true;
            if (e.f != std::ceil(e.f))
                m_intMode = false;
        }
        if (!any)
            return;
        m_sci = hi / lo > 1000.0 || hi > 1.0e8 || (!m_intMode && lo < 1.0e-4);
        for (const auto &e : values)
            if (std::isfinite(e.f) && e.f != 0)
                m_width = std::max(m_width, m_sci ? printf1("%.*e", 4, e.f).size()
                                            : m_intMode ? printf1("%.*f", 0, e.f).size() + 1
                                                        : printf1("%.*f", 4, e.f).size());
    }

    std::string format(const Element &e) const
    {
        std::string s;
        if (!m_floating) {
            s = intText(e);
        } else if (m_sci) {
            s = printf1("%*.4e", static_cast<int>(m_width), e.f);
        } else if (m_intMode) {
            s = printf1("%.*f", 0, e.f);
            if (std::isfinite(e.f))
                s += '.';
        } else {
            s = printf1("%.*f", 4, e.f);
        }
        if (s.size() < m_width)
            s.insert(0, m_width - s.size(), ' ');
        return s;
    }

    std::size_t width() const { return m_width; }

private:
    std::string intText(const Element &e) const { return m_bool ? (e.i ? "True" : "False") : std::to_string(e.i); }

    bool m_floating;
    bool m_bool;
    bool m_intMode = true;
    bool m_sci = false;
    std::size_t m_width = 1;
};

std::string dtypeSuffix(DType t)
{
    return "dtype=torch." + std::string(dtypeName(t));
}

// The first `n` elements of a small tensor, `stride` apart in its storage, for a one-line repr;
// none when the storage is missing, larger than a repr reads, cut short or unreadable.
std::optional<std::vector<Element>> smallValues(const TensorRef &t, std::int64_t n, std::int64_t stride)
{
    if (!t.storage || !t.storage->resolved || t.storage->byteSize > kMaxStorageBytes)
        return std::nullopt;
    const std::size_t size = dtypeSize(t.dtype);
    std::vector<Element> values;
    try {
        const auto bytes = t.storage->hold();
        for (std::int64_t k = 0; k < n; ++k) {
            const auto at = static_cast<std::uint64_t>(t.storageOffset + k * stride) * size;
            if (at + size > bytes.size())
                return std::nullopt;
            values.push_back(readElement(t.dtype, bytes.data() + at));
        }
        if (t.storage->mapping && t.storage->mapping->truncated())
            return std::nullopt;
    } catch (const std::exception &) {
        return std::nullopt;
    }
    return values;
}

std::string repr(const TensorRef &t)
{
    const bool oneD = t.shape.size() == 1;
    // A numpy array prints as numpy does (array([...], dtype=float32)), by other rules: summarised.
    if (t.isParameter || t.rebuild == "numpy.ndarray" || t.layout != TensorRef::Layout::Strided || t.quantization ||
        !t.problem.empty() ||
        (!isIntegral(t.dtype) && !isFloating(t.dtype)) || t.shape.size() > 1 || t.strides.size() != t.shape.size())
        return {};
    const std::int64_t n = t.numel();
    std::vector<std::string> suffixes;
    const std::string device = t.device();
    if (device != "cpu")
        suffixes.push_back("device='" + device + "'");
    std::string body;
    if (n == 0) {
        // An empty tensor shows its dtype whenever it is not float32: nothing else tells it.
        if (t.dtype != DType::Float32)
            suffixes.push_back(dtypeSuffix(t.dtype));
        body = "[]";
    } else {
        if (n > 64)
            return {};
        const auto read = smallValues(t, n, oneD ? t.strides[0] : 0);
        if (!read)
            return {};
        const std::vector<Element> &values = *read;
        const Formatter formatter(t.dtype, values);
        if (!oneD) {
            body = formatter.format(values[0]);
        } else {
            // _vector_str: as many elements to a line as fit; a tensor that needs two lines is not written here.
            const std::size_t perLine = std::max<std::size_t>(1, (kLineWidth - kIndent) / (formatter.width() + 2));
            if (values.size() > perLine)
                return {};
            body = "[";
            for (std::size_t k = 0; k < values.size(); ++k)
                body += (k ? ", " : "") + formatter.format(values[k]);
            body += "]";
        }
        if (t.dtype != DType::Float32 && t.dtype != DType::Int64 && t.dtype != DType::Bool)
            suffixes.push_back(dtypeSuffix(t.dtype));
    }
    if (t.requiresGrad)
        suffixes.push_back("requires_grad=True");
    // _add_suffixes: a suffix that would pass the line width goes on a line of its own, which a
    // one-line repr does not do. torch counts the line as its length + 2 (len(s) - s.rfind('\n') + 1
    // with no line break: rfind gives -1), so a suffix ending at column 77 already wraps.
    std::string out = "tensor(" + body;
    std::size_t line = out.size() + 2;
    for (const auto &s : suffixes) {
        if (line + s.size() + 2 > kLineWidth)
            return {};
        out += ", " + s;
        line += s.size() + 2;
    }
    return out + ")";
}

// numpy's repr of an array (np.array2string with the default print options: line width 75,
// floats in 'maxprec' mode with precision 8), for the arrays it writes on one line: 1-d integer,
// bool and floating arrays short enough, floats only where numpy writes them positionally (none
// below 1e-4 or from 1e8 on, nor spanning more than a factor 1000, all finite). Empty otherwise:
// the caller writes a summary that says ndarray.
std::string numpyRepr(const TensorRef &t)
{
    constexpr std::size_t kNumpyLineWidth = 75;
    // An empty array of any rank and dtype: numpy writes its shape (when not 1-d) and its dtype.
    if (t.layout == TensorRef::Layout::Strided && !t.quantization && t.problem.empty() && !t.shape.empty() &&
        std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end()) {
        std::string shape;
        if (t.shape.size() > 1) {
            shape = ", shape=(";
            for (std::size_t i = 0; i < t.shape.size(); ++i)
                shape += (i ? ", " : "") + std::to_string(t.shape[i]);
            shape += ")";
        }
        return "array([]" + shape + ", dtype=" + std::string(dtypeName(t.dtype)) + ")";
    }
    if (t.shape.size() != 1 || t.strides.size() != 1 || t.layout != TensorRef::Layout::Strided || t.quantization ||
        !t.problem.empty() || !(isIntegral(t.dtype) || t.dtype == DType::Float32 || t.dtype == DType::Float64 ||
                                t.dtype == DType::Float16))
        return {};
    const std::int64_t n = t.shape[0];
    // numpy writes no dtype for its defaults (int64 here, float64, bool).
    const bool plainDtype = t.dtype == DType::Int64 || t.dtype == DType::Float64 || t.dtype == DType::Bool;
    const std::string suffix = plainDtype ? std::string() : ", dtype=" + std::string(dtypeName(t.dtype));
    if (n > 32)
        return {};
    const auto read = smallValues(t, n, t.strides[0]);
    if (!read)
        return {};
    const std::vector<Element> &values = *read;
    std::vector<std::string> texts;
    if (t.dtype == DType::Bool) {
        for (const auto &e : values)
            texts.push_back(e.i ? " True" : "False");  // numpy pads True to False's width in an array
    } else if (isIntegral(t.dtype)) {
        std::size_t width = 0;
        for (const auto &e : values)
            width = std::max(width, std::to_string(e.i).size());
        for (const auto &e : values) {
            std::string x = std::to_string(e.i);
            texts.push_back(std::string(width - x.size(), ' ') + x);
        }
    } else {
        double lo = std::numeric_limits<double>::infinity(), hi = 0;
        for (const auto &e : values) {
            if (!std::isfinite(e.f))
                return {};
            if (e.f != 0) {
                lo = std::min(lo, std::fabs(e.f));
                hi = std::max(hi, std::fabs(e.f));
            }
        }
        if (hi >= 1e8 || (hi > 0 && (lo < 1e-4 || hi / lo > 1e3)))
            return {};  // numpy writes these in scientific notation
        // Each value's fewest digits that read back in its precision, at most 8 after the point.
        const int bits = t.dtype == DType::Float32 ? 32 : t.dtype == DType::Float16 ? 16 : 64;
        std::vector<std::pair<std::string, std::string>> parts;  // integer part with sign, digits after the point
        std::size_t left = 0, right = 0;
        for (const auto &e : values) {
            std::string x = formatFloat(e.f, bits);
            if (x.find_first_of("eE") != std::string::npos)
                return {};
            auto dot = x.find('.');
            std::string whole = dot == std::string::npos ? x : x.substr(0, dot);
            std::string frac = dot == std::string::npos ? std::string() : x.substr(dot + 1);
            if (frac.size() > 8) {
                x = printf1("%.*f", 8, e.f);
                dot = x.find('.');
                whole = x.substr(0, dot);
                frac = x.substr(dot + 1);
            }
            while (!frac.empty() && frac.back() == '0')
                frac.pop_back();
            left = std::max(left, whole.size());
            right = std::max(right, frac.size());
            parts.emplace_back(std::move(whole), std::move(frac));
        }
        for (const auto &[whole, frac] : parts)
            texts.push_back(std::string(left - whole.size(), ' ') + whole + "." + frac +
                            std::string(right - frac.size(), ' '));
    }
    std::string out = "array([";
    for (std::size_t k = 0; k < texts.size(); ++k)
        out += (k ? ", " : "") + texts[k];
    out += "]" + suffix + ")";
    // numpy wraps a line that would pass its width: such an array is summarised here instead.
    if (out.size() > kNumpyLineWidth)
        return {};
    return out;
}

} // namespace torchrepr

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
        case K::String: writeString(v, depth); return;
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

    void writeString(const Value &v, std::uint32_t depth)
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
            std::string text = datetimeRepr(cls, v.text());
            if (!v.state() || v.state()->isNone()) {
                m_out += text;
                return;
            }
            text.pop_back();
            m_out += text + ", tzinfo=";
            writeTzinfo(*v.state(), depth + 1);
            m_out += ")";
        } else if (cls.empty() || cls == "torch.torch_version.TorchVersion") {
            m_out += pythonStringRepr(v.text(), room());  // a str subclass writes as str
        } else {
            append(shortName(cls));  // PosixPath('/runs')
            m_out += "(" + pythonStringRepr(v.text(), room()) + ")";
        }
    }

    // A datetime's tzinfo as Python writes it: datetime.timezone.utc, zoneinfo.ZoneInfo(key='...'),
    // any other as its call (datetime.timezone(datetime.timedelta(seconds=3600)), pytz._p(...)).
    void writeTzinfo(const Value &tz, std::uint32_t depth)
    {
        const std::string cls = tz.kind() == Value::Kind::Object ? classText(tz, false) : std::string();
        const auto &args = tz.args() ? tz.args()->items() : std::vector<ValuePtr>{};
        if (cls == "datetime.timezone" && args.size() == 1 && args[0] && className(*args[0]) == "datetime.timedelta" &&
            args[0]->args() &&
            std::all_of(args[0]->args()->items().begin(), args[0]->args()->items().end(),
                        [](const ValuePtr &x) { return x && x->isInt() && x->asInt() == 0; })) {
            m_out += "datetime.timezone.utc";  // timezone(timedelta(0)) is the utc singleton
            return;
        }
        if (cls == "zoneinfo.ZoneInfo._unpickle" && args.size() == 2 && args[0] && args[0]->isString()) {
            m_out += "zoneinfo.ZoneInfo(key=" + pythonStringRepr(args[0]->text(), room()) + ")";
            return;
        }
        write(tz, depth);
    }

    // datetime.datetime(2024, 5, 6, 7, 8, 9, 123456) from the ISO text the reader keeps: seconds
    // and microseconds are left out when zero, as Python leaves them out; a UTC offset after the
    // clock is not a field (the tzinfo is written from the value's state).
    static std::string datetimeRepr(const std::string &cls, std::string_view iso)
    {
        const std::size_t clockAt = cls == "datetime.datetime" ? iso.find('T') : cls == "datetime.time" ? 0 : iso.npos;
        if (clockAt != iso.npos)
            iso = iso.substr(0, iso.find_first_of("+-", clockAt));
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
        if (t->rebuild == "numpy.ndarray") {
            // torch.load gives back a numpy array, not a tensor: written as numpy does, or said to be one.
            if (std::string text = torchrepr::numpyRepr(*t); !text.empty())
                m_out += text;
            else
                m_out += "<ndarray " + std::string(dtypeName(t->dtype)) + " " + shapeText(t->shape) + ">";
            return;
        }
        if (std::string text = torchrepr::repr(*t); !text.empty()) {
            m_out += text;
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
        if (isPlainDictSubclass(v)) {
            // dict.__repr__, which a dict subclass without its own repr inherits.
            m_out += "{";
            writeEntries(v, false, depth);
            m_out += "}";
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

bool isPlainDictSubclass(const Value &v)
{
    const ValuePtr &state = v.state();
    return v.kind() == Value::Kind::Object && v.builtByNew() && (!v.args() || v.args()->items().empty()) &&
           v.items().empty() && !v.entries().empty() &&
           (!state || state->isNone() || (state->isDict() && state->entries().empty()));
}

std::string pythonStringRepr(std::string_view utf8, std::size_t maxChars)
{
    const char quote = quoteFor(utf8, maxChars, 4);
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
    const char quote = quoteFor(raw, maxBytes, 1);
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
