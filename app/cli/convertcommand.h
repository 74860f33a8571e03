#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::cli {

struct ConvertCliOptions {
    std::vector<std::string> files;
    std::string to;
    std::string output; // -o: one input only
    std::string outDir; // --out-dir
    std::string maxShardSize; // --max-shard-size: "5GB", "2GiB", bytes (empty: one file)
    std::string dtype;
    std::string stripPrefix;
    std::string addPrefix;
    bool ema = false;
    std::string weights;  // --weights: the set of weights used as the model's (a tree path)
    std::vector<std::string> drop;
    bool dropOptimizer = false;
    bool keepDevice = false;
    bool applyPruning = false;  // --apply-pruning: X = X_orig * X_mask, as prune.remove
    std::string mergeLora;      // --merge-lora: a PEFT adapter (folder or adapter_model file) merged in
    std::string config;        // JSON
    std::string classNames;    // a,b,c
    std::string preprocessing; // JSON
    std::optional<long long> epoch;
    std::optional<double> trainLoss;
    std::optional<double> valLoss;
    bool metadataJson = false;
    bool force = false;
    bool json = false;
    // --to torchscript, and --to full-model from weights: the architecture, as `ckpt predict` takes it.
    std::string arch;
    std::string archSpec;
    std::string activation = "relu";
};

// `ckpt convert`: each input to the target format, with edits; plans, writes safely (temporary
// file, read back and compared, renamed; never an input, an existing file only with --force) and
// reports what was kept, dropped, carried and lost. 0 on success, 1 on any error.
int runConvert(const ConvertCliOptions &options, std::ostream &out, std::ostream &err);

} // namespace ckpt::cli
