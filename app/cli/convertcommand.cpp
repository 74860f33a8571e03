#include "convertcommand.h"

#include "predictcommand.h"

#include "clicommon.h"
#include "convert.h"
#include "document.h"
#include "error.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <ostream>
#include <sstream>

namespace ckpt::cli {

namespace {
nlohmann::json parseJsonOption(const std::string &what, const std::string &text)
{
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception &e) {
        throw FormatError(what + " is not valid JSON: " + e.what());
    }
}

ConvertOptions toOptions(const ConvertCliOptions &c)
{
    ConvertOptions o;
    const auto target = convertTargetFromName(c.to);
    if (!target)
        throw FormatError("--to must be one of state-dict, checkpoint, inference, full-model, safetensors");
    o.target(*target);
    if (!c.dtype.empty()) {
        const auto t = castDTypeFromName(c.dtype);
        if (!t)
            throw FormatError("--dtype must be float16, bfloat16 or float32 (got '" + c.dtype + "')");
        o.dtype(*t);
    }
    o.stripPrefix(c.stripPrefix).addPrefix(c.addPrefix).ema(c.ema).dropTrainingState(c.dropOptimizer);
    o.keepDevice(c.keepDevice).metadataJson(c.metadataJson).force(c.force);
    for (const auto &d : c.drop)
        o.drop(d);
    if (!c.config.empty())
        o.modelConfig(parseJsonOption("--config", c.config));
    if (!c.preprocessing.empty())
        o.preprocessing(parseJsonOption("--preprocessing", c.preprocessing));
    if (!c.classNames.empty()) {
        std::vector<std::string> names;
        std::stringstream ss(c.classNames);
        for (std::string part; std::getline(ss, part, ',');)
            names.push_back(part);
        o.classNames(std::move(names));
    }
    if (c.epoch)
        o.epoch(*c.epoch);
    o.losses(c.trainLoss, c.valLoss);
    o.arch(architectureRequest(c.arch, c.archSpec, c.activation));
    return o;
}

// The plan, printed before anything is written: what is kept, dropped, carried and not written.
void printPlan(std::ostream &out, const ConversionPlan &plan)
{
    out << plan.input << " -> " << plan.output << " (" << convertTargetName(plan.target) << ")\n";
    out << "  kept " << plan.kept.size() << " keys";
    if (!plan.dropped.empty())
        out << ", dropped " << plan.dropped.size();
    out << "; tensors " << plan.bytesBefore << " -> " << plan.bytesAfter << " bytes\n";
    for (const auto &d : plan.dropped)
        out << "  dropped " << d.entry << ": " << d.reason << '\n';
    for (const auto &c : plan.carried)
        out << "  carried " << c << '\n';
    for (const auto &l : plan.lost)
        out << "  not written: " << l.entry << ": " << l.reason << '\n';
    for (const auto &p : plan.detectedPrefixes)
        out << "  every key starts with '" << p << "' (remove it with --strip-prefix " << p << ")\n";
    for (const auto &w : plan.warnings)
        out << "  warning: " << w << '\n';
    out.flush();
}

void printResult(std::ostream &out, const ConversionResult &result)
{
    out << "  wrote " << result.output << ": " << result.bytes << " bytes, read back and verified\n";
    if (!result.sidecarPath.empty())
        out << "  wrote " << result.sidecarPath << '\n';
}
} // namespace

namespace {

// `--to torchscript`: the file's architecture (or the one given) with its weights, as a TorchScript
// file Python's torch.jit.load runs; the same export as `ckpt predict --export-torchscript`.
int convertToTorchScript(const ConvertCliOptions &options, std::ostream &out, std::ostream &err)
{
    if (!options.output.empty() && options.files.size() != 1) {
        err << "ckpt: -o names one output: give one input, or use --out-dir\n";
        return 1;
    }
    int status = 0;
    for (const auto &file : options.files) {
        PredictCommandOptions p;
        p.file = file;
        p.arch = options.arch;
        p.archSpec = options.archSpec;
        p.activation = options.activation;
        p.force = options.force;
        if (!options.output.empty()) {
            p.exportTorchScript = options.output;
        } else {
            const std::filesystem::path in(file);
            const std::filesystem::path dir = options.outDir.empty() ? in.parent_path() : std::filesystem::path(options.outDir);
            p.exportTorchScript = (dir / (in.stem().string() + "_torchscript.pt")).string();
        }
        if (runPredict(p, out, err) != 0)
            status = 1;
    }
    return status;
}

} // namespace

int runConvert(const ConvertCliOptions &options, std::ostream &out, std::ostream &err)
{
    if (options.to == "torchscript")
        return convertToTorchScript(options, out, err);
    ConvertOptions o;
    try {
        o = toOptions(options);
        if (!options.output.empty() && options.files.size() != 1)
            throw FormatError("-o names one output: give one input, or use --out-dir");
        if (!options.output.empty() && !options.outDir.empty())
            throw FormatError("give -o or --out-dir, not both");
    } catch (const std::exception &e) {
        err << "ckpt: " << e.what() << '\n';
        return 1;
    }
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    int status = 0;
    for (const auto &file : options.files) {
        try {
            const Document doc = readDocument(file);
            const std::string output =
                options.output.empty() ? defaultOutputPath(file, o, options.outDir) : options.output;
            const ConversionPlan plan = planConversion(doc, output, o);
            if (!options.json)
                printPlan(out, plan);
            const ConversionResult result = executeConversion(doc, plan, o);
            if (options.json)
                all.push_back(conversionToJson(plan, &result));
            else
                printResult(out, result);
        } catch (const std::exception &e) {
            status = reportError(err, file, e);
        }
    }
    if (options.json)
        out << (options.files.size() == 1 && all.size() == 1 ? all[0] : all).dump(2) << '\n';
    return status;
}

} // namespace ckpt::cli
