#include "clitext.h"

#include "textcodec.h"
#include "unicodetables.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>

namespace ckpt::cli {

namespace {

using json = nlohmann::ordered_json;

template <std::size_t N> bool inRanges(const unicode::Range (&table)[N], std::uint32_t cp)
{
    const auto *it = std::upper_bound(std::begin(table), std::end(table), cp,
                                      [](std::uint32_t v, const unicode::Range &r) { return v < r.first; });
    return it != std::begin(table) && cp <= std::prev(it)->last;
}

std::size_t columnsOf(std::uint32_t cp)
{
    if (cp < 0x300)  // ASCII and Latin-1: one column each (control bytes are escaped before)
        return 1;
    if (inRanges(unicode::kZeroWidth, cp))
        return 0;
    return inRanges(unicode::kWide, cp) ? 2 : 1;
}

// Appends the case folding of `cp`; false when it folds to itself.
bool appendFolded(std::string &out, std::uint32_t cp)
{
    if (cp < 0x80) {
        if (cp < 'A' || cp > 'Z')
            return false;
        out += static_cast<char>(cp + ('a' - 'A'));
        return true;
    }
    const auto many = std::lower_bound(std::begin(unicode::kFoldMany), std::end(unicode::kFoldMany), cp,
                                       [](const unicode::FoldMany &m, std::uint32_t v) { return m.from < v; });
    if (many != std::end(unicode::kFoldMany) && many->from == cp) {
        for (std::uint32_t to : many->to)
            if (to != 0)
                appendUtf8(out, to);
        return true;
    }
    const auto *run = std::upper_bound(std::begin(unicode::kFoldRuns), std::end(unicode::kFoldRuns), cp,
                                       [](std::uint32_t v, const unicode::FoldRun &r) { return v < r.first; });
    if (run == std::begin(unicode::kFoldRuns))
        return false;
    --run;
    if (cp > run->last || (cp - run->first) % run->step != 0)
        return false;
    appendUtf8(out, static_cast<std::uint32_t>(static_cast<std::int64_t>(cp) + run->delta));
    return true;
}

void appendValue(std::string &out, const json &v, std::size_t limit)
{
    if (out.size() > limit)
        return;
    switch (v.type()) {
    case json::value_t::object:
        if (v.size() == 1 && v.contains("__float__") && v["__float__"].is_string()) {
            out += v["__float__"].get<std::string>();
            return;
        }
        out += '{';
        for (auto it = v.begin(); it != v.end() && out.size() <= limit; ++it) {
            if (it != v.begin())
                out += ',';
            out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace);
            out += ':';
            appendValue(out, it.value(), limit);
        }
        out += '}';
        return;
    case json::value_t::array:
        out += '[';
        for (std::size_t i = 0; i < v.size() && out.size() <= limit; ++i) {
            if (i)
                out += ',';
            appendValue(out, v[i], limit);
        }
        out += ']';
        return;
    case json::value_t::number_float:
        if (!std::isfinite(v.get<double>())) {
            out += floatText(v.get<double>());
            return;
        }
        break;
    default:
        break;
    }
    out += v.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

std::string floatText(double v, int digits)
{
    if (std::isnan(v))
        return "nan";  // whatever its sign bit: torch prints nan
    if (std::isinf(v))
        return v > 0 ? "inf" : "-inf";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    return buf;
}

std::string numberText(const json &v, int digits)
{
    if (v.is_null())
        return "nan";
    if (v.is_string())
        return displayText(v.get<std::string>());  // "inf", "-inf"
    if (v.is_number_float())
        return floatText(v.get<double>(), digits);
    return v.dump(-1, ' ', false, json::error_handler_t::replace);  // integers exactly
}

std::string valueText(const json &v, std::size_t limit)
{
    std::string out;
    appendValue(out, v, limit);
    return out;
}

std::size_t displayWidth(std::string_view text)
{
    std::size_t width = 0;
    for (std::size_t i = 0; i < text.size();) {
        std::uint32_t cp = 0;
        const std::size_t len = decodeUtf8(text, i, cp);
        width += len == 0 ? 1 : columnsOf(cp);
        i += len == 0 ? 1 : len;
    }
    return width;
}

std::string padRight(std::string_view text, std::size_t width)
{
    const std::size_t w = displayWidth(text);
    std::string out(text);
    if (w < width)
        out.append(width - w, ' ');
    return out;
}

std::string padLeft(std::string_view text, std::size_t width)
{
    const std::size_t w = displayWidth(text);
    std::string out(w < width ? width - w : 0, ' ');
    out += text;
    return out;
}

std::string tableText(const std::vector<std::vector<std::string>> &rows, std::string_view indent, std::size_t maxColumn)
{
    std::vector<std::size_t> width;
    for (const auto &row : rows)
        for (std::size_t i = 0; i + 1 < row.size(); ++i) {  // the last cell of a row is not padded
            if (width.size() <= i)
                width.resize(i + 1, 0);
            width[i] = std::max(width[i], std::min(displayWidth(row[i]), maxColumn));
        }
    std::string out;
    for (const auto &row : rows) {
        out += indent;
        for (std::size_t i = 0; i < row.size(); ++i)
            out += i + 1 < row.size() ? padRight(row[i], width[i]) + "  " : row[i];
        out += '\n';
    }
    return out;
}

std::string foldCase(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        std::uint32_t cp = 0;
        const std::size_t len = decodeUtf8(text, i, cp);
        if (len == 0) {
            out += text[i++];  // not UTF-8: the byte as it is
            continue;
        }
        if (!appendFolded(out, cp))
            out.append(text.substr(i, len));
        i += len;
    }
    return out;
}

bool containsIgnoringCase(std::string_view text, std::string_view needle)
{
    return foldCase(text).find(foldCase(needle)) != std::string::npos;
}

} // namespace ckpt::cli
