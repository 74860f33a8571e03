#include "textcodec.h"

#include <algorithm>
#include <vector>

namespace ckpt {

std::size_t decodeUtf8(std::string_view s, std::size_t i, std::uint32_t &cp)
{
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    std::size_t len = 0;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (i + len > s.size())
        return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (cc & 0x3Fu);
    }
    // Overlong forms and values past U+10FFFF are invalid; surrogates are kept, as Python's
    // unpickler accepts them with 'surrogatepass'.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

bool isValidUtf8(std::string_view s)
{
    for (std::size_t i = 0; i < s.size();) {
        std::uint32_t cp = 0;
        const std::size_t len = decodeUtf8(s, i, cp);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

void appendUtf8(std::string &out, std::uint32_t cp)
{
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

bool utf8ToLatin1(std::string_view utf8, std::string &out)
{
    out.clear();
    out.reserve(utf8.size());
    for (std::size_t i = 0; i < utf8.size();) {
        const auto c = static_cast<unsigned char>(utf8[i]);
        if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < utf8.size()) {
            const std::uint32_t cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3Fu);
            if (cp > 0xFF)
                return false;
            out += static_cast<char>(cp);
            i += 2;
        } else {
            return false;
        }
    }
    return true;
}

std::string latin1ToUtf8(std::string_view bytes)
{
    std::string out;
    out.reserve(bytes.size());
    for (char ch : bytes)
        appendUtf8(out, static_cast<unsigned char>(ch));
    return out;
}

namespace {
int hexValue(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
} // namespace

bool decodePythonStringLiteral(std::string_view q, std::string &out)
{
    out.clear();
    if (q.size() < 2 || (q.front() != '\'' && q.front() != '"') || q.back() != q.front())
        return false;
    q = q.substr(1, q.size() - 2);
    for (std::size_t i = 0; i < q.size(); ++i) {
        const char c = q[i];
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++i >= q.size())
            return false;
        const char e = q[i];
        switch (e) {
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;
        case 'x': {
            if (i + 2 >= q.size())
                return false;
            const int h = hexValue(q[i + 1]);
            const int l = hexValue(q[i + 2]);
            if (h < 0 || l < 0)
                return false;
            out += static_cast<char>(h * 16 + l);
            i += 2;
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                int v = 0;
                std::size_t k = 0;
                while (k < 3 && i + k < q.size() && q[i + k] >= '0' && q[i + k] <= '7') {
                    v = v * 8 + (q[i + k] - '0');
                    ++k;
                }
                out += static_cast<char>(v & 0xFF);
                i += k - 1;
            } else {
                out += '\\';
                out += e;
            }
        }
    }
    return true;
}

bool decodeRawUnicodeEscape(std::string_view raw, std::string &out, std::string &error)
{
    out.clear();
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c != '\\' || i + 1 == raw.size()) {
            appendUtf8(out, static_cast<unsigned char>(c));
            continue;
        }
        // A backslash takes the character after it along, as in Python: two backslashes then
        // "u0041" stay as written.
        const char e = raw[++i];
        if (e != 'u' && e != 'U') {
            out += '\\';
            appendUtf8(out, static_cast<unsigned char>(e));
            continue;
        }
        const std::size_t digits = e == 'u' ? 4 : 8;
        std::uint32_t cp = 0;
        for (std::size_t k = 0; k < digits; ++k) {
            const int h = i + 1 + k < raw.size() ? hexValue(raw[i + 1 + k]) : -1;
            if (h < 0) {
                error = e == 'u' ? "truncated \\uXXXX escape" : "truncated \\UXXXXXXXX escape";
                error += " at character " + std::to_string(i - 1);
                return false;
            }
            cp = cp * 16 + static_cast<std::uint32_t>(h);
        }
        if (cp > 0x10FFFF) {
            error = "\\U" + std::string(raw.substr(i + 1, 8)) + " is past U+10FFFF";
            return false;
        }
        appendUtf8(out, cp);
        i += digits;
    }
    return true;
}

std::string twosComplementToDecimal(std::span<const std::uint8_t> bytes)
{
    if (bytes.empty())
        return "0";
    const bool negative = (bytes.back() & 0x80) != 0;
    std::vector<std::uint8_t> mag(bytes.begin(), bytes.end());
    if (negative) {
        // magnitude = ~x + 1
        for (auto &b : mag)
            b = static_cast<std::uint8_t>(~b);
        for (auto &b : mag)
            if (++b != 0)
                break;
    }
    // Little-endian base-2^32 limbs, then repeated division by 10^9.
    std::vector<std::uint32_t> limbs((mag.size() + 3) / 4, 0);
    for (std::size_t i = 0; i < mag.size(); ++i)
        limbs[i / 4] |= static_cast<std::uint32_t>(mag[i]) << (8 * (i % 4));
    while (!limbs.empty() && limbs.back() == 0)
        limbs.pop_back();
    std::vector<std::uint32_t> chunks;
    while (!limbs.empty()) {
        std::uint64_t rem = 0;
        for (std::size_t i = limbs.size(); i-- > 0;) {
            const std::uint64_t cur = (rem << 32) | limbs[i];
            limbs[i] = static_cast<std::uint32_t>(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunks.push_back(static_cast<std::uint32_t>(rem));
        while (!limbs.empty() && limbs.back() == 0)
            limbs.pop_back();
    }
    std::string s = negative ? "-" : "";
    if (chunks.empty())
        return "0";
    s += std::to_string(chunks.back());
    for (std::size_t i = chunks.size() - 1; i-- > 0;) {
        std::string part = std::to_string(chunks[i]);
        s += std::string(9 - part.size(), '0') + part;
    }
    return s;
}

std::string displayText(std::string_view text, bool keepLines)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    const auto escape = [&out](std::uint8_t b) {
        out += "\\x";
        out += kDigits[b >> 4];
        out += kDigits[b & 15];
    };
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<std::uint8_t>(text[i]);
        const std::size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        const bool control = (b < 0x20 && !(keepLines && (b == '\n' || b == '\t'))) || b == 0x7f || (b == 0xc2 && i + 1 < text.size() &&
                                                       static_cast<std::uint8_t>(text[i + 1]) < 0xa0);
        if (len == 0 || i + len > text.size() || control || !isValidUtf8(text.substr(i, len))) {
            escape(b);
            ++i;
        } else {
            out.append(text.substr(i, len));
            i += len;
        }
    }
    return out;
}

std::string hexPreview(std::string_view bytes, std::size_t maxBytes)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    const auto n = std::min(bytes.size(), maxBytes);
    out.reserve(n * 2 + 3);
    for (std::size_t i = 0; i < n; ++i) {
        const auto b = static_cast<unsigned char>(bytes[i]);
        out += kDigits[b >> 4];
        out += kDigits[b & 15];
    }
    if (bytes.size() > n)
        out += "…";
    return out;
}

std::string joinText(const std::vector<std::string> &items, std::string_view separator)
{
    std::string s;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i)
            s += separator;
        s += items[i];
    }
    return s;
}

} // namespace ckpt
