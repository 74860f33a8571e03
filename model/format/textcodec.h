#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt {

// Small text conversions the pickle formats need. Pure functions, no allocation beyond the result.

bool isValidUtf8(std::string_view s);
// The UTF-8 sequence at byte `i` of `s`: its length, with its code point in `cp`; 0 when the bytes
// there are not UTF-8 (a surrogate's three bytes are, as Python's pickles may hold them).
std::size_t decodeUtf8(std::string_view s, std::size_t i, std::uint32_t &cp);
// Encodes a code point as UTF-8 onto `out`.
void appendUtf8(std::string &out, std::uint32_t cp);
// UTF-8 to latin-1 bytes; false when a character is above U+00FF or the text is not UTF-8.
bool utf8ToLatin1(std::string_view utf8, std::string &out);
// Latin-1 bytes to UTF-8.
std::string latin1ToUtf8(std::string_view bytes);
// Protocol 0 STRING argument: a quoted Python literal with backslash escapes.
bool decodePythonStringLiteral(std::string_view quoted, std::string &out);
// Protocol 0 UNICODE argument (raw-unicode-escape) to UTF-8, as Python's codec decodes it: false,
// with `error` set, where Python raises (a truncated \uXXXX escape, a \U escape past U+10FFFF).
bool decodeRawUnicodeEscape(std::string_view raw, std::string &out, std::string &error);
// Little-endian two's complement bytes to decimal text.
std::string twosComplementToDecimal(std::span<const std::uint8_t> bytes);
// Lower-case hex of bytes, at most `maxBytes` of them, with "…" when cut.
std::string hexPreview(std::string_view bytes, std::size_t maxBytes);
// Text from a file made safe to show: control characters and bytes that are not UTF-8 become
// \xNN, so a name cannot send escape sequences to a terminal or break a message's encoding.
// `keepLines`: newlines and tabs stay (a whole report that is already laid out).
std::string displayText(std::string_view text, bool keepLines = false);
// The items with `separator` between them ("a, b, c").
std::string joinText(const std::vector<std::string> &items, std::string_view separator = ", ");

} // namespace ckpt
