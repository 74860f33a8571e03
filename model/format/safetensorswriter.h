#pragma once

#include "dtype.h"

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt {

// The `__metadata__` entry in which this tool records the order of the tensor names it wrote (a
// JSON list): safetensors stores them sorted (by dtype, then name), and a state dict's order is the
// model's (fc1 before fc2, layers.2 before layers.10), which reading the file back restores.
inline constexpr std::string_view kSafetensorsKeyOrder = "checkpoint_studio.key_order";

// The `__metadata__` entry in which this tool keeps the state dict's `_metadata` (the OrderedDict
// attribute torch's state_dict() sets: module prefix -> {"version": N}), as a JSON object in the
// state dict's order: module._load_from_state_dict reads the versions (BatchNorm's
// num_batches_tracked, older layouts of a layer), and converting back to a torch file restores it.
inline constexpr std::string_view kSafetensorsStateDictMetadata = "checkpoint_studio.state_dict_metadata";

// Where bytes go as they are produced (an AtomicFileWriter's write).
using ByteSink = std::function<void(std::span<const std::uint8_t>)>;

// One tensor of a safetensors file: contiguous row-major bytes produced when written.
struct SafetensorsEntry {
    std::string name;
    DType dtype = DType::Unknown;
    std::vector<std::int64_t> shape;
    std::uint64_t byteSize = 0;
    // Gives the bytes to the sink, in as many pieces as it likes (exactly byteSize in all): a
    // span of the source's mapping where nothing changes, bounded chunks where a cast or a
    // gather does, so that no tensor is ever copied whole.
    std::function<void(const ByteSink &)> produce;
};

// Writes a safetensors file as the Python library does: tensors ordered by dtype (wider types
// first, in the library's order) then name, a compact JSON header with `__metadata__` first,
// padded with spaces to a multiple of 8 bytes, then the data without gaps. Sharing is not allowed
// in the format: callers write an alias once and record it in the metadata. Throws FormatError
// for a dtype the format has no tag for, duplicate names, or bytes of the wrong size.
class SafetensorsWriter {
public:
    using Sink = ByteSink;
    // Sorts `entries` into the order they are written and returns the header (length prefix
    // included).
    static std::string header(std::vector<SafetensorsEntry> &entries,
                              const std::map<std::string, std::string> &metadata);
    // Writes the whole file to `sink`; `progress(done, total)` after each tensor.
    static void write(const Sink &sink, std::vector<SafetensorsEntry> entries,
                      const std::map<std::string, std::string> &metadata,
                      const std::function<void(std::uint64_t, std::uint64_t)> &progress = {});
};

} // namespace ckpt
