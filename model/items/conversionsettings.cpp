#include "conversionsettings.h"

#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "metadata.h"

#include <QObject>

namespace ckpt {

namespace {

nlohmann::ordered_json parseJson(const QString &what, const QString &text)
{
    try {
        return nlohmann::ordered_json::parse(text.toStdString());
    } catch (const nlohmann::json::exception &e) {
        throw FormatError(what.toStdString() + " is not valid JSON: " + e.what());
    }
}

// A value's JSON for a field: invalid UTF-8 replaced (a saved string need not be UTF-8), and
// a text too large for a line edit said so rather than shown (the file's value is kept unless edited).
QString jsonText(const nlohmann::ordered_json &j)
{
    constexpr std::size_t kMostShown = std::size_t{256} << 10;
    const std::string text = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    if (text.size() > kMostShown)
        return QObject::tr("(%1 KiB of JSON: too large to edit here)").arg(text.size() >> 10);
    return QString::fromStdString(text);
}

bool edited(const std::optional<QString> &v) { return v && !v->trimmed().isEmpty(); }

} // namespace

PaneTarget paneTarget(ConvertTarget target)
{
    switch (target) {
    case ConvertTarget::StateDict: return PaneTarget::StateDict;
    case ConvertTarget::Checkpoint: return PaneTarget::Checkpoint;
    case ConvertTarget::Inference: return PaneTarget::Inference;
    case ConvertTarget::FullModel: return PaneTarget::FullModel;
    case ConvertTarget::Safetensors: return PaneTarget::Safetensors;
    }
    return PaneTarget::StateDict;
}

std::optional<ConvertTarget> engineTarget(PaneTarget target)
{
    switch (target) {
    case PaneTarget::StateDict: return ConvertTarget::StateDict;
    case PaneTarget::Checkpoint: return ConvertTarget::Checkpoint;
    case PaneTarget::Inference: return ConvertTarget::Inference;
    case PaneTarget::FullModel: return ConvertTarget::FullModel;
    case PaneTarget::Safetensors: return ConvertTarget::Safetensors;
    case PaneTarget::TorchScript: return std::nullopt;
    }
    return std::nullopt;
}

QString paneTargetName(PaneTarget target)
{
    const auto engine = engineTarget(target);
    return engine ? QString::fromStdString(convertTargetName(*engine)) : QStringLiteral("torchscript");
}

QMap<QString, QString> sourceValueTexts(const Document &doc)
{
    QMap<QString, QString> out;
    nlohmann::ordered_json mean, stdev;
    // As plain JSON: the text becomes the value when edited, so a value the file shares is
    // written out in full; one JSON cannot hold (a cycle, more than the fields' budget) is shown
    // as info shows it. The fields are line edits on the GUI thread: a few hundred KiB at most.
    PlainJsonBudget budget{std::size_t{256} << 10};
    for (const KnownField &f : knownFields(doc)) {
        const nlohmann::ordered_json j = valueToPlainJsonOrShown(f.value, budget);
        if (f.label == "Model config") {
            out.insert(QStringLiteral("config"), jsonText(j));
        } else if (f.label == "Class names") {
            bool strings = j.is_array();
            QStringList names;
            if (strings)
                for (const auto &e : j) {
                    strings = strings && e.is_string();
                    if (e.is_string())
                        names << QString::fromStdString(e.get<std::string>());
                }
            out.insert(QStringLiteral("classNames"), strings ? names.join(QStringLiteral(", ")) : jsonText(j));
        } else if (f.label == "Preprocessing") {
            out.insert(QStringLiteral("preprocessing"), jsonText(j));
        } else if (f.label == "Input mean") {
            mean = j;
        } else if (f.label == "Input std") {
            stdev = j;
        } else if (f.label == "Epoch") {
            out.insert(QStringLiteral("epoch"), jsonText(j));
        } else if (f.label == "Training loss") {
            out.insert(QStringLiteral("trainLoss"), jsonText(j));
        } else if (f.label == "Validation loss") {
            out.insert(QStringLiteral("valLoss"), jsonText(j));
        }
    }
    // An inference package keeps input_mean/input_std as two entries: shown as one preprocessing value.
    if (!out.contains(QStringLiteral("preprocessing")) && !mean.is_null() && !stdev.is_null())
        out.insert(QStringLiteral("preprocessing"), jsonText(nlohmann::ordered_json{{"mean", mean}, {"std", stdev}}));
    return out;
}

bool targetUsesField(PaneTarget target, QStringView field)
{
    const auto engine = engineTarget(target);
    if (field == u"sidecar" || field == u"keepDevice" || field == u"dropOptimizer")
        return engine.has_value();
    if (field == u"architectureScript")
        return !engine;  // `ckpt convert --arch` is refused by every other target
    if (field == u"loraAdapter")
        return engine.has_value();  // `--to torchscript --merge-lora` is refused
    if (field == u"maxShardSize")  // the engine splits these two alone
        return target == PaneTarget::StateDict || target == PaneTarget::Safetensors;
    if (field == u"activation")
        field = u"architecture";  // the activation is part of the architecture asked for
    if (!engine)  // TorchScript: the module and its weights only
        return field == u"architecture";
    static const std::pair<QStringView, ConvertField> kFields[] = {
        {u"config", ConvertField::ModelConfig},     {u"classNames", ConvertField::ClassNames},
        {u"preprocessing", ConvertField::Preprocessing}, {u"epoch", ConvertField::Epoch},
        {u"trainLoss", ConvertField::TrainLoss},    {u"valLoss", ConvertField::ValLoss},
        {u"architecture", ConvertField::Architecture},
    };
    for (const auto &[name, f] : kFields)
        if (name == field)
            return targetWrites(*engine, f);
    return false;
}

QString panelWording(const std::string &engineText, std::optional<PaneTarget> target)
{
    QString text = QString::fromStdString(engineText);
    // resolveArchitecture's refusal of both sources names no option.
    text.replace(QLatin1String("give either a TorchScript architecture or a spec, not both"),
                 QLatin1String("give either a TorchScript file in the Architecture file field or the layers in the "
                               "Architecture field, not both"));
    if (!text.contains(QLatin1String("--")))
        return text;
    // What to give when the weights do not say their architecture: a TorchScript file is for the
    // TorchScript target only (a full model is built of standard layers).
    text.replace(QLatin1String("a TorchScript file of the model (--arch) or a spec (--arch-spec)"),
                 target == PaneTarget::TorchScript
                     ? QLatin1String("a TorchScript file of the model (the Architecture file field) or the layers in "
                                     "the Architecture field")
                     : QLatin1String("the layers in the Architecture field"));
    // Longest first: a phrase is replaced before the option it contains.
    static const std::pair<const char *, const char *> kWords[] = {
        {"--arch and --arch-spec do not apply", "the Architecture field does not apply"},
        {"give --arch or --arch-spec", "give the layers in the Architecture field"},
        {"--arch-spec is for --to full-model", "an architecture is for the Full model target"},
        {"--to checkpoint or inference", "the Checkpoint or Inference package target"},
        {"--to inference or --to checkpoint", "the Inference package or Checkpoint target"},
        {"--metadata-json or --to checkpoint", "the metadata JSON sidecar or the Checkpoint target"},
        {"use --to checkpoint to keep it", "the Checkpoint target keeps it"},
        {"--to checkpoint", "the Checkpoint target"},
        {"--to inference", "the Inference package target"},
        {"--to full-model", "the Full model target"},
        {"--to state-dict", "the State dict target"},
        {"--to safetensors", "the Safetensors target"},
        {"--arch/--arch-spec", "an architecture"},
        {"--to torchscript", "the TorchScript target"},
        {"--activation", "the Activation field"},
        {"--arch-spec", "the Architecture field"},
        {"--metadata-json", "the metadata JSON sidecar"},
        {"--drop-optimizer", "'Drop optimizer, scheduler and RNG state'"},
        {"--apply-pruning", "'Apply the pruning'"},
        {"--merge-lora", "the LoRA adapter field"},
        {"--max-shard-size", "Max shard size"},
        {"--drop ", "Drop keys: "},
        {"--drop,", "Drop keys,"},
        {"--strip-prefix", "Strip prefix"},
        {"--add-prefix", "Add prefix"},
        {"--ema", "'Use the EMA weights'"},
        {"--dtype", "Data type"},
        {"--config", "the Model config field"},
        {"--class-names", "the Class names field"},
        {"--preprocessing", "the Preprocessing field"},
        {"--epoch", "the Epoch field"},
        {"--train-loss", "the Training loss field"},
        {"--val-loss", "the Validation loss field"},
    };
    for (const auto &[engine, panel] : kWords)
        text.replace(QLatin1String(engine), QLatin1String(panel));
    return text;
}

ArchitectureRequest architectureRequestFor(const ConversionSettings &s, PaneTarget target)
{
    ArchitectureRequest request;
    request.layers(s.architecture.trimmed().toStdString());
    if (targetUsesField(target, u"architectureScript"))
        request.script(s.architectureScript.trimmed().toStdString());
    if (!s.activation.trimmed().isEmpty())
        request.between(s.activation.trimmed().toStdString());
    return request;
}

ConvertOptions toConvertOptions(const ConversionSettings &s, PaneTarget target)
{
    ConvertOptions o;
    // TorchScript: the weight edits of a state dict (planScriptExport takes them as such).
    o.target(engineTarget(target).value_or(ConvertTarget::StateDict));
    if (!s.dtype.isEmpty()) {
        const auto t = castDTypeFromName(s.dtype.toStdString());
        if (!t)
            throw FormatError("dtype must be float16, bfloat16 or float32 (got '" + s.dtype.toStdString() + "')");
        o.dtype(*t);
    }
    o.stripPrefix(s.stripPrefix.trimmed().toStdString()).addPrefix(s.addPrefix.trimmed().toStdString());
    o.ema(s.ema).applyPruning(s.applyPruning);
    if (targetUsesField(target, u"loraAdapter") && !s.loraAdapter.trimmed().isEmpty())
        o.mergeLora(readLoraAdapter(s.loraAdapter.trimmed().toStdString()), {});
    if (targetUsesField(target, u"maxShardSize") && !s.maxShardSize.trimmed().isEmpty())
        o.shardSize(parseShardSize(s.maxShardSize.trimmed().toStdString()));
    if (targetUsesField(target, u"sidecar"))
        o.dropTrainingState(s.dropOptimizer).keepDevice(s.keepDevice).metadataJson(s.sidecar);
    // TorchScript's architecture goes to planScriptExport (architectureRequestFor), not the plan.
    if (engineTarget(target) && targetUsesField(target, u"architecture"))
        o.arch(architectureRequestFor(s, target));
    for (const QString &d : s.drops)
        if (!d.trimmed().isEmpty())
            o.drop(d.trimmed().toStdString());
    if (edited(s.config) && targetUsesField(target, u"config"))
        o.modelConfig(parseJson(QObject::tr("Model config"), *s.config));
    if (edited(s.preprocessing) && targetUsesField(target, u"preprocessing"))
        o.preprocessing(parseJson(QObject::tr("Preprocessing"), *s.preprocessing));
    if (edited(s.classNames) && targetUsesField(target, u"classNames")) {
        std::vector<std::string> names;
        const QString text = s.classNames->trimmed();
        if (text.startsWith(QLatin1Char('['))) {
            const auto j = parseJson(QObject::tr("Class names"), text);
            if (!j.is_array())
                throw FormatError("Class names must be a JSON list of strings or names separated by commas");
            for (const auto &e : j) {
                if (!e.is_string())
                    throw FormatError("Class names must be a JSON list of strings or names separated by commas");
                names.push_back(e.get<std::string>());
            }
        } else {
            for (const QString &part : text.split(QLatin1Char(',')))
                if (!part.trimmed().isEmpty())
                    names.push_back(part.trimmed().toStdString());
        }
        o.classNames(std::move(names));
    }
    if (edited(s.epoch) && targetUsesField(target, u"epoch")) {
        bool ok = false;
        const qint64 e = s.epoch->trimmed().toLongLong(&ok);
        if (!ok)
            throw FormatError("Epoch must be a whole number (got '" + s.epoch->trimmed().toStdString() + "')");
        o.epoch(e);
    }
    auto loss = [](const std::optional<QString> &v, const char *what) -> std::optional<double> {
        if (!edited(v))
            return std::nullopt;
        bool ok = false;
        const double d = v->trimmed().toDouble(&ok);
        if (!ok)
            throw FormatError(std::string(what) + " must be a number (got '" + v->trimmed().toStdString() + "')");
        return d;
    };
    o.losses(targetUsesField(target, u"trainLoss") ? loss(s.trainLoss, "Training loss") : std::nullopt,
             targetUsesField(target, u"valLoss") ? loss(s.valLoss, "Validation loss") : std::nullopt);
    return o;
}

QString outputPathFor(const QString &input, const ConversionSettings &settings, PaneTarget target)
{
    std::optional<DType> cast;
    if (!settings.dtype.isEmpty())
        cast = castDTypeFromName(settings.dtype.toStdString());
    const auto engine = engineTarget(target);
    if (!engine)  // as `ckpt convert --to torchscript` names it
        return QString::fromStdString(
            defaultOutputPathFor(input.toStdString(), "_torchscript", ".pt", cast, settings.outDir.toStdString()));
    ConvertOptions o;
    o.target(*engine);
    if (cast)
        o.dtype(*cast);
    return QString::fromStdString(defaultOutputPath(input.toStdString(), o, settings.outDir.toStdString()));
}

QString convertTargetLabel(PaneTarget target)
{
    switch (target) {
    case PaneTarget::StateDict: return QObject::tr("State dict");
    case PaneTarget::Checkpoint: return QObject::tr("Checkpoint");
    case PaneTarget::Inference: return QObject::tr("Inference package");
    case PaneTarget::FullModel: return QObject::tr("Full model");
    case PaneTarget::Safetensors: return QObject::tr("Safetensors");
    case PaneTarget::TorchScript: return QObject::tr("TorchScript");
    }
    return {};
}

} // namespace ckpt
