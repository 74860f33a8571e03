#include "infocommand.h"

#include "clicommon.h"
#include "clitext.h"
#include "textcodec.h"
#include "document.h"
#include "checkpointfolder.h"
#include "error.h"
#include "frameworkfiles.h"
#include "inferencemeta.h"
#include "jsonexport.h"
#include "optimizermap.h"
#include "metadata.h"
#include "pruning.h"
#include "pythonrepr.h"
#include "security.h"
#include "valuetree.h"

#include <algorithm>
#include <iomanip>
#include <optional>
#include <iostream>
#include <sstream>

namespace ckpt::cli {

namespace {

std::string humanBytes(std::int64_t b)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    std::ostringstream s;
    if (u == 0)
        s << b << " B";
    else
        s << std::fixed << std::setprecision(1) << v << ' ' << units[u];
    return s.str();
}

// Text on one line, at most `max` bytes (cut at a character, not inside one).
std::string cut(std::string s, std::size_t max)
{
    if (s.size() > max) {
        std::size_t at = max - 1;
        while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80)
            --at;
        s = s.substr(0, at) + "…";
    }
    return s;
}

// A JSON value on one line, with NaN and the infinities as Python writes them.
std::string compact(const nlohmann::ordered_json &j, std::size_t max = 100)
{
    return cut(valueText(j, max), max);
}

// A value on one line as Python prints it (True, None, (1, 2), 'text').
std::string compact(const Value &v, std::size_t max = 100)
{
    return cut(displayText(pythonRepr(v, ReprLimits{.maxChars = max, .maxItems = max / 2})), max);
}

// A metadata entry on one line: its value as Python prints it, or what it is when it holds weights.
std::string entryText(const MetadataEntry &e)
{
    switch (e.role) {
    case MetadataEntry::Role::OtherWeights:
        return "another set of weights (ckpt info --weights " + displayText(e.key) + " lists it as the model's)";
    case MetadataEntry::Role::HoldsWeights: return "holds the weights or optimizer state listed above";
    case MetadataEntry::Role::Plain: break;
    }
    if (!e.value)
        return "None";
    // A second optimizer's state (a GAN's discriminator's): what it is, not a dict of tensors.
    const ValuePtr state = e.value->isDict() ? e.value->get("state") : nullptr;
    const ValuePtr groups = e.value->isDict() ? e.value->get("param_groups") : nullptr;
    if (state && state->isDict() && groups && groups->isSequence())
        return "optimizer state (" + std::to_string(state->entries().size()) + " parameter states, " +
               std::to_string(groups->items().size()) + (groups->items().size() == 1 ? " group)" : " groups)");
    return compact(*e.value);
}

// The tensors as a table: name, dtype, shape, device, and what is wrong with one that cannot be read.
std::string tensorTable(const std::vector<NamedTensor> &tensors)
{
    // Names are made safe here, not after: an escape (\x1b) is wider than the byte it stands for.
    std::vector<std::vector<std::string>> rows{{"name", "dtype", "shape", "device"}};
    for (const auto &t : tensors) {
        const auto &r = t.ref();
        rows.push_back({displayText(t.name), std::string(dtypeName(r.dtype)), shapeText(r.shape), r.device()});
        if (!r.problem.empty())
            rows.back().push_back("! " + r.problem);
    }
    return tableText(rows, "  ");
}

// Tied tensors, one group after another ("lm_head.weight = transformer.wte.weight"), a few of each
// and a few groups: a model can tie hundreds (every layer's weights to one shared block).
std::string tiedText(const std::vector<std::vector<std::string>> &groups)
{
    if (groups.empty())
        return {};
    constexpr std::size_t kGroups = 4, kNames = 4;
    std::string line = "Tied:     ";
    for (std::size_t g = 0; g < groups.size() && g < kGroups; ++g) {
        line += g ? "; " : "";
        for (std::size_t i = 0; i < groups[g].size() && i < kNames; ++i)
            line += (i ? " = " : "") + groups[g][i];
        if (groups[g].size() > kNames)
            line += " = … (" + std::to_string(groups[g].size()) + " names)";
    }
    if (groups.size() > kGroups)
        line += "; and " + std::to_string(groups.size() - kGroups) + " more groups (ckpt info --json lists them)";
    return line + " (one tensor each: one storage, offset, shape and strides)\n";
}

// One optimizer: where it is, its class, how many parameters took a step and its step; each group's
// hyperparameters, as the optimizer was built with them (what resuming needs); and, where the file
// has several optimizers, which weights it updates.
void printOptimizer(const Document &doc, const OptimizerEntry &s, const nlohmann::ordered_json &listing,
                    std::ostream &out)
{
    out << "Optimizer: " << (s.path.empty() ? std::string("(root)") : pathText(s.path)) << " — " << s.className << ", "
        << s.states << " parameter states";
    if (s.step)
        out << ", step " << *s.step;
    out << '\n';
    // Written as Python prints them (betas (0.9, 0.999), amsgrad False) from the file's own
    // param_groups where the optimizer is a state dict; else (a pickled optimizer) from its state
    // dict as read, or the listing.
    const ValuePtr own = s.primary && doc.root ? findPath(doc.root, s.path) : s.state;
    const ValuePtr groups = own && own->isDict() ? own->get("param_groups") : nullptr;
    const ValuePtr read = s.state ? s.state->get("param_groups") : nullptr;
    const std::size_t groupCount = s.primary ? listing["param_groups"].size() : s.groups;
    for (std::size_t g = 0; g < groupCount; ++g) {
        std::string line;
        const auto groupOf = [g](const ValuePtr &list) -> ValuePtr {
            return list && list->isSequence() && g < list->items().size() ? list->items()[g] : nullptr;
        };
        ValuePtr group = groupOf(groups);
        if (!group || !group->isDict())
            group = s.primary ? nullptr : groupOf(read);
        std::size_t params = 0;
        if (group && group->isDict()) {
            for (const auto &e : group->entries()) {
                const std::string k = e.key ? keyText(*e.key) : std::string();
                if (k == "params" && e.value && e.value->isSequence())
                    params = e.value->items().size();
                if (k != "params" && k != "param_names" && e.value && !e.value->isNone())
                    line += (line.empty() ? "" : ", ") + displayText(k) + " " + compact(*e.value, 40);
            }
        } else if (s.primary) {
            const auto &listed = listing["param_groups"][g];
            params = listed.contains("params") ? listed["params"].size() : 0;
            for (const auto &[k, v] : listed.items())
                if (k != "params" && k != "param_names" && !v.is_null())
                    line += (line.empty() ? "" : ", ") + displayText(k) + " " + compact(v, 40);
        }
        out << "  group " << g << " (" << params << " parameters): " << line << '\n';
    }
    // Without the model's weights there are no names to be unsure of: the note says what the ids are.
    std::string note;
    if (s.primary && listing.contains("mapping")) {
        note = listing["mapping"]["note"].get<std::string>();
        out << (!doc.hasStateDict                            ? "  parameter ids: "
                : listing["mapping"]["certain"].get<bool>() ? "  parameter names (certain): "
                                                            : "  parameter names (uncertain): ")
            << note << '\n';
    }
    if (!s.updates.empty()) {
        // Where the names are uncertain, the sentence on which weights it updates ends with the same
        // note as the line above: said once.
        std::string updates = s.updates;
        if (!note.empty() && updates.size() > note.size() + 2 && updates.ends_with(": " + note))
            updates = updates.substr(0, updates.size() - note.size() - 2) + " (the parameter names line says why)";
        out << "  " << updates << '\n';
    }
}

std::string numberText(double v)
{
    std::ostringstream s;
    s << std::setprecision(6) << v;
    return s.str();
}

// A folder opened as a checkpoint: which file was read, what else the folder holds, and where the
// Trainer's run stood when it was saved.
void printFolder(const CheckpointFolder &f, std::ostream &out)
{
    out << "Folder:   " << f.folder << " (" << f.layout << ")\n";
    out << "  " << f.modelName << ": " << f.modelRole << " (read above)\n";
    for (const auto &p : f.parts)
        out << "  " << p.name << ": " << p.role << (p.summary.empty() ? "" : " — " + p.summary) << '\n';
    if (!f.runCheckpoints.empty()) {
        const auto n = f.runCheckpoints.size();
        out << "  " << f.runCheckpoints.front() << (n > 1 ? "/ … " + f.runCheckpoints.back() : std::string()) << "/: "
            << (f.runCheckpointsFound > n ? "the first " + std::to_string(n) + " of " : std::string())
            << countText(f.runCheckpointsFound, "checkpoint folder") << " the run saved; follow the run across them with: ckpt series "
            << f.folder << '\n';
    }
    if (!f.trainerState)
        return;
    const TrainerState &t = *f.trainerState;
    out << "Training: ";
    std::string line;
    const auto add = [&line](const std::string &s) { line += (line.empty() ? "" : ", ") + s; };
    if (t.globalStep)
        add("step " + std::to_string(*t.globalStep) + (t.maxSteps ? " of " + std::to_string(*t.maxSteps) : ""));
    if (t.epoch)
        add("epoch " + numberText(*t.epoch));
    if (const auto loss = t.lastLoss())
        add("last loss " + numberText(*loss));
    if (const auto eval = t.lastEvalLoss())
        add("last eval loss " + numberText(*eval));
    if (t.bestMetric)
        add("best metric " + numberText(*t.bestMetric) +
            (t.bestModelCheckpoint.empty() ? "" : " (" + t.bestModelCheckpoint + ")"));
    add(std::to_string(t.log.size()) + (t.log.size() == 1 ? " logged loss" : " logged losses") + " in trainer_state.json");
    out << line << '\n';
}

void printText(const Document &doc, const nlohmann::ordered_json &j, std::ostream &out)
{
    out << "File:     " << doc.path << '\n';
    out << "Format:   " << formatName(doc.format) << " (" << doc.formatDetail << ")";
    if (doc.hasPickle())
        out << ", pickle protocol " << doc.pickleProtocol;
    out << '\n';
    out << "Kind:     " << kindName(doc.kind) << '\n';
    if (doc.hasStateDict) {
        out << "State dict: " << (doc.stateDictPath.empty() ? std::string("(root)") : pathText(doc.stateDictPath))
            << (doc.stateDictSource == "module_tree" ? " (module tree)" : "") << " — ";
        if (doc.stateDict.empty()) {
            // A module without weights (a TorchScript function-only module): no table of nothing.
            out << "empty: the model holds no tensors\n";
        } else {
            out << countText(doc.stateDict.size(), "tensor") << ", " << doc.parameterCount() << " elements, "
                << humanBytes(doc.stateDictBytes()) << '\n';
            // What model.parameters() would count, and how many train: the figure papers quote. A
            // file that is one tensor (or array) is no model: its elements are said above.
            if (doc.kind != DocumentKind::Tensor) {
                const ParameterCount params = parameterCount(doc);
                out << "Parameters: " << params.count;
                if (params.trainable)
                    out << ", " << *params.trainable << " trainable (requires_grad)";
                if (!params.exact)
                    out << " (estimated: a state dict does not say which tensors are buffers; BatchNorm's running "
                           "statistics"
                        << (prunedParameters(doc.stateDict).empty() ? "" : " and the pruning masks (X_mask)")
                        << " are left out)";
                out << '\n';
            }
            out << tiedText(tiedTensors(doc));
            out << tensorTable(doc.stateDict);
        }
        for (const auto &other : doc.otherWeightSets)
            out << "  also weights under " << pathText(other) << '\n';
    } else {
        out << "State dict: none found; " << doc.tensors.size() << " tensors elsewhere in the file\n";
        if (!doc.tensors.empty())
            out << tensorTable(doc.tensors);
    }
    for (const auto &c : doc.conventions)
        out << "Convention: " << c << '\n';
    // How much of each parameter torch.nn.utils.prune masked: the zeros of its mask, where cheap to count.
    if (doc.hasStateDict)
        if (const auto pruned = prunedParameters(doc.stateDict); !pruned.empty()) {
            const auto counts = maskedCounts(doc.stateDict, pruned);
            for (std::size_t k = 0; k < pruned.size(); ++k) {
                const NamedTensor &mask = doc.stateDict[pruned[k].mask];
                const std::int64_t n = mask.ref().numel();
                out << "Pruned:   " << displayText(pruned[k].name) << ' ' << shapeText(mask.ref().shape) << ": ";
                if (counts[k] && n > 0) {
                    std::ostringstream pct;
                    pct << std::fixed << std::setprecision(1) << 100.0 * double(*counts[k]) / double(n);
                    out << pct.str() << "% masked (" << *counts[k] << " of " << n << " values are 0 in "
                        << displayText(mask.name) << ")\n";
                } else {
                    out << "masked share not counted here (ckpt tensors --stats gives the zero fraction of "
                        << displayText(mask.name) << ")\n";
                }
            }
        }
    // What Lightning's ModelCheckpoint and EarlyStopping tracked: the monitored metric, the best
    // score (a 0-d tensor, shown as its value) and the file that holds it.
    for (const auto &c : lightningCallbacks(doc))
        out << "Callback: " << callbackText(c) << '\n';
    if (!j["optimizer"].is_null()) {
        // Every optimizer of the file: a GAN keeps one per network. The model's (the one paired with
        // its weights) first, with the mapping of its ids to names; then the others, in the file's order.
        bool more = false;
        auto summaries = optimizerEntries(doc, &more);
        std::stable_partition(summaries.begin(), summaries.end(), [](const OptimizerEntry &s) { return s.primary; });
        for (const auto &s : summaries)
            printOptimizer(doc, s, j["optimizer"], out);
        if (more)
            out << "Optimizers: the file holds more than the " << kMaxOptimizers << " listed; the others are not read\n";
    } else if (j.contains("optimizer_not_read")) {
        out << "Optimizer: none read: " << j["optimizer_not_read"].get<std::string>() << '\n';
    }
    if (!j["metadata"].empty()) {
        out << "Metadata:\n";
        // A dict's entries from the file itself, as Python prints them: the JSON's keys are text, so
        // the entries 1 and '1' would be one key there.
        const bool dictRoot = doc.root && doc.root->isDict();
        if (dictRoot)
            for (const auto &e : metadataEntries(doc))
                out << "  " << displayText(e.key) << ": " << entryText(e) << '\n';
        for (const auto &[k, v] : j["metadata"].items()) {
            if (k != "__metadata__" || !doc.formatMetadata || !doc.formatMetadata->isDict()) {
                if (!dictRoot)  // __class__ of a module or TorchScript root
                    out << "  " << displayText(k) << ": "
                        << (v.is_string() ? cut(displayText(v.get<std::string>()), 100) : compact(v)) << '\n';
                continue;
            }
            // A safetensors file's (or an index's) own metadata: strings, shown as the values
            // they encode (numbers, lists, the JSON this program's writer stores).
            const std::string where = doc.format == ContainerFormat::Safetensors ? "__metadata__/" : "metadata/";
            // Each is looked up by name (a search of the entries): a hostile header's hundreds of
            // thousands would take hours, and no one reads them as text. --json has them all.
            constexpr std::size_t kMaxShown = 200;
            std::size_t shown = 0;
            for (const auto &e : doc.formatMetadata->entries()) {
                const std::string key = e.key ? keyText(*e.key) : std::string();
                if (isWriterBookkeeping(key))
                    continue;
                if (++shown > kMaxShown) {
                    out << "  " << where << "… the first " << kMaxShown << " shown of "
                        << doc.formatMetadata->entries().size() << " entries (ckpt info --json lists them all)\n";
                    break;
                }
                const ValuePtr decoded = formatMetadataValue(doc, key);
                const ValuePtr value = decoded ? decoded : e.value;
                out << "  " << where << displayText(key) << ": " << (value ? compact(*value) : "None") << '\n';
            }
        }
        // A pickled object's attributes (training_args.bin), after its class.
        if (!dictRoot)
            for (const auto &e : metadataEntries(doc))
                out << "  " << displayText(e.key) << ": " << entryText(e) << '\n';
    }
    if (doc.folder)
        printFolder(*doc.folder, out);
    if (doc.sidecar)
        out << "Sidecar:  " << doc.sidecarPath << " (" << (doc.sidecar->isDict() ? doc.sidecar->entries().size() : 0)
            << " entries; ckpt info --json shows them)\n";
    {
        const SecurityReport report = securityReport(doc);
        if (!doc.folder) {
            out << "Security: " << securitySummary(doc, report) << '\n';
        } else {
            // A folder's last line must not read as the folder's verdict when it is the weights
            // file's alone: the folder's other pickles (training_args.bin, rng_state.pth …) are
            // loaded by a resume too, and one of them may run code.
            std::vector<std::string> dangerousParts;
            std::size_t scanned = 0;
            for (const auto *list : {&doc.folder->parts, &doc.folder->unlisted})
                for (const auto &part : *list) {
                    scanned += part.scanned ? 1 : 0;
                    if (!part.dangerous.empty())
                        dangerousParts.push_back(part.name + " (" + part.dangerous.front() +
                                                 (part.dangerous.size() > 1 ? " …" : "") + ")");
                }
            if (!dangerousParts.empty()) {
                out << "Security: the folder is DANGEROUS: loading " << displayText(dangerousParts.front())
                    << (dangerousParts.size() > 1
                            ? " and " + std::to_string(dangerousParts.size() - 1) + " other file(s)"
                            : std::string())
                    << " would run code (ckpt scan " << displayText(doc.folder->folder) << " says more)\n";
            } else if (scanned > 0) {
                out << "Security: the folder's " << scanned << " other pickled file" << (scanned == 1 ? "" : "s")
                    << ": no dangerous globals\n";
            }
            out << "Security: weights file " << displayText(doc.folder->modelName) << ": "
                << securitySummary(doc, report) << '\n';
        }
        for (const auto &a : report.anomalies)
            out << "Anomaly: " << a << '\n';
    }
    if (!doc.globals.empty()) {
        out << "Globals:\n";
        for (const auto &g : doc.globals)
            out << "  " << g.name << (g.count > 1 ? " (named " + std::to_string(g.count) + " times)" : "") << '\n';
    }
    for (const auto &w : doc.warnings)
        out << "Warning: " << w << '\n';
}

} // namespace

int runInfo(const InfoOptions &options, std::ostream &out, std::ostream &err)
{
    try {
        const Document &doc = keepUntilExit(readInput(options.file, options.weights));
        if (options.json) {
            writeDocumentJson(doc, out);
            out << '\n';
        } else {
            // Names and values come from the file: no control bytes reach the terminal.
            std::ostringstream text;
            printText(doc, keepUntilExit(documentToJson(doc)), text);
            out << displayText(text.str(), true);
        }
        return 0;
    } catch (const std::exception &e) {
        // A training run's output folder is no checkpoint (exit 1, as the text says), but a script
        // asking for JSON gets its checkpoint folders, by step, to follow.
        if (options.json && isFolder(options.file))
            try {
                if (const auto run = findRunFolder(options.file))
                    out << runFolderToJson(*run, e.what()).dump(2) << '\n';
            } catch (const std::exception &) {
                // Not listable: the error alone.
            }
        return reportError(err, options.file, e);
    }
}

} // namespace ckpt::cli
