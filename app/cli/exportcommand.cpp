#include "exportcommand.h"

#include "atomicwrite.h"
#include "clicommon.h"
#include "convert.h"
#include "computeloader.h"
#include "document.h"
#include "error.h"

#include <iostream>

namespace ckpt::cli {

int runExport(const ExportOptions &options, std::ostream &out, std::ostream &err)
{
    try {
        const bool npy = options.output.ends_with(".npy");
        if (!npy && !options.output.ends_with(".csv"))
            throw FormatError(options.output + ": the output must end in .npy or .csv");
        const Document &doc = keepUntilExit(readInput(options.file, options.weights));
        const ValuePtr value = findEntry(doc, options.key);
        if (!value || !value->isTensor())
            throw FormatError(doc.path + ": no tensor named '" + options.key + "'");
        const std::string bytes = ComputeLoader::api().exportBytes(
            *value->tensorRef(), npy ? ComputeApi::ExportFormat::Npy : ComputeApi::ExportFormat::Csv);
        writeFileAtomically(options.output, {reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()},
                            protectingInputs(doc, options.force));
        out << options.output << ": " << bytes.size() << " bytes\n";
        return 0;
    } catch (const std::exception &e) {
        return reportError(err, options.file, e);
    }
}

} // namespace ckpt::cli
