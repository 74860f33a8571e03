// The tar reader (torch 0.1.x checkpoints) on arbitrary archives.
#include "document.h"
#include "error.h"
#include "tararchive.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    try {
        ckpt::TarArchive tar({data, size});
        (void)ckpt::readDocumentFromBytes(std::string(reinterpret_cast<const char *>(data), size), "fuzz.tar");
    } catch (const ckpt::FormatError &) {
    }
    return 0;
}
