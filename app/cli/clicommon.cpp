#include "clicommon.h"

#include <algorithm>

#include "computeloader.h"

#include "error.h"
#include "safetensorsreader.h"
#include "textcodec.h"
#include "valuetree.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>

namespace ckpt::cli {

std::vector<std::shared_ptr<void>> *g_keptUntilExit = nullptr;

int reportError(std::ostream &err, const std::string &file, const std::exception &e)
{
    const std::string what = e.what();
    // No file named (a failure no one input causes): the reason alone, not "ckpt: : reason".
    const bool named = dynamic_cast<const FormatError *>(&e) || file.empty();
    err << "ckpt: " << displayText(named ? what : file + ": " + what) << '\n';
    return 1;
}

ComputeApi *computeModuleOrReport(std::ostream &err)
{
    try {
        return &ComputeLoader::api();
    } catch (const std::exception &e) {
        err << "ckpt: " << displayText(e.what()) << '\n';
        return nullptr;
    }
}

Document readInput(const std::string &file, const std::string &weights)
{
    Document doc = readDocument(file);
    if (!weights.empty())
        useWeightSet(doc, weightSetPath(doc, weights));
    return doc;
}

FoundEntry findEntry(const Document &doc, const std::string &key)
{
    // Every reading of the text, in the order they are tried.
    struct Reading {
        std::string what;
        ValuePtr value;
    };
    std::vector<Reading> readings;
    for (const auto &t : doc.hasStateDict ? doc.stateDict : doc.tensors)
        if (t.name == key) {
            readings.push_back({doc.hasStateDict ? "the state dict's entry of that name" : "the tensor of that name",
                                t.value});
            break;
        }
    readings.push_back({"the key at the top of the file", findPath(doc.root, {key})});
    readings.push_back({"the file's own metadata entry, as info names it", findFormatMetadata(doc, key)});
    std::vector<std::string> path;
    std::stringstream ss(key);
    for (std::string part; std::getline(ss, part, '/');)
        path.push_back(part);
    std::string steps;
    for (const auto &p : path)
        steps += (steps.empty() ? "" : " → ") + p;
    if (path.empty())
        readings.push_back({"the whole file", doc.root});
    else if (path.size() > 1 || path[0] != key)  // one step, the key itself, is the top-level key again
        readings.push_back({"the path " + steps, findPath(doc.root, path)});
    FoundEntry found;
    std::string taken;
    for (const auto &r : readings) {
        if (!r.value)
            continue;
        if (!found.value) {
            found.value = r.value;
            taken = r.what;
        } else if (r.value != found.value && found.note.empty()) {
            found.note = "'" + key + "' names both " + taken + " (taken) and " + r.what;
        }
    }
    return found;
}

std::string securitySummary(const Document &doc, const SecurityReport &report)
{
    if (!doc.hasPickle())
        return "not a pickle: holds no code (the safetensors library reads it, not torch.load)";
    std::string line;
    // torch.jit.load imports no Python module: a TorchScript archive's own classes (__torch__.*)
    // are compiled from the code the archive holds.
    const bool script = doc.format == ContainerFormat::TorchScript;
    std::size_t unknown = 0;
    std::size_t scriptClasses = 0;
    std::string unknownNames;  // the first few, so that "1 unknown" says which
    for (const auto &g : report.globals) {
        if (g.cls == GlobalClass::Unknown) {
            const bool scriptClass = script && g.use.name.starts_with("__torch__.");
            ++(scriptClass ? scriptClasses : unknown);
            if (!scriptClass && unknown <= 3)
                unknownNames += (unknown == 1 ? "" : ", ") + g.use.name;
        }
        if (g.cls == GlobalClass::Dangerous)
            line += (line.empty() ? "DANGEROUS: " : ", ") + g.use.name;
    }
    if (line.empty())
        line = "no dangerous globals";
    std::vector<std::string> notes;
    if (scriptClasses > 0)
        notes.push_back(std::to_string(scriptClasses) +
                        (scriptClasses == 1 ? " TorchScript class, which torch.jit.load compiles"
                                            : " TorchScript classes, which torch.jit.load compiles") +
                        " from the archive's own code, importing no Python module");
    if (unknown > 0)
        notes.push_back(std::to_string(unknown) + " unknown, " + unknownNames + (unknown > 3 ? ", ..." : "") + ": " +
                        (script ? std::string("torch.jit.load imports no Python module for ") +
                                      (unknown == 1 ? "it" : "them")
                                : std::string("Python would import ") + (unknown == 1 ? "its module" : "their modules")));
    if (std::any_of(report.globals.begin(), report.globals.end(),
                    [](const GlobalVerdict &g) { return g.cls == GlobalClass::Lookup; }))
        notes.push_back("builtins.getattr only looks up attributes by name, as Python 3.11 and later pickle enum "
                        "members; nothing calls what it finds");
    // Nothing runs, yet loading it can exhaust memory: said beside the verdict, not only among the anomalies.
    if (!report.allocations.empty())
        notes.push_back("but loading it would allocate " + std::to_string(report.allocations.front().bytes) +
                        " bytes" + (report.allocations.size() > 1 ? " and more" : "") +
                        " that the file does not hold: see the anomalies");
    for (std::size_t i = 0; i < notes.size(); ++i)
        line += (i ? "; " : " (") + notes[i] + (i + 1 == notes.size() ? ")" : "");
    if (report.weightsOnlyLoadable)
        return line + "; torch.load(weights_only=True) of PyTorch >= 2.6 would accept it";
    line += "; torch.load(weights_only=True) of PyTorch >= 2.6 would refuse it";
    // A file refused whole: that is the reason, not the globals it names.
    if (!report.weightsOnlyFileReason.empty())
        return line + ": " + report.weightsOnlyFileReason;
    // The globals it refuses, then what else stops it (an opcode it does not interpret), each
    // list cut after a few.
    constexpr std::size_t kShown = 4;
    std::vector<std::string> globals, others;
    for (const auto &b : report.weightsOnlyBlockers)
        if (b.size() > 2 && b.front() == '(' && b.back() == ')')
            others.push_back(b.substr(1, b.size() - 2));
        else
            globals.push_back(b);
    const auto list = [&](const std::vector<std::string> &items, const char *separator) {
        std::string text;
        for (std::size_t i = 0; i < items.size() && i < kShown; ++i)
            text += (i ? separator : "") + items[i];
        if (items.size() > kShown)
            text += " and " + std::to_string(items.size() - kShown) + " more";
        return text;
    };
    line += ": " + list(globals, ", ");
    if (!others.empty())
        line += (globals.empty() ? "" : "; ") + list(others, "; ");
    return line;
}

std::string readText(const std::string &path, std::size_t limit)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw FormatError(path + ": cannot be opened: " + std::strerror(errno));
    std::string data;
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        data.append(buf, static_cast<std::size_t>(in.gcount()));
        if (data.size() > limit)
            throw FormatError(path + ": larger than " + std::to_string(limit >> 20) + " MiB, too large for an input");
    }
    return data;
}

ArchitectureRequest architectureRequest(const std::string &arch, const std::string &archSpec,
                                        const std::string &activation)
{
    ArchitectureRequest request;
    request.scriptPath = arch;
    request.activation = activation;
    if (!archSpec.empty()) {
        const auto first = archSpec.find_first_not_of(" \t\r\n");
        const bool inline_ = first != std::string::npos && (archSpec[first] == '[' || archSpec[first] == '{');
        request.spec = inline_ ? archSpec : readText(archSpec, std::size_t{16} << 20);
    }
    return request;
}

} // namespace ckpt::cli
