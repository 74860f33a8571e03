// The whole open-and-classify path on arbitrary bytes: container detection, every reader,
// classification, the JSON export and the security report.
#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "security.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    try {
        auto doc = ckpt::readDocumentFromBytes(std::string(reinterpret_cast<const char *>(data), size), "fuzz.pth");
        (void)ckpt::documentToJson(doc).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        for (const auto &t : doc.tensors)
            if (t.ref().problem.empty())
                (void)t.ref().spannedBytes();
    } catch (const ckpt::FormatError &) {
    }
    return 0;
}
