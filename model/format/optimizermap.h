#pragma once

#include "document.h"

#include <optional>
#include <string>
#include <vector>

namespace ckpt {

// One parameter an optimizer keeps state for, with the state-dict tensor it most likely belongs to.
struct OptimizerParameter {
    std::int64_t id = -1;
    std::string key;               // the optimizer's key where it is a name (torch.distributed's layout)
    std::size_t group = 0;         // index into param_groups
    std::string name;              // state-dict name, empty when it cannot be told
    ValuePtr state;                // the per-parameter state dict (step, exp_avg, ...), may be null
    bool shapeAgrees = true;       // every state tensor has the parameter's shape
};

// The optimizer's parameters mapped to state-dict names. Where the optimizer recorded the names
// itself, they are used: torch >= 2.6 lists `param_names` beside each group's `params` when the
// optimizer was built from named_parameters(), and torch.distributed's optimizer state dicts (FSDP,
// get_optimizer_state_dict) key parameters by their fully qualified name instead of an integer.
// Otherwise PyTorch numbers parameters in the order they were given to the optimizer, which is
// often not the order the model registers them (a head listed first, param groups with their own
// learning rates, a frozen backbone left out), so the state's shapes decide: certain where each
// parameter's shape is found once among the weights. With several param groups (whose members and
// order the user chose) nothing else is trusted: a parameter whose shape several weights share is
// left unnamed. With one group, also certain where the parameters split one way only into whole
// layers (a module's parameters given together, in its order) and each such layer is the only one
// of its shapes. Where layers or parameters share shapes, the names follow registration
// order and the mapping is not certain; where only some of several same-shaped layers are held,
// their parameters are left unnamed. Buffers (BatchNorm running stats) are told apart by name in a
// plain state dict, exactly in a pickled module, and by dtype (an optimizer holds only floating and
// complex tensors). Every mapped tensor's state is checked by shape.
struct OptimizerMap {
    std::vector<OptimizerParameter> parameters;
    bool certain = false;  // false: edits (convert --drop) must not renumber the ids by these names
    std::string note;  // why the mapping is or is not certain
};

std::optional<OptimizerMap> mapOptimizer(const Document &doc);

// The optimizer's step: the largest `step` among its per-parameter states (a number, or the 0-d
// tensor torch >= 1.12 keeps); none where no state has one.
std::optional<std::int64_t> optimizerStep(const Value &optimizerState);

// One optimizer state of the file. A GAN (or any run with several optimizers) keeps one per
// network: optimizer_G and optimizer_D beside the generator's and discriminator's weights, or
// Lightning's `optimizer_states` list beside one state dict that holds both networks.
struct OptimizerEntry {
    KeyPath path;
    ValuePtr state;             // as optimizer.state_dict() gives it
    bool primary = false;       // the document's optimizer (the one paired with the model's weights)
    std::string className;      // optimizerClassName
    std::size_t groups = 0;     // param groups
    std::size_t parameters = 0; // ids the param groups list
    std::size_t states = 0;     // per-parameter states (parameters that took a step)
    std::optional<std::int64_t> step;
    // Which weights it updates, as a sentence, where the file has several optimizers: told by the
    // shapes of its state (a weight set it alone fits, or parameters all named with certainty under
    // one attribute), or why that cannot be told. Empty for a file's only optimizer.
    bool updatesKnown = false;
    std::string updates;
};

// How many optimizer states of one file are looked at: each is mapped in turn, so a hostile file's
// 10,000 stay cheap.
inline constexpr std::size_t kMaxOptimizers = 16;

// Every optimizer state of the file (at most kMaxOptimizers), in the file's order; empty when it has
// none. `more`, when given, says whether the file holds more than those. Defined beside the
// classifier's search for them (classifier.cpp).
std::vector<OptimizerEntry> optimizerEntries(const Document &doc, bool *more = nullptr);

// Why the file holds no optimizer state this reader takes, where it names one: a dict under an
// optimizer key of the root (optimizer_state_dict, optimizer, ...) that has one of `state` and
// `param_groups` but not both, or either of the wrong kind. torch.optim's load_state_dict needs
// both, so such a dict resumes nothing; it is still shown as the value it is. A sentence naming the
// key and what is missing or wrong; empty where the file has an optimizer or names none.
std::string optimizerNotRead(const Document &doc);

// A pickled optimizer instance (torch.save of an object that holds a torch.optim optimizer, as
// OpenNMT's checkpoints did) keeps its __dict__ (or, torch >= 1.x, its __getstate__): `state`, a
// dict or defaultdict keyed by the parameter tensors themselves (or by ids), and `param_groups`,
// whose `params` list those tensors. Returns what optimizer.state_dict() would give for it: ids
// numbered over param_groups in order, `params` last in each group as torch writes it, the state
// keyed by those ids (a state whose tensor is in no group is left out); null when `v` is no
// optimizer instance.
ValuePtr pickledOptimizerState(const Value &v);

// Where the optimizer is DeepSpeed ZeRO's (a *_optim_states.pt file: the torch optimizer's state
// kept over flat fp32 groups, one id per group rather than per parameter, beside the fp32 master
// weights of this rank's partition), a sentence that says so: the stage, the ranks, each group's
// elements and the parameters param_slice_mappings places in it. Empty for any other optimizer.
std::string deepSpeedPartition(const Document &doc);

// "Adam" or "AdamW" where an Adam-style optimizer's state dict says which, else empty. Their state
// is alike; their param groups are not: torch >= 2.6 records `decoupled_weight_decay`, and from 1.13
// to 2.5 AdamW lists `foreach` before `maximize` where Adam lists `maximize` first and (from 1.13
// on) also `differentiable`. Older files cannot be told apart.
std::string adamVariant(const Value &optimizerState);

// The optimizer's class as far as its state dict tells it, the one name the CLI, the JSON and the
// window show: inferOptimizerType's family, with Adam and AdamW told apart where their param groups
// say which (adamVariant): "Adam", "AdamW", "AdamW (AMSGrad)". "Adam/AdamW" (with " (AMSGrad)"
// where it keeps max_exp_avg_sq) only where the groups cannot tell, as in files older than 1.13.
std::string optimizerClassName(const Value &optimizerState);

} // namespace ckpt
