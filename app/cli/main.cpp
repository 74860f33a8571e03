// ckpt: the command-line twin of Checkpoint Studio. Commands that need no numbers use the format
// layer only and never load LibTorch.
#include "convertcommand.h"
#include "countoption.h"
#include "diffcommand.h"
#include "exportcommand.h"
#include "infocommand.h"
#include "predictcommand.h"
#include "scancommand.h"
#include "tensorscommand.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <regex>

#ifndef CKPT_VERSION
#define CKPT_VERSION "0.0.0"
#endif

namespace {

// CLI11's words for the mistakes a user makes most, as sentences that say what to do.
std::string usageMessage(const std::string &what)
{
    static const std::regex repeated(R"(^(\S+): At Most 1 required but received (\d+)$)");
    std::smatch m;
    if (std::regex_match(what, m, repeated))
        return m[1].str() + " is given " + m[2].str() + " times; it takes one value";
    if (what == "file is required")
        return "a checkpoint file is required";
    if (what == "files is required")
        return "at least one checkpoint file is required";
    return what;
}

// The names torch and training configs also give the floating types (torch.half, "bf16": true,
// torch_dtype "float16"), taken as the type they name; the help already lists them.
CLI::Transformer dtypeAliases()
{
    CLI::Transformer t(std::map<std::string, std::string>{{"fp16", "float16"},
                                                          {"half", "float16"},
                                                          {"bf16", "bfloat16"},
                                                          {"fp32", "float32"},
                                                          {"float", "float32"},
                                                          {"fp64", "float64"},
                                                          {"double", "float64"}});
    t.description("");
    return t;
}

} // namespace

int main(int argc, char **argv)
{
    CLI::App app{"ckpt — inspect PyTorch checkpoints without Python and without running their code", "ckpt"};
    app.set_version_flag("--version", std::string("ckpt ") + CKPT_VERSION);
    app.require_subcommand(1);
    app.failure_message([](const CLI::App *, const CLI::Error &e) {
        return "ckpt: " + usageMessage(e.what()) + "\nRun with --help for more information.\n";
    });

    ckpt::cli::InfoOptions info;
    auto *infoCmd = app.add_subcommand("info", "Summarise a checkpoint: format, kind, state dict, optimizer, metadata");
    infoCmd->add_option("file", info.file, "Checkpoint file (.pth .pt .ckpt .bin .tar)")->required();
    infoCmd->add_flag("--json", info.json, "Print a stable JSON document instead of text (state_dict.parameters as model.parameters() counts them; exact only for a model saved whole, see parameters_exact)");
    infoCmd->add_option("--weights", info.weights, "Use the set of weights at PATH as the model's (a tree path as ckpt info "
                                                   "lists them: ema_state_dict, netD, state_dict/student)")
        ->type_name("PATH");

    ckpt::cli::ScanOptions scan;
    auto *scanCmd = app.add_subcommand(
        "scan", "Say what each file would do if loaded in Python: its globals, dangerous ones flagged. "
                "Exit 0: nothing dangerous; 3: something dangerous (also when another file could not be read); 1: a file could not be read");
    scanCmd->add_option("files", scan.files, "Checkpoint files")->required();
    scanCmd->add_flag("--json", scan.json, "Print JSON");
    scanCmd->add_flag("--verbose", scan.verbose, "List the understood globals too (by default only counted)");

    ckpt::cli::TensorsOptions tensors;
    auto *tensorsCmd = app.add_subcommand("tensors", "List the tensors (the state dict, or every tensor), with statistics");
    tensorsCmd->add_option("file", tensors.file, "Checkpoint file")->required();
    tensorsCmd->add_flag("--stats", tensors.stats, "Compute min, max, mean, std, L2 norm, zero fraction, NaN and Inf counts");
    tensorsCmd->add_option("--filter", tensors.filter,
                           "Only tensors whose name contains TEXT (case-insensitive, in any script: ü finds Ü)");
    tensorsCmd->add_flag("--json", tensors.json, "Print JSON");
    tensorsCmd->add_option("--weights", tensors.weights, "List the set of weights at PATH as the model's (a tree path as ckpt "
                                                         "info lists them: ema_state_dict, netD, state_dict/student)")
        ->type_name("PATH");

    ckpt::cli::ShowOptions show;
    auto *showCmd = app.add_subcommand("show", "Show one tensor (summary, statistics, first values) or any entry");
    showCmd->add_option("file", show.file, "Checkpoint file")->required();
    showCmd->add_option("key", show.key, "State-dict name (fc1.weight) or top-level key as written, else tree path (model_state_dict/fc1.weight)")->required();
    showCmd->add_option("--limit", show.limit, "How many values to print (default 100; 0: none, only the summary and statistics)")
        ->check(ckpt::cli::countOption(0, INT64_MAX, "the number of values to print is a whole number, 0 or more"));
    showCmd->add_option("--histogram", show.histogram,
                        "Also count the finite values in BINS equal bins (as torch.histc on the values in float64; "
                        "1 to 1000000 bins)")
        ->check(ckpt::cli::countOption(1, 1000000, "the number of histogram bins is a whole number from 1 to 1000000"));
    showCmd->add_flag("--json", show.json, "Print indented JSON");
    showCmd->add_option("--weights", show.weights,
                        "Look state-dict names up in the set of weights at PATH (a tree path as ckpt info lists them)")
        ->type_name("PATH");

    ckpt::cli::ExportOptions exportOptions;
    auto *exportCmd = app.add_subcommand("export", "Write one tensor to a .npy or .csv file");
    exportCmd->add_option("file", exportOptions.file, "Checkpoint file")->required();
    exportCmd->add_option("key", exportOptions.key, "State-dict name or top-level key as written, else tree path of the tensor")->required();
    exportCmd->add_option("-o,--output", exportOptions.output, "Output file (.npy, or .csv: a row per index of the leading dimensions, a column per index of the last)")->required();
    exportCmd->add_flag("--force", exportOptions.force, "Replace an existing output file");
    exportCmd->add_option("--weights", exportOptions.weights,
                          "Look state-dict names up in the set of weights at PATH (a tree path as ckpt info lists them)")
        ->type_name("PATH");

    ckpt::cli::ConvertCliOptions convert;
    auto *convertCmd = app.add_subcommand(
        "convert", "Convert checkpoints: state dict, training checkpoint, inference package, full model, safetensors, TorchScript");
    convertCmd->add_option("files", convert.files, "Checkpoint files to convert")->required();
    convertCmd->add_option("--to", convert.to, "Target: state-dict, checkpoint, inference, full-model, safetensors, torchscript")
        ->required()
        ->check(CLI::IsMember({"state-dict", "checkpoint", "inference", "full-model", "safetensors", "torchscript"}));
    auto *convertArch =
        convertCmd->add_option("--arch", convert.arch, "--to torchscript: a TorchScript file of the same model, for a state dict");
    convertCmd->add_option("--arch-spec", convert.archSpec, "--to torchscript/full-model/inference: the layers as JSON (text or a .json file)")
        ->excludes(convertArch);
    convertCmd->add_option("--activation", convert.activation, "--to torchscript/full-model: activation of an inferred MLP (default relu)");
    convertCmd->add_option("-o,--output", convert.output, "Output file (one input only)");
    convertCmd->add_option("--out-dir", convert.outDir, "Folder for the outputs, made when missing (default: beside each input)");
    convertCmd->add_option("--max-shard-size", convert.maxShardSize,
                           "--to state-dict/safetensors: shards of at most SIZE (5GB, 500MB, 2GiB, bytes) with an index, as transformers writes them");
    convertCmd->add_option("--dtype", convert.dtype,
                           "Cast floating tensors: float16, bfloat16, float32 or float64 (also fp16, half, bf16, fp32, "
                           "float, fp64, double)")
        ->check(CLI::IsMember({"float16", "bfloat16", "float32", "float64"}))
        ->transform(dtypeAliases());
    convertCmd->add_option("--strip-prefix", convert.stripPrefix, "Remove a key prefix (module., model., _orig_mod.)");
    convertCmd->add_option("--add-prefix", convert.addPrefix, "Add a key prefix");
    convertCmd->add_flag("--ema", convert.ema, "Use the EMA weights as the model's");
    convertCmd->add_option("--weights", convert.weights,
                           "Write the set of weights at PATH as the model's (a tree path as ckpt info lists them: netD, "
                           "ema_state_dict, state_dict/student); the former model weights are left out like any other "
                           "set. Not with --ema")
        ->type_name("PATH");
    convertCmd->add_option("--drop", convert.drop, "Leave out keys matching a glob PATTERN (repeatable)")
        ->allow_extra_args(false);
    convertCmd->add_flag("--drop-optimizer", convert.dropOptimizer, "Leave out optimizer, scheduler, GradScaler and RNG state");
    convertCmd->add_flag("--keep-device", convert.keepDevice, "Keep saved device tags (default: written as cpu)");
    convertCmd->add_flag("--apply-pruning", convert.applyPruning,
                         "Make torch.nn.utils.prune's pruning permanent, as prune.remove does: each X_orig and X_mask "
                         "become X = X_orig * X_mask, which the unpruned model loads");
    convertCmd->add_option("--merge-lora", convert.mergeLora,
                           "Merge a PEFT LoRA adapter (its folder, or adapter_model file) into the weights, as merge_and_unload");
    convertCmd->add_option("--config", convert.config, "model_config as JSON");
    convertCmd->add_option("--class-names", convert.classNames, "class_names, comma-separated");
    convertCmd->add_option("--preprocessing", convert.preprocessing, "preprocessing as JSON ({\"mean\": [...], \"std\": [...]})");
    convertCmd->add_option("--epoch", convert.epoch, "epoch of a checkpoint");
    convertCmd->add_option("--train-loss", convert.trainLoss, "train_loss of a checkpoint");
    convertCmd->add_option("--val-loss", convert.valLoss, "val_loss of a checkpoint");
    convertCmd->add_flag("--metadata-json", convert.metadataJson, "Also write <name>_metadata.json (always for inference)");
    convertCmd->add_flag("--force", convert.force,
                         "Replace existing output files; a previous output under the name is replaced whole (its "
                         "shards, index or single file that the new one does not name are removed after the write)");
    convertCmd->add_flag("--json", convert.json, "Print the plan and result as JSON");

    ckpt::cli::DiffOptions diff;
    auto *diffCmd = app.add_subcommand("diff", "Compare two checkpoints: added, removed and changed tensors, per-module change, "
                                               "metadata and optimizer; exit 0 when the weights are equal within tolerance, 1 when "
                                               "they differ, 2 on error");
    diffCmd->add_option("before", diff.a, "First checkpoint (the reference)")->required();
    diffCmd->add_option("after", diff.b, "Second checkpoint")->required();
    diffCmd->add_option("--atol", diff.atol, "Absolute tolerance, 0 or more (default 0: exact)")
        ->check(ckpt::cli::toleranceOption("the absolute tolerance is a number, 0 or more, as torch.isclose takes it"));
    diffCmd->add_option("--rtol", diff.rtol, "Relative tolerance, of |b|, 0 or more (default 0)")
        ->check(ckpt::cli::toleranceOption("the relative tolerance is a number, 0 or more, as torch.isclose takes it"));
    diffCmd->add_option("--map", diff.mappings, "Rename a's keys starting with OLD to start with NEW (OLD=NEW; repeatable)")
        ->allow_extra_args(false);
    diffCmd->add_flag("--json", diff.json, "Print JSON");
    diffCmd->add_option("--weights", diff.weights,
                        "Compare the sets of weights at PATH (a tree path as ckpt info lists them): given once, in both "
                        "files; given twice, the first file's then the second's (--weights model --weights ema "
                        "compares a file's weights with its EMA; an empty PATH keeps that file's own)")
        ->allow_extra_args(false)
        ->type_name("PATH");

    ckpt::cli::SeriesOptions series;
    auto *seriesCmd = app.add_subcommand("series", "Per-tensor norm and drift across the checkpoints of one run");
    seriesCmd->add_option("files", series.files, "Checkpoints (ordered by their epoch/step, else by name)")->required();
    seriesCmd->add_flag("--json", series.json, "Print JSON");
    seriesCmd->add_option("--weights", series.weights,
                          "Follow the set of weights at PATH in every file (a tree path as ckpt info lists them)")
        ->type_name("PATH");

    ckpt::cli::PredictCommandOptions predict;
    auto *predictCmd = app.add_subcommand(
        "predict", "Run the file's model on inputs, with the package's normalisation: logits, probabilities, top classes");
    predictCmd->add_option("file", predict.file, "Checkpoint, full model, inference package or TorchScript file")->required();
    auto *archOpt = predictCmd->add_option("--arch", predict.arch, "TorchScript file of the same model to load the weights into");
    predictCmd->add_option("--arch-spec", predict.archSpec, "Architecture as a JSON list of layers (text or a .json file)")
        ->excludes(archOpt);
    predictCmd->add_option("--activation", predict.activation,
                           "Activation between the layers of an MLP inferred from the weights (relu, tanh, sigmoid, gelu, "
                           "silu, elu, leaky_relu, none; default relu)");
    auto *inputOpt = predictCmd->add_option("--input", predict.inputs, "One sample's values, \"v1,v2,...\" (repeat for a batch)")
                          ->allow_extra_args(false);
    predictCmd->add_option("--input-shape", predict.inputShape,
                           "One sample's shape, C,H,W for a picture (as the pane's Sample shape field): the size "
                           "a fixed-size TorchScript model takes")
        ->type_name("C,H,W");
    predictCmd->add_option("--input-file", predict.inputFile, "Samples from a .csv (one per row) or .npy file, or an image (.png, .jpg, .bmp) for a convolutional model")->excludes(inputOpt);
    predictCmd->add_option("--device", predict.device, "cpu (default), cuda or cuda:N")
        ->check(CLI::Validator(
            [](std::string &v) -> std::string {
                static const std::regex device(R"(cpu|cuda(:[0-9]+)?)");
                return std::regex_match(v, device) ? std::string() : "a device is cpu, cuda or cuda:N (not '" + v + "')";
            },
            "cpu|cuda[:N]"));
    predictCmd->add_option("--dtype", predict.dtype,
                           "Precision of the weights and inputs: float32 (default), float16 or bfloat16 (where the "
                           "device runs it: see ckpt devices; also fp32, fp16, half, bf16)")
        ->check(CLI::IsMember({"float32", "float16", "bfloat16"}))
        ->transform(dtypeAliases());
    predictCmd->add_flag("--half", predict.half, "Run in float16 (--dtype float16)");
    predictCmd->add_option("--repeat", predict.repeat,
                           "Run the batch N times and report each forward pass's latency (the median is shown; "
                           "1 to 10000, default 1)")
        ->check(ckpt::cli::countOption(1, 10000, "the number of runs is a whole number from 1 to 10000"));
    predictCmd->add_flag("--no-normalize", predict.noNormalize, "Do not apply the package's input mean/std");
    predictCmd->add_option("--top", predict.top, "How many top classes to list (default 5; 1 or more)")
        ->check(ckpt::cli::countOption(1, INT32_MAX, "the number of top classes is a whole number, 1 or more"));
    predictCmd->add_option("--probabilities", predict.probabilities,
                           "How outputs become probabilities: auto (default: softmax; sigmoid for one output; as the "
                           "model gives them when it ends in Softmax, Sigmoid or LogSoftmax), softmax, sigmoid (each "
                           "output on its own: multi-label), none (the outputs are values, e.g. a regression's)")
        ->check(CLI::IsMember({"auto", "softmax", "sigmoid", "none"}));
    predictCmd->add_flag("--json", predict.json, "Print JSON");
    predictCmd->add_flag("--show-arch", predict.showArchitecture, "Print the architecture that would run, and stop");
    predictCmd->add_option("--export-torchscript", predict.exportTorchScript,
                           "Also write the model with its weights as a TorchScript file (torch.jit.load runs it)");
    predictCmd->add_flag("--force", predict.force, "Replace an existing export file");
    predictCmd->add_option("--weights", predict.weights,
                           "Run the set of weights at PATH (a tree path as ckpt info lists them: netD, ema_state_dict)")
        ->type_name("PATH");

    ckpt::cli::DevicesCommandOptions devicesOptions;
    auto *devicesCmd = app.add_subcommand(
        "devices", "List where predictions can run: CPU and CUDA devices with name, memory and precisions");
    devicesCmd->add_flag("--json", devicesOptions.json, "Print JSON");

    // A word that names no command is said so (CLI11 would only say that one is required).
    if (argc > 1 && argv[1][0] != '-') {
        const auto subs = app.get_subcommands([](const CLI::App *) { return true; });
        if (std::none_of(subs.begin(), subs.end(), [&](const CLI::App *s) { return s->get_name() == argv[1]; })) {
            std::string names;
            for (const auto *s : subs)
                names += (names.empty() ? "" : ", ") + s->get_name();
            std::cerr << "ckpt: unknown command '" << argv[1] << "' (commands: " << names << ")\n"
                      << "Run with --help for more information.\n";
            return 2;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        // --help and --version exit 0; every mistake in the command line exits 2, whatever
        // CLI11's own code for it, so that scripts tell it from a file that cannot be read.
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (devicesCmd->parsed())
        return ckpt::cli::runDevices(devicesOptions, std::cout, std::cerr);
    if (infoCmd->parsed())
        return ckpt::cli::runInfo(info, std::cout, std::cerr);
    if (convertCmd->parsed())
        return ckpt::cli::runConvert(convert, std::cout, std::cerr);
    if (exportCmd->parsed())
        return ckpt::cli::runExport(exportOptions, std::cout, std::cerr);
    if (tensorsCmd->parsed())
        return ckpt::cli::runTensors(tensors, std::cout, std::cerr);
    if (showCmd->parsed())
        return ckpt::cli::runShow(show, std::cout, std::cerr);
    if (diffCmd->parsed())
        return ckpt::cli::runDiff(diff, std::cout, std::cerr);
    if (seriesCmd->parsed())
        return ckpt::cli::runSeries(series, std::cout, std::cerr);
    if (predictCmd->parsed())
        return ckpt::cli::runPredict(predict, std::cout, std::cerr);
    if (scanCmd->parsed())
        return ckpt::cli::runScan(scan, std::cout, std::cerr);
    return 2;
}
