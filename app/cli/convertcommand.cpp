#include "convertcommand.h"

#include "predictcommand.h"
#include "scriptexport.h"

#include "architecture.h"
#include "atomicwrite.h"
#include "clicommon.h"
#include "computeloader.h"
#include "convert.h"
#include "document.h"
#include "error.h"
#include "signalcleanup.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
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

// --ema lays the EMA weights over the model's; --weights chooses which set is the model's. Together
// they would say two things about one choice, and the EMA set --ema finds need not belong to the
// chosen one (a GAN's generator and discriminator may each have one).
// --out-dir names a folder for the outputs: made when it is not there yet (as mkdir -p would), so that
// `ckpt convert run/*.pth --to safetensors --out-dir out/` works in a fresh folder. The folders made
// are listed for the signal handler for as long as the result lives: Ctrl-C before anything is
// written removes them (with rmdir, so only while they are empty), leaving the disk as it was.
using MadeFolders = std::vector<std::unique_ptr<SignalCleanupEntry>>;
MadeFolders makeOutDir(const std::string &dir)
{
    MadeFolders made;
    if (dir.empty())
        return made;
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec))
        return made;
    if (std::filesystem::exists(dir, ec))
        throw FormatError("--out-dir " + dir + ": this is a file, not a folder");
    std::vector<std::filesystem::path> missing;  // deepest first
    for (std::filesystem::path p = std::filesystem::path(dir).lexically_normal(); !p.empty() && !std::filesystem::exists(p, ec);
         p = p.parent_path()) {
        missing.push_back(p);
        if (p == p.parent_path())
            break;
    }
    // The new folders are a chain, each in the one made before it: listed as one entry (the
    // deepest and how many levels), however many there are, as each is made. One found there
    // after all ("out/" is "out" again, or another's) ends the chain: it is never removed.
    int levels = 0;
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        const bool created = std::filesystem::create_directory(*it, ec);
        if (!created && ec)
            throw FormatError("--out-dir " + dir + ": cannot make the folder: " + ec.message());
        if (!created) {
            levels = 0;
            continue;
        }
        auto entry = std::make_unique<SignalCleanupEntry>(it->string(), ++levels);
        if (levels > 1)
            made.pop_back();  // its folders are in the new entry's chain (listed first, then let go)
        made.push_back(std::move(entry));
    }
    return made;
}

// -o names the output file; a folder there is most often meant as --out-dir, which is said.
void refuseFolderOutput(const std::string &output)
{
    std::error_code ec;
    if (!output.empty() && std::filesystem::is_directory(output, ec))
        throw FormatError(output + ": is a folder; -o names the output file (to write into that folder, give --out-dir " +
                          output + ")");
}

void refuseEmaWithWeights(const ConvertCliOptions &c)
{
    if (c.ema && !c.weights.empty())
        throw FormatError("--ema and --weights both choose the model's weights: give one (to write a file's EMA "
                          "weights as the model's, give --weights with the path of the EMA set that `ckpt info` "
                          "lists, such as ema_state_dict)");
}

// A full model's module tree is re-saved whole, root and all: a module chosen with --weights under
// a dict (YOLO's 'ema' beside 'model') would not be what torch.load gives back.
void refuseNestedModuleAsFullModel(const Document &doc, const ConvertCliOptions &c, const ConvertOptions &o)
{
    if (!c.weights.empty() && o.to == ConvertTarget::FullModel && doc.stateDictSource == "module_tree" &&
        !doc.stateDictPath.empty())
        throw FormatError(doc.path + ": --to full-model re-saves the file's whole pickled tree, every set of "
                                     "weights in it, not the module under '" + pathText(doc.stateDictPath) +
                          "' alone: write that module with --to torchscript, or its weights with --to state-dict");
}

ConvertOptions toOptions(const ConvertCliOptions &c)
{
    refuseEmaWithWeights(c);
    ConvertOptions o;
    const auto target = convertTargetFromName(c.to);
    if (!target)
        throw FormatError("--to must be one of state-dict, checkpoint, inference, full-model, safetensors");
    o.target(*target);
    if (const auto t = castOption(c.dtype))
        o.dtype(*t);
    o.stripPrefix(c.stripPrefix).addPrefix(c.addPrefix).ema(c.ema).dropTrainingState(c.dropOptimizer);
    o.keepDevice(c.keepDevice).metadataJson(c.metadataJson).force(c.force).applyPruning(c.applyPruning);
    for (const auto &d : c.drop)
        o.drop(d);
    if (!c.config.empty())
        o.modelConfig(parseJsonOption("--config", c.config));
    if (!c.preprocessing.empty())
        o.preprocessing(parseJsonOption("--preprocessing", c.preprocessing));
    if (!c.classNames.empty()) {
        // "cat, dog" names cat and dog: the spaces around a name are not part of it. A name
        // that is nothing but spaces (",," or a comma at the end) is a mistake, not a class.
        std::vector<std::string> names;
        constexpr const char *kSpace = " \t\r\n\v\f";
        for (std::size_t start = 0;;) {
            const auto comma = c.classNames.find(',', start);
            std::string part = c.classNames.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            const auto first = part.find_first_not_of(kSpace);
            if (first == std::string::npos)
                throw FormatError("--class-names: name " + std::to_string(names.size() + 1) +
                                  " is empty; give the names separated by commas, such as \"cat, dog\"");
            part = part.substr(first, part.find_last_not_of(kSpace) - first + 1);
            names.push_back(std::move(part));
            if (comma == std::string::npos)
                break;
            start = comma + 1;
        }
        o.classNames(std::move(names));
    }
    if (c.epoch)
        o.epoch(*c.epoch);
    o.losses(c.trainLoss, c.valLoss);
    o.arch(architectureRequest(c.arch, c.archSpec, c.activation));
    if (!c.mergeLora.empty()) {
        // Read (and checked) once for every input; the numbers come from the compute module, loaded now
        // so that a missing module is said before any plan.
        auto adapter = readLoraAdapter(c.mergeLora);
        const ComputeApi &api = ComputeLoader::api();
        o.mergeLora(std::move(adapter), [&api](const LoraMergeStep &step) { return api.loraMergedWeight(step); });
    }
    if (!c.maxShardSize.empty())
        o.shardSize(parseShardSize(c.maxShardSize));
    return o;
}

// The plan, printed before anything is written: what is kept, dropped, carried and not written.
void printPlan(std::ostream &out, const ConversionPlan &plan, const std::string &targetLabel = {})
{
    out << plan.input << " -> " << plan.output << " ("
        << (targetLabel.empty() ? convertTargetName(plan.target) : targetLabel) << ")\n";
    out << "  kept " << plan.kept.size() << " keys";
    if (!plan.dropped.empty())
        out << ", dropped " << plan.dropped.size();
    if (plan.bytesBefore != plan.bytesAfter)
        out << "; their tensors " << plan.bytesBefore << " -> " << plan.bytesAfter << " bytes\n";
    else if (plan.bytesBefore)
        out << "; their tensors " << plan.bytesBefore << " bytes\n";
    else
        out << '\n';
    for (const auto &d : plan.dropped)
        out << "  dropped " << d.entry << ": " << d.reason << '\n';
    for (const auto &c : plan.carried)
        out << "  carried " << c << '\n';
    for (const auto &l : plan.lost)
        out << "  not written: " << l.entry << ": " << l.reason << '\n';
    for (const auto &p : plan.detectedPrefixes)
        out << "  every key starts with '" << p << "' (remove it with --strip-prefix " << p << ")\n";
    if (!plan.loraAdapter.empty()) {
        out << "  merged LoRA adapter " << plan.loraAdapter << ": " << plan.lora.merged.size() << " weights";
        if (!plan.lora.replaced.empty())
            out << ", " << plan.lora.replaced.size() << " replaced by the adapter's own";
        out << '\n';
        for (const auto &m : plan.lora.merged)
            out << "    merged " << m << '\n';
        for (const auto &r : plan.lora.replaced)
            out << "    replaced " << r << '\n';
        for (const auto &[from, to] : plan.lora.renamed)
            out << "    renamed " << from << " -> " << to << '\n';
    }
    for (const auto &w : plan.warnings)
        out << "  warning: " << w << '\n';
    if (!plan.shards.empty())
        out << "  in " << plan.shards.size() << " shards, " << plan.totalSize << " tensor bytes, indexed by "
            << plan.indexPath << '\n';
    if (!plan.superseded.empty())
        out << "  replaces the previous output under this name whole: once written, removes\n";
    for (const auto &f : plan.superseded)
        out << "    " << f << '\n';
    out.flush();
}

// One input's failure as `--json` prints it: which file, and why (the sentence stderr says too).
nlohmann::ordered_json failureJson(const std::string &file, const std::exception &e)
{
    return {{"input", file}, {"error", e.what()}};
}

void printResult(std::ostream &out, const ConversionResult &result)
{
    for (const auto &shard : result.shards)
        out << "  wrote " << shard << '\n';
    if (!result.shards.empty())
        out << "  wrote " << result.output << " (the index): " << result.shards.size() << " shards, " << result.bytes
            << " bytes, each read back and verified\n";
    else
        out << "  wrote " << result.output << ": " << result.bytes << " bytes, read back and verified\n";
    if (!result.sidecarPath.empty())
        out << "  wrote " << result.sidecarPath << '\n';
    for (const auto &f : result.removed)
        out << "  removed " << f << " (of the previous output)\n";
    for (const auto &f : result.notRemoved)
        out << "  warning: could not remove the previous output's " << f << '\n';
}
} // namespace

namespace {

// Every file the command line names as an input (all the files converted, --arch, an --arch-spec
// file), added to `w`: no output of a run replaces one of them.
WriteOptions runInputs(const ConvertCliOptions &c, WriteOptions w)
{
    for (const auto &f : c.files)
        w.protect(f);
    for (const auto *p : {&c.arch, &c.archSpec})
        if (!p->empty())
            w.protect(*p);
    if (!c.mergeLora.empty()) {
        // The adapter's files, whether it is named by its folder or its weights file.
        std::error_code ec;
        const bool folder = std::filesystem::is_directory(c.mergeLora, ec);
        const std::filesystem::path dir = folder ? std::filesystem::path(c.mergeLora)
                                                 : std::filesystem::path(c.mergeLora).parent_path();
        if (!folder)
            w.protect(c.mergeLora);
        for (const char *name : {"adapter_model.safetensors", "adapter_model.bin", "adapter_config.json"})
            w.protect((dir.empty() ? std::filesystem::path(name) : dir / name).string());
    }
    return w;
}

// Inputs whose outputs would have one name (two model.pth files from different folders into one
// --out-dir, or a file named twice) are refused before anything is written: the second would
// replace the first (with --force) or fail on the file the run itself just wrote.
template <typename OutputOf>
void checkDistinctOutputs(const std::vector<std::string> &files, OutputOf outputOf)
{
    namespace fs = std::filesystem;
    std::map<std::string, std::string> firstInput;  // output, as the file system names it -> input
    for (const auto &file : files) {
        const std::string output = outputOf(file);
        std::error_code ec;
        fs::path key = fs::weakly_canonical(fs::absolute(output), ec);
        if (ec)
            key = fs::absolute(output).lexically_normal();
        const auto [it, fresh] = firstInput.emplace(key.string(), file);
        if (!fresh && fs::equivalent(it->second, file, ec))
            throw FormatError(file + " is named twice among the inputs");
        if (!fresh)
            throw FormatError(it->second + " and " + file + " would both be written to " + output +
                              ": convert them into different folders, or one at a time with -o");
    }
}

// `--to torchscript`: the file's architecture (or the one given) with its weights, as a TorchScript
// file Python's torch.jit.load runs; the module `ckpt predict --export-torchscript` writes. The
// weight edits apply first (--drop, --strip-prefix, --add-prefix, --ema, as for a state dict), then
// --dtype casts the module's floating parameters and buffers; metadata options have nowhere to go.
int convertToTorchScript(const ConvertCliOptions &c, std::ostream &out, std::ostream &err)
{
    std::optional<DType> cast;  // none: the weights as they are
    ConvertOptions edits;
    MadeFolders madeFolders;
    try {
        if (!c.output.empty() && c.files.size() != 1)
            throw FormatError("-o names one output: give one input, or use --out-dir");
        if (!c.output.empty() && !c.outDir.empty())
            throw FormatError("give -o or --out-dir, not both");
        refuseFolderOutput(c.output);
        madeFolders = makeOutDir(c.outDir);
        refuseEmaWithWeights(c);
        if (!c.mergeLora.empty())
            throw FormatError("--merge-lora does not apply to --to torchscript yet: merge into a state dict first "
                              "(--to state-dict --merge-lora), then convert that to TorchScript");
        if (!c.maxShardSize.empty())
            throw FormatError("--max-shard-size splits a state-dict or safetensors output; a TorchScript file is one archive");
        if (!c.config.empty() || !c.preprocessing.empty() || !c.classNames.empty() || c.epoch || c.trainLoss ||
            c.valLoss || c.metadataJson || c.keepDevice || c.dropOptimizer)
            throw FormatError("a TorchScript file holds the module and its weights only: --config, --preprocessing, "
                              "--class-names, --epoch, the losses, --metadata-json, --keep-device and --drop-optimizer "
                              "do not apply to --to torchscript");
        // LibTorch casts the module; the planner only counts what the cast does (overflow, ...).
        cast = castOption(c.dtype);
        if (c.output.empty())
            checkDistinctOutputs(c.files, [&](const std::string &f) {
                return defaultOutputPathFor(f, "_torchscript", ".pt", cast, c.outDir);
            });
        edits.stripPrefix(c.stripPrefix).addPrefix(c.addPrefix).ema(c.ema).applyPruning(c.applyPruning);
        if (cast)
            edits.dtype(*cast);
        for (const auto &d : c.drop)
            edits.drop(d);
    } catch (const std::exception &e) {
        err << "ckpt: " << e.what() << '\n';
        if (c.json)
            out << nlohmann::ordered_json{{"error", e.what()}}.dump(2) << '\n';
        return 1;
    }
    const std::string dtype = cast ? std::string(dtypeName(*cast)) : std::string();
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    int status = 0;
    for (const auto &file : c.files) {
        try {
            const std::string output =
                c.output.empty() ? defaultOutputPathFor(file, "_torchscript", ".pt", cast, c.outDir) : c.output;
            WriteOptions w = runInputs(c, WriteOptions().allowOverwrite(c.force));
            checkWriteTarget(output, w);  // before any work, as for the other targets
            const Document &doc = keepUntilExit(readInput(file, c.weights));
            for (const auto &p : protectingInputs(doc, c.force).inputs)
                w.protect(p);
            ScriptExport plan =
                planScriptExport(doc, output, edits, architectureRequest(c.arch, c.archSpec, c.activation));
            std::vector<std::string> notes;
            for (const auto &a : plan.architecture.assumptions)
                notes.push_back("architecture: " + a);
            if (!cast && plan.cast)
                notes.push_back("the weights are " + std::string(dtypeName(*plan.cast)) + ": the module is written in " +
                                std::string(dtypeName(*plan.cast)) + ", as torch.jit.script(model." +
                                (*plan.cast == DType::Float16 ? "half" : "bfloat16") + "()) holds it");
            if (!c.json) {
                printPlan(out, plan.plan, "torchscript" + (dtype.empty() ? std::string() : ", " + dtype));
                out << "  architecture: " << sourceName(plan.architecture.source)
                    << (plan.architecture.exact ? " (exact)" : " (not exact)") << '\n';
                for (const auto &n : notes)
                    out << "  note: " << n << '\n';
            }
            std::vector<std::string> loading;
            const ConversionResult result = executeScriptExport(plan, w, &loading);
            if (c.json) {
                loading.insert(loading.end(), notes.begin(), notes.end());
                all.push_back(scriptExportToJson(plan, &result, loading));
            } else {
                for (const auto &n : loading)
                    out << "  note: " << n << '\n';
                out << "  wrote " << output << ": " << result.bytes << " bytes of TorchScript, read back and verified\n";
            }
        } catch (const std::exception &e) {
            status = reportError(err, file, e);
            if (c.json)
                all.push_back(failureJson(file, e));
        }
    }
    if (c.json)
        out << (c.files.size() == 1 && all.size() == 1 ? all[0] : all).dump(2) << '\n';
    return status;
}

} // namespace

int runConvert(const ConvertCliOptions &options, std::ostream &out, std::ostream &err)
{
    // Ctrl-C, SIGTERM or SIGHUP while a file is written leave the output folder as it was (README).
    removeTemporaryFilesOnSignals();
    if (options.to == "torchscript")
        return convertToTorchScript(options, out, err);
    ConvertOptions o;
    MadeFolders madeFolders;
    try {
        o = toOptions(options);
        for (const auto &p : runInputs(options, WriteOptions()).inputs)
            o.protect(p);  // no conversion of the run writes over another one's input
        if (!options.output.empty() && options.files.size() != 1)
            throw FormatError("-o names one output: give one input, or use --out-dir");
        if (!options.output.empty() && !options.outDir.empty())
            throw FormatError("give -o or --out-dir, not both");
        refuseFolderOutput(options.output);
        madeFolders = makeOutDir(options.outDir);
        if (options.output.empty())
            checkDistinctOutputs(options.files, [&](const std::string &f) { return defaultOutputPath(f, o, options.outDir); });
    } catch (const std::exception &e) {
        err << "ckpt: " << e.what() << '\n';
        if (options.json)
            out << nlohmann::ordered_json{{"error", e.what()}}.dump(2) << '\n';
        return 1;
    }
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    int status = 0;
    for (const auto &file : options.files) {
        try {
            const Document doc = readInput(file, options.weights);
            const std::string output =
                options.output.empty() ? defaultOutputPath(file, o, options.outDir) : options.output;
            // An existing output or an input's name is refused before the plan is printed (with
            // --max-shard-size, by the plan: it knows which files the shards are).
            if (!o.maxShardSize)
                checkWriteTarget(output, runInputs(options, protectingInputs(doc, o.overwrite)));
            refuseNestedModuleAsFullModel(doc, options, o);
            ConversionPlan plan = planConversion(doc, output, o);
            if (!options.json)
                printPlan(out, plan);
            const ConversionResult result = executeConversion(doc, plan, o);
            if (options.json)
                all.push_back(conversionToJson(plan, &result));
            else
                printResult(out, result);
        } catch (const std::exception &e) {
            status = reportError(err, file, e);
            if (options.json)
                all.push_back(failureJson(file, e));
        }
    }
    if (options.json)
        out << (options.files.size() == 1 && all.size() == 1 ? all[0] : all).dump(2) << '\n';
    return status;
}

} // namespace ckpt::cli
