#pragma once

#include "convert.h"

#include <QMap>
#include <QString>
#include <QStringList>

#include <optional>

namespace ckpt {

struct Document;

// A target of the conversion pane: the engine's ConvertTarget values (the same numbers) and
// TorchScript, which the compute module writes as `ckpt convert --to torchscript` does (the
// file's architecture with its weights, for torch.jit.load; planScriptExport/executeScriptExport).
enum class PaneTarget { StateDict, Checkpoint, Inference, FullModel, Safetensors, TorchScript };

PaneTarget paneTarget(ConvertTarget target);
// The engine's target; none for TorchScript, which planConversion does not write.
std::optional<ConvertTarget> engineTarget(PaneTarget target);
// "state-dict", ... as `ckpt convert --to` names them; "torchscript".
QString paneTargetName(PaneTarget target);

// What the conversion pane's options panel holds for one queued file, as the user typed it.
// The values a file carries (config, class names, ...) are unset until the user edits them:
// unset, the engine takes them from the source itself.
struct ConversionSettings {
    QString dtype;           // "" (keep), "float16", "bfloat16", "float32"
    QString stripPrefix;
    QString addPrefix;
    bool ema = false;
    bool dropOptimizer = false;
    bool keepDevice = false;
    bool applyPruning = false;  // torch.nn.utils.prune's X_orig * X_mask written as X (`--apply-pruning`)
    QString loraAdapter;     // a PEFT LoRA adapter (folder or adapter_model file) merged in (`--merge-lora`)
    QString maxShardSize;    // "5GB", "2GiB": Hub shards with an index (`--max-shard-size`); empty: one file
    bool sidecar = false;    // metadata JSON sidecar (always written for inference)
    QStringList drops;       // glob patterns
    QString outDir;          // empty: beside the input
    QString architecture;    // full model from weights and TorchScript: a JSON list of layers (empty:
                             // the file's own module, else the package's spec, else a chain of
                             // Linear layers read from the weights)
    QString architectureScript;  // TorchScript only: a TorchScript file of the same model, whose
                                 // architecture gets the weights (`ckpt convert --arch`); given with
                                 // the layers above, the plan refuses both, as the command line does
    QString activation = QStringLiteral("relu");  // between the Linear layers of that inferred chain
    std::optional<QString> config, classNames, preprocessing, epoch, trainLoss, valLoss;
};

// The fields above that a file can supply, by name ("config", "classNames", "preprocessing",
// "epoch", "trainLoss", "valLoss"), as text the options panel shows (JSON, or "a, b" for names).
QMap<QString, QString> sourceValueTexts(const Document &doc);

// Whether converting to `target` writes the value of the settings field `field` ("config",
// "classNames", "preprocessing", "epoch", "trainLoss", "valLoss", "architecture", "activation",
// "architectureScript"): the engine's own targetWrites for that field. TorchScript takes the
// architecture and the weight edits only; "sidecar", "keepDevice" and "dropOptimizer" apply to
// every target but TorchScript (`ckpt convert --to torchscript` refuses them); "architectureScript"
// to TorchScript alone (a full model is a pickled tree of standard layers, which a TorchScript
// architecture cannot become).
bool targetUsesField(PaneTarget target, QStringView field);

// The engine's words (planConversion's reasons, warnings and errors name `ckpt convert`'s options)
// as this panel says them: "--to checkpoint" becomes "the Checkpoint target", "--epoch" "the Epoch
// field", "--drop 'x'" "Drop keys: 'x'"; what to give for an architecture depends on `target`
// (only TorchScript takes a TorchScript file). Text without options comes back unchanged.
QString panelWording(const std::string &engineText, std::optional<PaneTarget> target = std::nullopt);

// The engine's options for `settings` (without progress or force); values the target does not
// write are left out (a full model would refuse them). A LoRA adapter is read (a FormatError when it
// cannot be); the function that computes the merge (ConvertOptions::loraCompute) is the caller's.
// For TorchScript: the weight edits and the dtype of a state dict, as planScriptExport takes them.
// Throws FormatError saying which field is wrong (JSON that does not parse, an epoch that is not a
// whole number, a max shard size parseShardSize refuses).
ConvertOptions toConvertOptions(const ConversionSettings &settings, PaneTarget target);

// The architecture the Architecture, Architecture file and Activation fields ask for of `target`
// (neither given: the file's own); the TorchScript file only where the target uses it.
ArchitectureRequest architectureRequestFor(const ConversionSettings &settings, PaneTarget target);

// Where the output goes: `<stem>_<target>...` beside the input or in the chosen folder; for
// TorchScript `<stem>_torchscript[_fp16].pt`, as `ckpt convert --to torchscript` names it.
QString outputPathFor(const QString &input, const ConversionSettings &settings, PaneTarget target);

// "State dict", "Checkpoint", ..., "TorchScript" for each target.
QString convertTargetLabel(PaneTarget target);
inline QString convertTargetLabel(ConvertTarget target) { return convertTargetLabel(paneTarget(target)); }

} // namespace ckpt
