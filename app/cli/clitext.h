#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

// Text for a terminal, shared by every command's text (not --json) output: numbers as torch prints
// them, values, table columns measured in terminal columns, and case-insensitive matching.
namespace ckpt::cli {

// A float with `digits` significant digits (as printf's %g), and NaN and the infinities as torch
// prints them: nan, inf, -inf.
std::string floatText(double v, int digits = 6);

// A number as the JSON documents of `tensors`, `show` and `diff` carry it (NaN as null, the
// infinities as "inf" and "-inf", integers exactly) in the words of floatText.
std::string numberText(const nlohmann::ordered_json &v, int digits = 6);

// A value of a JSON document on one line, as JSON writes it compactly, except for the floats JSON
// cannot hold: {"__float__": "nan"} (and a NaN or infinity in the tree) is written nan, inf, -inf.
// Stops soon after `limit` bytes.
std::string valueText(const nlohmann::ordered_json &v, std::size_t limit = std::numeric_limits<std::size_t>::max());

// "1 tensor", "3 tensors": a count and its noun, the noun plural (an s added) unless the count is 1.
inline std::string countText(std::size_t n, std::string_view noun)
{
    return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

// Columns `text` (UTF-8) takes on a terminal: two for East Asian wide and fullwidth characters,
// none for combining marks and format characters, one for the rest (and for a byte that is not
// UTF-8). Text from a file goes through displayText first: control bytes have been escaped.
std::size_t displayWidth(std::string_view text);

// `text` followed by spaces up to `width` columns (nothing added when it is as wide already).
std::string padRight(std::string_view text, std::size_t width);
// Spaces up to `width` columns, then `text`.
std::string padLeft(std::string_view text, std::size_t width);

// Rows of cells as lines of aligned columns: each column as wide as its widest cell (at most
// `maxColumn` columns of the terminal: a longer cell pushes its row out instead), two spaces
// between columns, the last cell of a row not padded; each line starts with `indent`.
std::string tableText(const std::vector<std::vector<std::string>> &rows, std::string_view indent = {},
                      std::size_t maxColumn = 60);

// `text` (UTF-8) case-folded: Unicode full case folding, as Python's str.casefold ("Über" and
// "ÜBER" give "über", "Straße" gives "strasse", Σ, σ and ς give σ). Bytes that are not UTF-8 stay.
std::string foldCase(std::string_view text);

// Whether `text` contains `needle`, case ignored (both case-folded).
bool containsIgnoringCase(std::string_view text, std::string_view needle);

} // namespace ckpt::cli
