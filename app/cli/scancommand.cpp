#include "scancommand.h"

#include "checkpointfolder.h"
#include "clicommon.h"
#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "security.h"
#include "textcodec.h"

#include <algorithm>
#include <functional>
#include <iostream>
#include <optional>
#include <utility>

namespace ckpt::cli {

namespace {
// Dangerous globals first, then unknown ones, each in the order the pickle names them; the globals
// this reader understands (containers, tensor rebuilds, torch.nn layers) only counted unless
// `verbose`: a quantized mobile model names hundreds of them.
void printGlobals(const SecurityReport &r, bool verbose, std::ostream &out)
{
    std::vector<const GlobalVerdict *> sorted;
    for (const auto &g : r.globals)
        sorted.push_back(&g);
    const auto rank = [](GlobalClass c) {
        return c == GlobalClass::Dangerous ? 0 : c == GlobalClass::Unknown || c == GlobalClass::Lookup ? 1 : 2;
    };
    std::stable_sort(sorted.begin(), sorted.end(), [&](const GlobalVerdict *a, const GlobalVerdict *b) {
        return std::pair(rank(a->cls), a->use.firstOffset) < std::pair(rank(b->cls), b->use.firstOffset);
    });
    std::size_t understood = 0;
    for (const auto *g : sorted) {
        if (g->cls == GlobalClass::Understood && !verbose) {
            ++understood;
            continue;
        }
        out << "  " << (g->cls == GlobalClass::Dangerous ? "!! " : "   ") << displayText(g->use.name) << " — "
            << globalClassName(g->cls) << ", at offset " << g->use.firstOffset;
        if (g->use.count > 1)
            out << " (named " << g->use.count << " times)";
        if (!g->reason.empty())
            out << ": " << displayText(g->reason);
        out << '\n';
    }
    if (understood > 0)
        out << "     and " << understood << " understood global" << (understood == 1 ? "" : "s")
            << " (containers, tensor rebuilds, torch.nn layers; --verbose lists them)\n";
    for (const auto &a : r.anomalies)
        out << "  anomaly: " << displayText(a) << '\n';
}

void printText(const Document &doc, const SecurityReport &r, bool verbose, std::ostream &out)
{
    out << displayText(doc.path) << ": " << displayText(securitySummary(doc, r)) << '\n';
    printGlobals(r, verbose, out);
}
} // namespace

int runScan(const ScanOptions &options, std::ostream &out, std::ostream &err)
{
    bool anyDangerous = false;
    bool anyError = false;
    auto all = nlohmann::ordered_json::array();
    // One file's verdict; `read` gives its document (a folder's model file was read already).
    const auto scanOne = [&](const std::string &file, const std::function<Document()> &read) {
        try {
            const Document d = read();
            const auto report = securityReport(d);
            anyDangerous = anyDangerous || report.dangerous;
            if (options.json) {
                auto j = securityToJson(report);
                j["file"] = file;
                all.push_back(std::move(j));
            } else {
                printText(d, report, options.verbose, out);
            }
        } catch (const ReadFailure &e) {
            // Unreadable, but what its pickles named before the fault would still run in Python.
            anyError = true;
            reportError(err, file, e);
            SecurityReport partial = globalsReport(e.globals);
            // What else the file would make a loader do (read a file outside its folder) is as
            // dangerous as a global that runs code.
            if (!e.hazards.empty()) {
                partial.dangerous = true;
                partial.anomalies.insert(partial.anomalies.end(), e.hazards.begin(), e.hazards.end());
            }
            anyDangerous = anyDangerous || partial.dangerous;
            if (options.json) {
                auto j = securityToJson(partial);
                j["file"] = file;
                j["error"] = e.what();
                j["weights_only_loadable"] = false;
                all.push_back(std::move(j));
            } else if (!e.hazards.empty()) {
                out << displayText(file) << ": DANGEROUS: " << displayText(e.hazards.front()) << '\n';
                for (std::size_t i = 1; i < e.hazards.size(); ++i)
                    out << "  !! " << displayText(e.hazards[i]) << '\n';
                if (!partial.globals.empty())
                    printGlobals(globalsReport(e.globals), options.verbose, out);
            } else if (!partial.globals.empty()) {
                out << file << ": " << (partial.dangerous ? "DANGEROUS" : "no dangerous globals")
                    << " in what reads before the error\n";
                printGlobals(partial, options.verbose, out);
            }
        } catch (const std::exception &e) {
            anyError = true;
            reportError(err, file, e);
            if (options.json)
                all.push_back({{"file", file}, {"error", e.what()}});
        }
    };
    for (const auto &file : options.files) {
        const auto readFile = [&file] { return readDocument(file); };
        if (!isFolder(file)) {
            scanOne(file, readFile);
            continue;
        }
        // A checkpoint folder: its model file, and every other pickle in it that Python loads when
        // a run resumes (optimizer.pt, scheduler.pt, rng_state.pth, training_args.bin, DeepSpeed's
        // partitions, a second format's pytorch_model.bin): a gate must not pass a folder whose
        // training_args.bin runs code because its weights are clean.
        std::optional<Document> doc;
        try {
            doc = readDocument(file);
        } catch (const std::exception &) {
            scanOne(file, readFile);  // says why the folder does not open, as for a file
            continue;
        }
        std::vector<FolderPart> parts;
        bool entriesCut = false;
        if (doc->folder) {
            parts = doc->folder->parts;
            parts.insert(parts.end(), doc->folder->unlisted.begin(), doc->folder->unlisted.end());
            entriesCut = doc->folder->entriesCut;
        }
        const std::string modelFile = doc->path;
        scanOne(modelFile, [&doc] { return std::move(*doc); });
        for (const auto &part : parts)
            if (isPickledPart(part))
                scanOne(part.path, [&part] { return readDocument(part.path); });
        // A folder too big to list whole is not called clean: what was not looked at could run code.
        if (entriesCut) {
            anyError = true;
            const std::string why = "the folder has more than " + std::to_string(FolderLimits::kMaxEntries) +
                                    " entries; the files past them were not scanned (scan them by name)";
            reportError(err, file, FormatError(file + ": " + why));
            if (options.json)
                all.push_back({{"file", file}, {"error", file + ": " + why}});
        }
    }
    if (options.json)
        out << (all.size() == 1 && options.files.size() == 1 ? all[0] : all)
                   .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
            << '\n';
    // Something dangerous outranks a file that could not be read: a gate that tests for 3 must
    // not pass a batch because another file in it is broken.
    return anyDangerous ? 3 : anyError ? 1 : 0;
}

} // namespace ckpt::cli
