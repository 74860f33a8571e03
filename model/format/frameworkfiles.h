#pragma once

#include "document.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// What training frameworks keep in their files beyond weights and optimizer state, read from the
// document alone: Lightning's callback states, PEFT's LoRA adapters, a LightningModule's attributes.
namespace ckpt {

// One Lightning callback's saved state (the checkpoint's `callbacks` dict, keyed by the callback's
// state_key: "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', ...}"). The fields a user looks
// for, in a fixed order, each as Python gives it: a 0-d tensor (best_model_score, current_score,
// EarlyStopping's best_score) as its .item(), the rest as saved.
struct CallbackState {
    std::string name;  // "ModelCheckpoint", "EarlyStopping"
    std::string key;   // the key in `callbacks`
    std::vector<std::pair<std::string, ValuePtr>> fields;
    ValuePtr field(const std::string &name) const;
};

// The ModelCheckpoint and EarlyStopping states of a Lightning checkpoint (at most a few of each, in
// the file's order); empty for any other file.
std::vector<CallbackState> lightningCallbacks(const Document &doc);

// One line for a callback: "ModelCheckpoint: monitor 'val_loss', best_model_score 0.25, ...".
std::string callbackText(const CallbackState &c, std::size_t maxValueChars = 100);

// A PEFT adapter's state dict (get_peft_model_state_dict: adapter_model.bin or .safetensors, or a
// checkpoint holding one): LoRA's low-rank factors `…<module>.lora_A.weight` and `lora_B.weight`
// (`lora_embedding_A` / `_B` for embeddings), plus whole copies of the modules named in
// modules_to_save. Rank is r of lora_A's shape [r, in_features] (an embedding's lora_embedding_A is
// [r, num_embeddings]).
struct LoraAdapter {
    std::int64_t minRank = 0;
    std::int64_t maxRank = 0;
    std::size_t modules = 0;             // modules with a lora_A
    std::vector<std::string> targets;    // the modules' own names (q_proj, v_proj), first-seen order
    std::vector<std::string> savedWhole; // modules kept whole (modules_to_save), first-seen order
    std::size_t savedWholeTensors = 0;
    // The file also holds the adapted modules' own weights (`…q_proj.weight`, or PEFT >= 0.7's
    // `…q_proj.base_layer.weight`): a PeftModel's whole state dict, base model and adapter, not merged.
    bool withBaseWeights = false;
};
std::optional<LoraAdapter> loraAdapter(const Document &doc);

// "LoRA adapter (PEFT): rank 8 on 24 modules (targets: q_proj, v_proj) …", ending with what an
// adapter alone is not: the model. With the base weights beside it, a model with an adapter not merged.
std::string loraAdapterText(const LoraAdapter &a);

// The first dotted part of each name with its dot ("net.", "backbone."), with how many names start
// with it, in first-seen order; a name without a dot counts under "". At most `maxPrefixes` are
// listed; `more` counts names under prefixes past them.
struct KeyPrefixCount {
    std::string prefix;
    std::size_t count = 0;
};
std::vector<KeyPrefixCount> topLevelPrefixes(const std::vector<NamedTensor> &tensors, std::size_t maxPrefixes,
                                             std::size_t &more);

// What a LightningModule's state dict's keys start with, as one sentence: the one attribute every
// key is under, and the --strip-prefix that removes it; or the attributes the keys are spread over.
// Empty when the state dict is empty.
std::string lightningPrefixText(const Document &doc);

} // namespace ckpt
