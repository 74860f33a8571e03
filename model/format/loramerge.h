#pragma once

#include "document.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// Merging a PEFT LoRA adapter into its base model's weights, as PEFT's merge_and_unload does:
// each targeted weight W becomes W + scaling * delta (delta from the adapter's low-rank factors).
// This layer finds what to merge and checks it (names, shapes, config); the numbers are made by
// the compute module through a function the program supplies (LoraMergeFunction).
namespace ckpt {

// One weight to write: the base's W with its adapter factors, or a tensor the adapter replaces
// whole (a bias it trained, a modules_to_save copy).
struct LoraMergeStep {
    enum class Kind {
        Linear,     // delta = B @ A ([out, r] @ [r, in]); transposed with fan_in_fan_out (GPT-2's Conv1D)
        Embedding,  // delta = (B @ A)^T (lora_embedding_B [dim, r] @ lora_embedding_A [r, num])
        Conv2d,     // 1x1: (B @ A) as a matmul; k x k: conv2d(A.permute(1,0,2,3), B).permute(1,0,2,3)
        Replace,    // W = the adapter's tensor, in W's dtype
    };
    Kind kind = Kind::Linear;
    std::string name;                    // the base's key
    std::shared_ptr<const TensorRef> base;
    std::shared_ptr<const TensorRef> a;  // lora_A (lora_embedding_A), or the replacement
    std::shared_ptr<const TensorRef> b;  // lora_B (lora_embedding_B)
    double scaling = 1.0;                // lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora
    bool fanInFanOut = false;
};

// W's new bytes for a step (contiguous, in W's dtype). Throws std::runtime_error saying why not.
using LoraMergeFunction = std::function<std::vector<std::uint8_t>(const LoraMergeStep &)>;

// A PEFT adapter as saved by save_pretrained: its weights and adapter_config.json.
struct LoraAdapterFiles {
    std::string weightsPath;  // adapter_model.safetensors or adapter_model.bin
    std::string configPath;   // adapter_config.json beside it
    nlohmann::ordered_json config;  // in the file's order: rank_pattern keys are tried in it, as PEFT does
    std::shared_ptr<const Document> doc;
};

// Reads an adapter given as its folder or as its adapter_model file (adapter_config.json beside
// it). Throws FormatError naming the file and what is missing or wrong.
std::shared_ptr<const LoraAdapterFiles> readLoraAdapter(const std::string &path);

// What a merge did to a list of weights.
struct LoraMergeSummary {
    std::vector<std::string> merged;    // base keys that became W + scaling * delta ("fc.weight (linear)")
    std::vector<std::string> replaced;  // base keys the adapter's own tensors replaced
    std::vector<std::pair<std::string, std::string>> renamed;  // ".base_layer." keys written without it
    std::vector<std::string> warnings;  // what the user should know (a tie the merge breaks)
};

// Lays the adapter over `tensors` (a state dict's entries): each targeted weight becomes a tensor
// whose bytes `compute` makes when they are written (one at a time; never the whole model twice).
// Everything is checked first: a DoRA adapter, a layer kind or key the merge cannot do exactly, a
// target missing from the base or of a shape that does not fit r and the factors, is refused with a
// FormatError naming the adapter file, the key and what was expected and found; nothing is changed then.
// `basePrefix` ("module.", what --strip-prefix will remove) is the one the base's keys have before the
// bare model's names the adapter uses.
LoraMergeSummary mergeLoraAdapter(std::vector<std::pair<std::string, ValuePtr>> &tensors,
                                  const LoraAdapterFiles &adapter, const LoraMergeFunction &compute,
                                  const std::string &basePrefix = {});

} // namespace ckpt
