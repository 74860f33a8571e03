#pragma once

#include <stdexcept>
#include <string>

namespace ckpt {

// A reading or writing failure the user can act on: says what is wrong and where
// (record, pickle offset, expected vs found). Readers add the file name at the top.
class FormatError : public std::runtime_error {
public:
    explicit FormatError(const std::string &what) : std::runtime_error(what) {}
};

} // namespace ckpt
