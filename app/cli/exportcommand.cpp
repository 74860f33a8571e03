#include "exportcommand.h"

#include "atomicwrite.h"
#include "clicommon.h"
#include "convert.h"
#include "computeloader.h"
#include "document.h"
#include "dtype.h"
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
        // What the file holds that is not the tensor as stored, said rather than left to be found.
        const TensorRef &ref = *value->tensorRef();
        if (ref.quantization)
            out << "note: a quantized tensor: its values written dequantized (as tensor.dequantize() gives them)\n";
        else if (npy && (ref.dtype == DType::BFloat16 || ref.dtype == DType::Float8E4M3FN ||
                         ref.dtype == DType::Float8E5M2))
            out << "note: numpy has no " << dtypeName(ref.dtype) << ": written as float32, every value exact\n";
        else if (npy && ref.dtype == DType::Complex32)
            out << "note: numpy has no complex32: written as complex64, every value exact\n";
        if (ref.layout == TensorRef::Layout::SparseCoo)
            out << "note: a sparse tensor: written dense (as tensor.to_dense() gives it)\n";
        return 0;
    } catch (const std::exception &e) {
        return reportError(err, options.file, e);
    }
}

} // namespace ckpt::cli
