#include "convertcommand.h"

#include "predictcommand.h"

#include "architecture.h"
#include "atomicwrite.h"
#include "clicommon.h"
#include "computeloader.h"
#include "convert.h"
#include "document.h"
#include "error.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <ostream>
#include <sstream>

namespace ckpt::cli {

namespace {
nlohmann::ordered_json parseJsonOption(const std::string &what, const std::string &text)
{
    try {
        return nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::exception &e) {
        throw FormatError(what + " is not valid JSON: " + e.what());
    }
}

// --dtype as a cast: none when not given; FormatError for a name that is not a floating type.
std::optional<DType> castOption(const std::string &name)
{
    if (name.empty())
        return std::nullopt;
    const auto t = castDTypeFromName(name);
    if (!t)
        throw FormatError("--dtype must be float16, bfloat16, float32 or float64 (got '" + name + "')");
    return t;
}

ConvertOptions toOptions(const ConvertCliOptions &c)
{
    ConvertOptions o;
    const auto target = convertTargetFromName(c.to);
    if (!target)
        throw FormatError("--to must be one of state-dict, checkpoint, inference, full-model, safetensors");
    o.target(*target);
    if (const auto t = castOption(c.dtype))
        o.dtype(*t);
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
// file Python's torch.jit.load runs; the module `ckpt predict --export-torchscript` writes. The
// weight edits apply first (--drop, --strip-prefix, --add-prefix, --ema, as for a state dict), then
// --dtype casts the module's floating parameters and buffers; metadata options have nowhere to go.
int convertToTorchScript(const ConvertCliOptions &c, std::ostream &out, std::ostream &err)
{
    std::optional<DType> cast;  // none: the weights as they are
    ConvertOptions edits;
    bool edited = false;
    try {
        if (!c.output.empty() && c.files.size() != 1)
            throw FormatError("-o names one output: give one input, or use --out-dir");
        if (!c.output.empty() && !c.outDir.empty())
            throw FormatError("give -o or --out-dir, not both");
        if (!c.config.empty() || !c.preprocessing.empty() || !c.classNames.empty() || c.epoch || c.trainLoss ||
            c.valLoss || c.metadataJson || c.keepDevice || c.dropOptimizer)
            throw FormatError("a TorchScript file holds the module and its weights only: --config, --preprocessing, "
                              "--class-names, --epoch, the losses, --metadata-json, --keep-device and --drop-optimizer "
                              "do not apply to --to torchscript");
        cast = castOption(c.dtype);  // done by LibTorch on the module, not by the planner
        edits.target(ConvertTarget::StateDict).stripPrefix(c.stripPrefix).addPrefix(c.addPrefix).ema(c.ema);
        for (const auto &d : c.drop)
            edits.drop(d);
        edited = !c.stripPrefix.empty() || !c.addPrefix.empty() || c.ema || !c.drop.empty();
    } catch (const std::exception &e) {
        err << "ckpt: " << e.what() << '\n';
        return 1;
    }
    const std::string dtype = cast ? std::string(dtypeName(*cast)) : std::string();
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    int status = 0;
    for (const auto &file : c.files) {
        try {
            const std::string output =
                c.output.empty() ? defaultOutputPathFor(file, "_torchscript", ".pt", cast, c.outDir) : c.output;
            Document doc = keepUntilExit(readDocument(file));
            std::vector<ConversionPlan::Loss> dropped;
            std::vector<std::string> warnings;
            if (edited) {
                if (doc.format == ContainerFormat::TorchScript)
                    throw FormatError(file + ": the file is TorchScript: its module is exported as it is; --drop, "
                                      "--strip-prefix, --add-prefix and --ema do not apply");
                const ConversionPlan plan = planConversion(doc, output, edits);
                doc.stateDict.clear();
                for (const auto &e : plan.root->entries())
                    doc.stateDict.push_back({keyText(*e.key), e.value});
                dropped = plan.dropped;
                warnings = plan.warnings;
            }
            const Architecture arch = resolveArchitecture(doc, architectureRequest(c.arch, c.archSpec, c.activation));
            const auto predictor = ComputeLoader::api().predictor(doc, arch);
            const std::string bytes = predictor->torchScriptBytes(dtype);
            WriteOptions w = WriteOptions().allowOverwrite(c.force).protect(file);
            if (!c.arch.empty())
                w.protect(c.arch);
            writeFileAtomically(output, {reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()}, w);
            std::vector<std::string> notes = predictor->notes();
            for (const auto &a : arch.assumptions)
                notes.push_back("architecture: " + a);
            if (c.json) {
                nlohmann::ordered_json d = nlohmann::ordered_json::array();
                for (const auto &l : dropped)
                    d.push_back({{"entry", l.entry}, {"reason", l.reason}});
                all.push_back({{"input", file},
                               {"output", output},
                               {"target", "torchscript"},
                               {"dtype", dtype.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(dtype)},
                               {"bytes", bytes.size()},
                               {"architecture", {{"source", sourceName(arch.source)}, {"exact", arch.exact}}},
                               {"dropped", d},
                               {"warnings", warnings},
                               {"notes", notes}});
            } else {
                out << file << " -> " << output << " (torchscript" << (dtype.empty() ? "" : ", " + dtype) << ")\n";
                out << "  architecture: " << sourceName(arch.source) << (arch.exact ? " (exact)" : " (not exact)") << '\n';
                for (const auto &l : dropped)
                    out << "  dropped " << l.entry << ": " << l.reason << '\n';
                for (const auto &wn : warnings)
                    out << "  warning: " << wn << '\n';
                for (const auto &n : notes)
                    out << "  note: " << n << '\n';
                out << "  wrote " << output << ": " << bytes.size() << " bytes of TorchScript\n";
            }
        } catch (const std::exception &e) {
            status = reportError(err, file, e);
        }
    }
    if (c.json)
        out << (c.files.size() == 1 && all.size() == 1 ? all[0] : all).dump(2) << '\n';
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
