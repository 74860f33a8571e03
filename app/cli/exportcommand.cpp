#include "exportcommand.h"

#include "atomicwrite.h"
#include "computeloader.h"
#include "document.h"
#include "error.h"
#include "valuetree.h"

#include <iostream>
#include <sstream>

namespace ckpt::cli {

int runExport(const ExportOptions &options, std::ostream &out, std::ostream &err)
{
    try {
        const bool npy = options.output.ends_with(".npy");
        if (!npy && !options.output.ends_with(".csv"))
            throw FormatError(options.output + ": the output must end in .npy or .csv");
        const Document doc = readDocument(options.file);
        ValuePtr value;
        for (const auto &t : doc.hasStateDict ? doc.stateDict : doc.tensors)
            if (t.name == options.key)
                value = t.value;
        if (!value) {
            std::vector<std::string> path;
            std::stringstream ss(options.key);
            for (std::string part; std::getline(ss, part, '/');)
                path.push_back(part);
            value = findPath(doc.root, path);
        }
        if (!value || !value->isTensor())
            throw FormatError(doc.path + ": no tensor named '" + options.key + "'");
        const std::string bytes = ComputeLoader::api().exportBytes(
            *value->tensorRef(), npy ? ComputeApi::ExportFormat::Npy : ComputeApi::ExportFormat::Csv);
        writeFileAtomically(options.output, {reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()},
                            WriteOptions().allowOverwrite(options.force).protect(options.file));
        out << options.output << ": " << bytes.size() << " bytes\n";
        return 0;
    } catch (const FormatError &e) {
        err << "ckpt: " << e.what() << '\n';
    } catch (const std::exception &e) {
        err << "ckpt: " << options.file << ": " << e.what() << '\n';
    }
    return 1;
}

} // namespace ckpt::cli
