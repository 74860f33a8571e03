#include "exportcommand.h"

#include "atomicwrite.h"
#include "clicommon.h"
#include "convert.h"
#include "computeloader.h"
#include "document.h"
#include "dtype.h"
#include "error.h"
#include "textcodec.h"

#include <iostream>
#include <limits>
#include <vector>

namespace ckpt::cli {

int runExport(const ExportOptions &options, std::ostream &out, std::ostream &err)
{
    // Ctrl-C, SIGTERM or SIGHUP while the file is written leave its folder as it was (README).
    removeTemporaryFilesOnSignals();
    try {
        const bool npy = options.output.ends_with(".npy");
        if (!npy && !options.output.ends_with(".csv"))
            throw FormatError(options.output + ": the output must end in .npy or .csv");
        const Document &doc = keepUntilExit(readInput(options.file, options.weights));
        const FoundEntry found = findEntry(doc, options.key);
        const ValuePtr &value = found.value;
        if (!value || !value->isTensor())
            throw FormatError(doc.path + ": no tensor named '" + options.key + "'");
        const std::string bytes = ComputeLoader::api().exportBytes(
            *value->tensorRef(), npy ? ComputeApi::ExportFormat::Npy : ComputeApi::ExportFormat::Csv);
        writeFileAtomically(options.output, {reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()},
                            protectingInputs(doc, options.force));
        out << options.output << ": " << bytes.size() << " bytes\n";
        if (!found.note.empty())
            out << "note: " << displayText(found.note) << "\n";
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
        // A .csv holds rows of columns: a 0-d tensor is one value, a 1-d one a row, a 2-d one its
        // rows; more dimensions than two are laid out flat, which the file cannot say itself.
        if (!npy && ref.shape.size() > 2) {
            std::int64_t rows = 1;
            std::vector<std::int64_t> leading(ref.shape.begin(), ref.shape.end() - 1);
            for (auto d : leading)
                if (__builtin_mul_overflow(rows, d, &rows))  // only where the last dimension is 0
                    rows = std::numeric_limits<std::int64_t>::max();
            out << "note: a " << ref.shape.size() << "-d tensor " << shapeText(ref.shape) << " written as " << rows
                << " rows of " << ref.shape.back() << " values: a row for each index of the leading dimensions "
                << shapeText(leading) << " (the last of them changing fastest), a column for each index of the last; "
                << "reshape to " << shapeText(ref.shape) << " to get the tensor back\n";
        }
        return 0;
    } catch (const std::exception &e) {
        return reportError(err, options.file, e);
    }
}

} // namespace ckpt::cli
