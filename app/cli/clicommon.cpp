#include "clicommon.h"

#include "error.h"
#include "valuetree.h"

#include <ostream>
#include <sstream>

namespace ckpt::cli {

int reportError(std::ostream &err, const std::string &file, const std::exception &e)
{
    const std::string what = e.what();
    err << "ckpt: " << (dynamic_cast<const FormatError *>(&e) ? what : file + ": " + what) << '\n';
    return 1;
}

ValuePtr findEntry(const Document &doc, const std::string &key)
{
    for (const auto &t : doc.hasStateDict ? doc.stateDict : doc.tensors)
        if (t.name == key)
            return t.value;
    std::vector<std::string> path;
    std::stringstream ss(key);
    for (std::string part; std::getline(ss, part, '/');)
        path.push_back(part);
    return findPath(doc.root, path);
}

} // namespace ckpt::cli
