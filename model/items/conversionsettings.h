#pragma once

#include "convert.h"

#include <QMap>
#include <QString>
#include <QStringList>

#include <optional>

namespace ckpt {

struct Document;

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
    bool sidecar = false;    // metadata JSON sidecar (always written for inference)
    QStringList drops;       // glob patterns
    QString outDir;          // empty: beside the input
    QString architecture;    // full model from weights: a JSON list of layers (empty: the package's
                             // own spec, else a chain of Linear layers read from the weights)
    std::optional<QString> config, classNames, preprocessing, epoch, trainLoss, valLoss;
};

// The fields above that a file can supply, by name ("config", "classNames", "preprocessing",
// "epoch", "trainLoss", "valLoss"), as text the options panel shows (JSON, or "a, b" for names).
QMap<QString, QString> sourceValueTexts(const Document &doc);

// Whether converting to `target` writes the value of the settings field `field` ("config",
// "classNames", "preprocessing", "epoch", "trainLoss", "valLoss", "architecture"): the engine's
// own targetWrites for that field.
bool targetUsesField(ConvertTarget target, QStringView field);

// The engine's words (planConversion's reasons, warnings and errors name `ckpt convert`'s options)
// as this panel says them: "--to checkpoint" becomes "the Checkpoint target", "--epoch" "the Epoch
// field", "--drop 'x'" "Drop keys: 'x'". Text without options comes back unchanged.
QString panelWording(const std::string &engineText);

// The engine's options for `settings` (without progress or force); values the target does not
// write are left out (a full model would refuse them). Throws FormatError saying
// which field is wrong (JSON that does not parse, an epoch that is not a whole number).
ConvertOptions toConvertOptions(const ConversionSettings &settings, ConvertTarget target);

// Where the output goes: `<stem>_<target>...` beside the input or in the chosen folder.
QString outputPathFor(const QString &input, const ConversionSettings &settings, ConvertTarget target);

// "State dict", "Checkpoint", ... for each target.
QString convertTargetLabel(ConvertTarget target);

} // namespace ckpt
