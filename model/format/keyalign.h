#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckpt {

// Prefixes that wrappers put in front of every state-dict key: DataParallel and
// DistributedDataParallel ("module."), torch.compile ("_orig_mod."), Lightning modules ("model.").
const std::vector<std::string> &knownKeyPrefixes();

// torch.optim.swa_utils.AveragedModel (SWA, and EMA through its avg_fn) saves the averaged model
// under its attribute `module` ("module.fc.weight") beside one buffer of its own, `n_averaged`: the
// count of models averaged, not a weight of the model.
bool isAveragedModelCounter(std::string_view name);
// Where that counter is among the names of a state dict AveragedModel saved: every other name
// starts with "module.", and there is at least one. npos when the names are not such a state dict.
std::size_t averagedModelCounter(const std::vector<std::string> &names);

// The wrapper prefixes every name carries, outermost first ("module._orig_mod." peels to both);
// empty when the names carry none. A prefix counts only when all names start with it, except
// AveragedModel's own counter (above), which sits beside its "module." entries.
std::string commonWrapperPrefix(const std::vector<std::string> &names);

// A dotted name's parts: "fc.weight" -> {"fc", "weight"}; "" -> {""}.
std::vector<std::string> splitDots(const std::string &name);

// A key that sorts "layer.10" after "layer.9" and "ckpt_2" before "ckpt_10": runs of digits
// zero-padded to a fixed width, letters lower-cased.
std::string naturalKey(std::string_view text);

// A rename rule: names starting with `from` start with `to` instead.
struct KeyMapping {
    std::string from;
    std::string to;
};
// Parses "OLD=NEW"; throws std::invalid_argument without '='.
KeyMapping parseKeyMapping(const std::string &text);

// Two name lists matched up: names of `a` are renamed by the mappings, each side's wrapper prefix
// is stripped (unless the names as they are pair more: a prefix every key of one file carries may
// be part of the names, as "model." of a Hugging Face model saved without its tied head), and
// names equal after that are pairs. Pairs keep a's order; the rest are listed.
// A side's AveragedModel counter that the other side has no counter to pair with is the wrapper's,
// not a weight the other lacks: set aside rather than listed as only on that side.
struct KeyAlignment {
    std::vector<std::pair<std::size_t, std::size_t>> pairs;  // (index in a, index in b)
    std::vector<std::size_t> onlyA;
    std::vector<std::size_t> onlyB;
    std::vector<std::size_t> wrapperA;  // AveragedModel's n_averaged, set aside (index in a)
    std::vector<std::size_t> wrapperB;
    std::string prefixA;  // wrapper prefix stripped from a's names
    std::string prefixB;
};
KeyAlignment alignKeys(const std::vector<std::string> &a, const std::vector<std::string> &b,
                       const std::vector<KeyMapping> &mappings = {});

} // namespace ckpt
