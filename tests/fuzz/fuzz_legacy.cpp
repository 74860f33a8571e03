// The legacy reader: the input follows a valid magic-number pickle, so every run reaches the
// protocol version, sys_info, main pickle, key list and storage data.
#include "document.h"
#include "error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static const std::string magic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
    try {
        (void)ckpt::readDocumentFromBytes(magic + std::string(reinterpret_cast<const char *>(data), size), "fuzz.pth");
    } catch (const ckpt::FormatError &) {
    }
    return 0;
}
