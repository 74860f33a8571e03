// The whole open-and-classify path on arbitrary bytes: container detection, every reader,
// classification, the JSON export (both writers) and the security report, and what `ckpt info`
// and the views derive from a document: Python reprs of its entries, known fields, training
// state, the package's preprocessing and class names, and the architecture that would run it.
#include "architecture.h"
#include "document.h"
#include "error.h"
#include "inferencemeta.h"
#include "jsonexport.h"
#include "metadata.h"
#include "pythonrepr.h"
#include "security.h"

#include <ostream>
#include <streambuf>

namespace {
// An ostream that discards what it is given (the streaming JSON writer's output).
class NullBuffer : public std::streambuf {
protected:
    int overflow(int c) override { return c; }
    std::streamsize xsputn(const char *, std::streamsize n) override { return n; }
};
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    try {
        auto doc = ckpt::readDocumentFromBytes(std::string(reinterpret_cast<const char *>(data), size), "fuzz.pth");
        (void)ckpt::documentToJson(doc).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        NullBuffer nullBuffer;
        std::ostream sink(&nullBuffer);
        ckpt::writeDocumentJson(doc, sink, 1);
        for (const auto &t : doc.tensors)
            if (t.ref().problem.empty())
                (void)t.ref().spannedBytes();
        // As `ckpt info` writes them: one line each, the CLI's limits.
        const ckpt::ReprLimits limits{.maxChars = 100, .maxItems = 50};
        if (doc.root)
            (void)ckpt::pythonRepr(*doc.root, limits);
        for (const auto &e : ckpt::metadataEntries(doc))
            if (e.value)
                (void)ckpt::pythonRepr(*e.value, limits);
        for (const auto &f : ckpt::knownFields(doc))
            if (f.value)
                (void)ckpt::pythonRepr(*f.value, limits);
        for (const auto &s : ckpt::trainingStates(doc))
            if (s.value)
                (void)ckpt::pythonRepr(*s.value, limits);
        (void)ckpt::preprocessingOf(doc);
        (void)ckpt::imagePreprocessingOf(doc);
        (void)ckpt::classNamesOf(doc);
        (void)ckpt::featureNamesOf(doc);
        try {
            const auto arch = ckpt::resolveArchitecture(doc);
            (void)ckpt::describeArchitecture(arch);
        } catch (const ckpt::FormatError &) {
        }
    } catch (const ckpt::FormatError &) {
    }
    return 0;
}
