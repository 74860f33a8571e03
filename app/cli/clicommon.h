#pragma once

#include "document.h"

#include <exception>
#include <iosfwd>
#include <string>

namespace ckpt::cli {

// Prints the one-line error every command gives ("ckpt: FILE: reason"; a FormatError already
// names its file) and returns the exit status 1.
int reportError(std::ostream &err, const std::string &file, const std::exception &e);

// One entry of a document by state-dict name (or a tensor's path when there is no state dict),
// else by tree path ("model_state_dict/fc1.weight"); nullptr when there is none.
ValuePtr findEntry(const Document &doc, const std::string &key);

} // namespace ckpt::cli
