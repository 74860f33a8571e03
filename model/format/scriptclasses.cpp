#include "scriptclasses.h"

namespace ckpt {

namespace {

bool isIdentifierChar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// One quoted name as torch's printer writes a string literal: double or single quotes, backslash
// escapes of the quote, backslash and control characters, and three-digit octal escapes.
// Advances `s` past it; false when it is not such a literal.
bool readQuoted(std::string_view &s, std::string &out)
{
    if (s.empty() || (s.front() != '"' && s.front() != '\''))
        return false;
    const char quote = s.front();
    s.remove_prefix(1);
    out.clear();
    while (!s.empty()) {
        const char c = s.front();
        s.remove_prefix(1);
        if (c == quote)
            return true;
        if (c != '\\') {
            out += c;
            continue;
        }
        if (s.empty())
            return false;
        const char e = s.front();
        s.remove_prefix(1);
        switch (e) {
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        default: {
            if (e < '0' || e > '7' || s.size() < 2 || s[0] < '0' || s[0] > '7' || s[1] < '0' || s[1] > '7')
                return false;
            const int v = (e - '0') * 64 + (s[0] - '0') * 8 + (s[1] - '0');
            if (v > 255)
                return false;
            out += static_cast<char>(v);
            s.remove_prefix(2);
        }
        }
    }
    return false;
}

void skipSpaces(std::string_view &s)
{
    while (!s.empty() && s.front() == ' ')
        s.remove_prefix(1);
}

// `["a", "b", ]` (the trailing comma as torch writes it, or none) and nothing after it.
bool readNameList(std::string_view s, std::vector<std::string> &out, std::size_t &budget)
{
    skipSpaces(s);
    if (s.empty() || s.front() != '[')
        return false;
    s.remove_prefix(1);
    std::string name;
    for (;;) {
        skipSpaces(s);
        if (s.empty())
            return false;
        if (s.front() == ']') {
            s.remove_prefix(1);
            skipSpaces(s);
            return s.empty();
        }
        if (!readQuoted(s, name) || budget == 0)
            return false;
        --budget;
        out.push_back(name);
        skipSpaces(s);
        if (!s.empty() && s.front() == ',')
            s.remove_prefix(1);
        else if (s.empty() || s.front() != ']')
            return false;
    }
}

// The value after `name =` on an indented line, or nullopt-like false when the line is not that.
bool declarationValue(std::string_view line, std::string_view name, std::string_view &value)
{
    skipSpaces(line);
    if (!line.starts_with(name))
        return false;
    line.remove_prefix(name.size());
    skipSpaces(line);
    if (line.empty() || line.front() != '=')
        return false;
    line.remove_prefix(1);
    value = line;
    return true;
}

} // namespace

std::string scriptRecordModule(std::string_view record)
{
    if (!record.starts_with("code/") || !record.ends_with(".py"))
        return {};
    record.remove_prefix(5);
    record.remove_suffix(3);
    if (record.empty())
        return {};
    std::string out(record);
    for (char &c : out)
        if (c == '/')
            c = '.';
    return out;
}

void readScriptClasses(std::string_view source, std::string_view record, ScriptClasses &out)
{
    const std::string module = scriptRecordModule(record);
    if (module.empty())
        return;
    struct Pending {
        std::string name;
        ScriptClassDecl decl;
        bool parameters = false, buffers = false, bad = false;
    };
    Pending cls;
    bool inClass = false;
    auto finish = [&out, &module, &cls, &inClass] {
        if (inClass && cls.parameters && cls.buffers && !cls.bad) {
            if (out.classes.size() >= kMaxScriptClasses) {
                out.truncated = true;
            } else {
                const std::size_t n = cls.decl.parameters.size() + cls.decl.buffers.size();
                if (out.classes.try_emplace(module + "." + cls.name, std::move(cls.decl)).second)
                    out.names += n;
            }
        }
        inClass = false;
        cls = Pending{};
    };
    while (!source.empty()) {
        const std::size_t end = source.find('\n');
        std::string_view line = source.substr(0, end);
        source.remove_prefix(end == std::string_view::npos ? source.size() : end + 1);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (line.empty())
            continue;
        if (line.front() != ' ' && line.front() != '\t') {
            // A top-level line ends the class before it; `class Name(...):` starts one.
            finish();
            if (line.starts_with("class ")) {
                std::string_view rest = line.substr(6);
                std::size_t n = 0;
                while (n < rest.size() && isIdentifierChar(rest[n]))
                    ++n;
                if (n > 0 && n < rest.size() && (rest[n] == '(' || rest[n] == ':')) {
                    cls.name.assign(rest.substr(0, n));
                    inClass = true;
                }
            }
            continue;
        }
        // Declarations sit at the class body's own level, two spaces in as torch prints them; a
        // deeper line is a method's.
        if (!inClass || cls.bad || !line.starts_with("  ") || line.size() < 3 || line[2] == ' ')
            continue;
        std::string_view value;
        for (auto [key, seen, list] : {std::tuple{std::string_view("__parameters__"), &cls.parameters, &cls.decl.parameters},
                                       std::tuple{std::string_view("__buffers__"), &cls.buffers, &cls.decl.buffers}}) {
            if (!declarationValue(line, key, value))
                continue;
            std::size_t budget = kMaxScriptNames > out.names + cls.decl.parameters.size() + cls.decl.buffers.size()
                                     ? kMaxScriptNames - out.names - cls.decl.parameters.size() - cls.decl.buffers.size()
                                     : 0;
            if (*seen || !readNameList(value, *list, budget)) {
                // Declared twice, or not as torch writes it: this class's lists are not known.
                cls.bad = true;
                if (budget == 0)
                    out.truncated = true;
            }
            *seen = true;
        }
    }
    finish();
}

} // namespace ckpt
