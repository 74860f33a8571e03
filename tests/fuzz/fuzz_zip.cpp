// The zip container: directory parsing, anomalies and record reads (inflate included).
#include "error.h"
#include "ziparchive.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    try {
        ckpt::ZipArchive zip({data, size});
        for (const auto &e : zip.entries()) {
            if (e.size > (1u << 20))
                continue;  // keep each run fast; the cap itself is tested elsewhere
            try {
                (void)zip.read(e);
            } catch (const ckpt::FormatError &) {
            }
        }
    } catch (const ckpt::FormatError &) {
    }
    return 0;
}
