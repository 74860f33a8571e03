#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

namespace ckpt::cli {

// A check for a count option (--limit, --histogram, --top, --repeat): a whole number from `min` to
// `max`, else refused with `rule`, a sentence that says what is allowed. CLI11's own ranges print
// their bounds as doubles ("not in range 0.000000 to 1.797693e+308"), which says nothing to a user.
inline CLI::Validator countOption(std::int64_t min, std::int64_t max, std::string rule)
{
    return CLI::Validator(
        [min, max, rule = std::move(rule)](std::string &text) -> std::string {
            std::int64_t v = 0;
            const char *end = text.data() + text.size();
            const auto [stop, ec] = std::from_chars(text.data() + (text.starts_with('+') ? 1 : 0), end, v);
            if (ec == std::errc() && stop == end && v >= min && v <= max)
                return {};
            return rule + " (not " + text + ")";
        },
        std::string());
}

// A check for a tolerance (diff's --atol, --rtol): a number, 0 or more, as torch.isclose requires
// ("atol must be greater than or equal to zero"); NaN, which would make every comparison pass, and
// negative values are refused with `rule`.
inline CLI::Validator toleranceOption(std::string rule)
{
    return CLI::Validator(
        [rule = std::move(rule)](std::string &text) -> std::string {
            double v = 0;
            const char *end = text.data() + text.size();
            const auto [stop, ec] = std::from_chars(text.data() + (text.starts_with('+') ? 1 : 0), end, v);
            if (ec == std::errc() && stop == end && v >= 0)  // false for NaN
                return {};
            return rule + " (not " + text + ")";
        },
        std::string());
}

} // namespace ckpt::cli
