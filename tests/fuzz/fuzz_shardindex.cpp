// The sharded-index reader: JSON that names shards (which do not exist, so only the index
// parsing and its checks run, never a read outside the input).
#include "error.h"
#include "safetensorsreader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    ckpt::Document doc;
    doc.path = "/nonexistent-fuzz-dir/model.index.json";
    try {
        ckpt::readShardIndex(doc, {data, size}, {});
    } catch (const ckpt::FormatError &) {
    }
    return 0;
}
