#pragma once

#include "document.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ckpt {

// A parameter pruned with torch.nn.utils.prune and saved before prune.remove: the module holds
// `X_orig` (the parameter as trained) and `X_mask` (a buffer of the same shape) instead of `X`,
// and a forward pre-hook computes X = X_orig * X_mask before every forward.
struct PrunedParameter {
    std::string name;      // the effective parameter's state-dict name ("0.weight")
    std::size_t orig = 0;  // index of "0.weight_orig" in the list searched
    std::size_t mask = 0;  // index of "0.weight_mask"
};

// The pruned parameters of a state dict: every X_orig with an X_mask of the same shape under the
// same module, and no X beside them (after prune.remove only X is left), in the order of X_orig.
std::vector<PrunedParameter> prunedParameters(const std::vector<NamedTensor> &tensors);
std::vector<PrunedParameter> prunedParameters(const std::vector<std::pair<std::string, ValuePtr>> &tensors);

// What a pickled full model names of torch.nn.utils.prune: the pruning methods its hooks are
// instances of ("L1Unstructured", "PruningContainer"), each once, in the file's order.
std::vector<std::string> pruningMethods(const Document &doc);

// "pruned with torch.nn.utils.prune: 2 parameters (0.weight, 2.weight)"; empty when nothing is pruned.
std::string pruningSummary(const Document &doc);

// The state dict as a model of the unpruned architecture sees it: each X_orig renamed X, in its
// place, and its X_mask left out. For code that only needs names and shapes (architectures).
std::vector<NamedTensor> effectiveNames(const std::vector<NamedTensor> &tensors);

// How much of each pruned parameter is masked: the zeros of its X_mask, which torch's
// (mask == 0).float().mean() gives as a share. Counted from the masks' bytes only when they total at
// most kCheapMaskBytes (a listing stays quick); each entry null otherwise, or where a mask is not a
// dense floating tensor that can be read.
inline constexpr std::uint64_t kCheapMaskBytes = std::uint64_t{64} << 20;
std::vector<std::optional<std::int64_t>> maskedCounts(const std::vector<NamedTensor> &tensors,
                                                      const std::vector<PrunedParameter> &pruned);

// X = X_orig * X_mask element by element, with the bits torch's CPU multiplication gives (float16
// and bfloat16 computed in float32 and rounded to nearest even, as its kernels do). Both tensors
// dense, contiguous, of one floating dtype and the same shape; throws FormatError naming `name`
// and what stands in the way otherwise.
std::vector<std::uint8_t> maskedBytes(const TensorRef &orig, const TensorRef &mask, const std::string &name);

// What prune.remove does, on a list of state-dict entries: each X_orig becomes X (the masked
// values, a new tensor in its place, a Parameter where X_orig was one) and each X_mask is left
// out. Returns the names of the parameters made; `dropped` gets each mask's name.
std::vector<std::string> applyPruning(std::vector<std::pair<std::string, ValuePtr>> &tensors,
                                      std::vector<std::string> *dropped = nullptr);

} // namespace ckpt
