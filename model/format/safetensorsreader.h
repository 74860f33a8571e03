#pragma once

#include "document.h"

#include <cstdint>
#include <span>

namespace ckpt {

// Limits of the safetensors header, as the format's own reader sets them.
struct SafetensorsLimits {
    static constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // also a shard index's size
    // Tensors in one file (or one shard index): far beyond real models, and keeps a hostile header
    // from building millions of tensor records.
    static constexpr std::size_t kMaxTensors = std::size_t(1) << 17;
    // Nesting of the header's (or a shard index's) JSON: real ones nest three levels.
    static constexpr int kMaxJsonDepth = 64;
    // __metadata__ entries kept (past them, counted and said in a warning): twice the tensor limit,
    // room for an alias entry a tensor (this tool's writer records them there) and far more than
    // any real file's handful; a hostile header of millions costs only their parsing.
    static constexpr std::size_t kMaxMetadataEntries = 2 * kMaxTensors;
};

// True when the bytes start like a safetensors file: a plausible header length, then '{'.
bool looksLikeSafetensors(std::span<const std::uint8_t> data);

// Reads a safetensors file into `doc` (root: a dict of tensors in header order; the header's
// __metadata__ in doc.formatMetadata). Every check of the format's audit applies: header size
// limits, checked arithmetic, tensors that neither overlap nor leave gaps nor trailing bytes,
// no duplicate names, string-only metadata. Throws FormatError.
void readSafetensors(Document &doc, std::span<const std::uint8_t> data);

// True when the bytes are a sharded checkpoint index (JSON with a "weight_map").
bool looksLikeShardIndex(std::span<const std::uint8_t> data);

// Reads a sharded checkpoint: every shard the index names (safetensors or torch files, next to
// the index) merged into one dict of tensors, in weight_map order. Throws FormatError.
void readShardIndex(Document &doc, std::span<const std::uint8_t> data, const ReadOptions &options);

// The entry of a safetensors file's __metadata__ or a shard index's metadata that `path` names as
// `ckpt info` prints it ("__metadata__/KEY", "metadata/KEY", then keys within it separated by
// "/"), as the value it encodes; null when there is none.
ValuePtr findFormatMetadata(const Document &doc, const std::string &path);

} // namespace ckpt
