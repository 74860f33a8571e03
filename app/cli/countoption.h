#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

namespace ckpt::cli {

// A check for a number option: text that is a whole `T` which `accept` takes, else refused with
// `rule`, a sentence that says what is allowed. CLI11's own ranges print their bounds as doubles
// ("not in range 0.000000 to 1.797693e+308"), which says nothing to a user.
template <class T, class Accept> CLI::Validator numberOption(Accept accept, std::string rule)
{
    return CLI::Validator(
        [accept, rule = std::move(rule)](std::string &text) -> std::string {
            T v{};
            const char *end = text.data() + text.size();
            const auto [stop, ec] = std::from_chars(text.data() + (text.starts_with('+') ? 1 : 0), end, v);
            if (ec == std::errc() && stop == end && accept(v))
                return {};
            return rule + " (not " + text + ")";
        },
        std::string());
}

// A count option (--limit, --histogram, --top, --repeat): a whole number from `min` to `max`.
inline CLI::Validator countOption(std::int64_t min, std::int64_t max, std::string rule)
{
    return numberOption<std::int64_t>([min, max](std::int64_t v) { return v >= min && v <= max; }, std::move(rule));
}

// A tolerance (diff's --atol, --rtol): a number, 0 or more, as torch.isclose requires ("atol must
// be greater than or equal to zero"); NaN, which would make every comparison pass, is refused.
inline CLI::Validator toleranceOption(std::string rule)
{
    return numberOption<double>([](double v) { return v >= 0; }, std::move(rule));  // false for NaN
}

} // namespace ckpt::cli
