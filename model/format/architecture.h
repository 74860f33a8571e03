#pragma once

#include "document.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ckpt {

struct ArchitectureLimits {
    // Values one layer's output may hold for one sample (2^30: 4 GiB of float32). Layer sizes come
    // from the file or a spec; beyond this a run would only exhaust memory.
    static constexpr std::int64_t kMaxActivation = std::int64_t(1) << 30;
};

// One layer of an architecture: a standard torch.nn layer with its options as PyTorch names them
// (completed with PyTorch's defaults and checked against its weights), or a container whose
// children run in order.
struct Layer {
    std::string name;         // attribute name under its parent ("fc1", "0"); spec layers may use dots
    std::string path;         // prefix of its weights in the state dict ("features.0"), "" for the root
    std::string type;         // "Linear", "Conv2d", ..., "Sequential", or "Container" (children in order)
    std::string pythonClass;  // "torch.nn.modules.linear.Linear", a user's class; "" for specs
    nlohmann::ordered_json options = nlohmann::ordered_json::object();
    nlohmann::ordered_json given = nlohmann::ordered_json::object();  // spec layers: options as written
    std::vector<std::string> tensors;  // its own parameters and buffers by local name ("weight", "running_mean")
    std::vector<Layer> children;
    bool isContainer() const { return type == "Sequential" || type == "Container"; }
    // "weight" -> "features.0.weight".
    std::string tensorName(const std::string &local) const { return path.empty() ? local : path + "." + local; }
};

// What runs a document's weights, and how much of it the file itself says.
struct Architecture {
    enum class Source {
        TorchScript,         // a TorchScript archive, run as it is
        ModuleTree,          // a pickled module tree of standard layers
        ScriptArchitecture,  // a state dict loaded into a TorchScript file the user chose
        Spec,                // a state dict with a JSON layer list the user wrote
        PackageSpec,         // a state dict with the package's own `architecture` list
        InferredMlp,         // a state dict whose Linear chain was read from the weight shapes
    };
    enum class Output { Logits, LogProbabilities, Probabilities };
    Source source = Source::Spec;
    bool exact = false;                    // nothing about the computation was guessed
    std::vector<std::string> assumptions;  // what was guessed, for the user to see
    // What the user must read beside the result because it may make the numbers wrong: a pickled
    // class's forward taken to run its children in registration order, more strongly where a class
    // looks like a residual block (its skip connection is in the forward a pickle does not carry).
    std::vector<std::string> warnings;
    Layer root;                            // empty for TorchScript sources
    std::string scriptPath;                // TorchScript and ScriptArchitecture: the file to load
    std::vector<NamedTensor> weights;      // state-dict names (relative to root) and tensors
    std::vector<std::int64_t> inputShape;  // one sample's shape; -1 where any size goes; empty: unknown
    bool integerInput = false;             // indices (an Embedding comes first)
    // When integerInput: the rows of the Embedding the indices meet (ids 0 to rows - 1; 0 unknown)
    // and its name, for a message that says which id is out of range.
    std::int64_t embeddingRows = 0;
    std::string embeddingName;
    // The spatial sizes of inputShape were picked among the sizes the layers take (no Linear after a
    // Flatten fixes them, the file does not say): other sizes run too, so an image runs at its own.
    // False when the file states the size (input_shape, input_size, image_size): that size is used.
    bool inputSizeChosen = false;
    // inputShape is a guess from a TorchScript file's first weight, which need not be the layer the
    // input meets first: a hint, for rows whose count fits it, never a refusal.
    bool inputShapeGuessed = false;
    Output output = Output::Logits;        // what the last layer gives
    // Parameters pruned with torch.nn.utils.prune and saved before prune.remove: `weights` names each
    // by its effective name ("0.weight") with its X_orig tensor, and its X_mask is here under that
    // name. Whoever runs or writes the weights computes X_orig * X_mask, as torch's pre-hook does.
    std::vector<NamedTensor> masks;
};

// "torchscript", "module_tree", "torchscript_architecture", "spec", "package_spec", "inferred_mlp".
std::string sourceName(Architecture::Source source);

// Layer types this application can run and export, in the order the README lists them.
const std::vector<std::string> &supportedLayerTypes();

// The user's choice of architecture for a document (the CLI's --arch, --arch-spec, --activation).
struct ArchitectureRequest {
    std::string scriptPath;             // a TorchScript file of the same model
    std::string spec;                   // JSON text: a list of layers, or {"layers": [...], "input_shape": [...]}
    std::string activation = "relu";    // between the Linear layers of an inferred MLP
    ArchitectureRequest &script(std::string p) { scriptPath = std::move(p); return *this; }
    ArchitectureRequest &layers(std::string s) { spec = std::move(s); return *this; }
    ArchitectureRequest &between(std::string a) { activation = std::move(a); return *this; }
};

// Whether the layers take one sample of `sample`'s shape (every width and size checked as the
// architecture is); true for TorchScript, which only running tells.
bool takesInput(const Architecture &arch, const std::vector<std::int64_t> &sample);

// The architecture that runs `doc`: the one requested, else the most exact the file allows
// (TorchScript, module tree, the package's spec, an MLP inferred from a Linear chain). Throws
// FormatError saying what is missing or which layer does not match its weights.
Architecture resolveArchitecture(const Document &doc, const ArchitectureRequest &request = {});

// A spec (JSON list of layers) over the document's state dict. Throws FormatError on a malformed
// spec, an unsupported layer, weights missing, unused or of the wrong shape.
Architecture architectureFromSpec(const Document &doc, const nlohmann::ordered_json &spec, Architecture::Source source);

// The spec of an MLP read from the state dict's chain of Linear weights, with the BatchNorm1d
// (running statistics) and LayerNorm (a weight and a bias of the width) layers that follow a
// Linear kept in place, and `activation` before each Linear but the first, after the norms of
// the layer before ("relu", "tanh", "sigmoid", "gelu", "silu", "elu", "leaky_relu", "none");
// nullopt with the reason in `why` when the weights are not such a chain.
std::optional<nlohmann::ordered_json> inferMlpSpec(const Document &doc, const std::string &activation,
                                                   std::string *why = nullptr);

// A spec listing the architecture's leaf layers in run order, named by their paths.
nlohmann::ordered_json specOf(const Architecture &arch);

// The leaf layers in the order they run.
std::vector<const Layer *> leavesInOrder(const Layer &root);

// The shape the layers give for an input of `shape` (batch first). Throws FormatError naming the
// layer that cannot take its input.
std::vector<std::int64_t> propagateShape(const Layer &root, std::vector<std::int64_t> shape);

// The architecture as indented lines: "fc1: Linear(in_features=10, out_features=50)".
std::vector<std::string> describeArchitecture(const Architecture &arch);

} // namespace ckpt
