#include "scancommand.h"

#include "clicommon.h"
#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "security.h"
#include "textcodec.h"

#include <iostream>

namespace ckpt::cli {

namespace {
void printGlobals(const SecurityReport &r, std::ostream &out)
{
    for (const auto &g : r.globals) {
        out << "  " << (g.cls == GlobalClass::Dangerous ? "!! " : "   ") << displayText(g.use.name) << " ×" << g.use.count
            << " at offset " << g.use.firstOffset << " — " << globalClassName(g.cls);
        if (!g.reason.empty())
            out << ": " << g.reason;
        out << '\n';
    }
    for (const auto &a : r.anomalies)
        out << "  anomaly: " << displayText(a) << '\n';
}

void printText(const Document &doc, const SecurityReport &r, std::ostream &out)
{
    std::size_t unknown = 0;
    for (const auto &g : r.globals)
        unknown += g.cls == GlobalClass::Unknown;
    out << doc.path << ": " << (r.dangerous ? "DANGEROUS" : "no dangerous globals");
    if (unknown > 0)
        out << " (" << unknown << " unknown: Python would import " << (unknown == 1 ? "its module" : "their modules") << ")";
    out << "; "
        << (r.weightsOnlyLoadable ? "torch.load(weights_only=True) would accept it"
                                  : "torch.load(weights_only=True) would refuse it") << '\n';
    printGlobals(r, out);
}
} // namespace

int runScan(const ScanOptions &options, std::ostream &out, std::ostream &err)
{
    bool anyDangerous = false;
    bool anyError = false;
    auto all = nlohmann::ordered_json::array();
    for (const auto &file : options.files) {
        try {
            const Document doc = readDocument(file);
            const auto report = securityReport(doc);
            anyDangerous = anyDangerous || report.dangerous;
            if (options.json) {
                auto j = securityToJson(report);
                j["file"] = file;
                all.push_back(std::move(j));
            } else {
                printText(doc, report, out);
            }
        } catch (const ReadFailure &e) {
            // Unreadable, but what its pickles named before the fault would still run in Python.
            anyError = true;
            reportError(err, file, e);
            const SecurityReport partial = globalsReport(e.globals);
            anyDangerous = anyDangerous || partial.dangerous;
            if (options.json) {
                auto j = securityToJson(partial);
                j["file"] = file;
                j["error"] = e.what();
                j["weights_only_loadable"] = false;
                all.push_back(std::move(j));
            } else if (!partial.globals.empty()) {
                out << file << ": " << (partial.dangerous ? "DANGEROUS" : "no dangerous globals")
                    << " in what reads before the error\n";
                printGlobals(partial, out);
            }
        } catch (const std::exception &e) {
            anyError = true;
            reportError(err, file, e);
            if (options.json)
                all.push_back({{"file", file}, {"error", e.what()}});
        }
    }
    if (options.json)
        out << (options.files.size() == 1 && !all.empty() ? all[0] : all)
                   .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
            << '\n';
    // Something dangerous outranks a file that could not be read: a gate that tests for 3 must
    // not pass a batch because another file in it is broken.
    return anyDangerous ? 3 : anyError ? 1 : 0;
}

} // namespace ckpt::cli
