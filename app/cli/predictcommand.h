#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace ckpt::cli {

struct PredictCommandOptions {
    std::string file;
    std::string arch;                 // --arch FILE.pt: a TorchScript file of the same model
    std::string archSpec;             // --arch-spec: JSON text or a .json file
    std::string activation = "relu";  // between the Linear layers of an inferred MLP
    std::vector<std::string> inputs;  // --input "v1,v2,...", one sample each
    std::string inputFile;            // --input-file F.csv|F.npy
    // --input-shape C,H,W (or N for features): one sample's shape, as the pane's Sample shape
    // field: the size a fixed-size TorchScript model (a ViT) takes pictures and rows at.
    std::string inputShape;
    std::string device = "cpu";
    bool noNormalize = false;
    bool half = false;                // --half: --dtype float16
    std::string dtype = "float32";    // float32, float16 or bfloat16
    int repeat = 1;                   // --repeat N: run the batch N times, latency of each
    int top = 5;
    std::string probabilities = "auto";  // --probabilities auto|softmax|sigmoid|none
    bool json = false;
    bool showArchitecture = false;    // --show-arch: print the architecture and stop
    std::string exportTorchScript;    // --export-torchscript OUT.pt
    bool force = false;
    std::string weights;  // --weights: the set of weights used as the model's (a tree path)
};

// `ckpt predict`: runs the file's model on the inputs with the package's preprocessing and prints
// logits, probabilities and the top classes (or JSON). 0 on success, 1 on error.
int runPredict(const PredictCommandOptions &options, std::ostream &out, std::ostream &err);

struct DevicesCommandOptions {
    bool json = false;
};

// `ckpt devices`: where predictions can run (CPU, each CUDA device with its name, memory, compute
// capability and precisions; CUDA's absence with the reason). 0 on success, 1 on error.
int runDevices(const DevicesCommandOptions &options, std::ostream &out, std::ostream &err);

} // namespace ckpt::cli
