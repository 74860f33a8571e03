// The safetensors reader: the input is the file.
#include "error.h"
#include "safetensorsreader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    ckpt::Document doc;
    doc.path = "fuzz.safetensors";
    try {
        ckpt::readSafetensors(doc, {data, size});
    } catch (const ckpt::FormatError &) {
    }
    return 0;
}
