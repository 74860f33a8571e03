#include "scancommand.h"

#include "clicommon.h"
#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "security.h"

#include <iostream>

namespace ckpt::cli {

namespace {
void printText(const Document &doc, const SecurityReport &r, std::ostream &out)
{
    out << doc.path << ": " << (r.dangerous ? "DANGEROUS" : "no dangerous globals") << "; "
        << (r.weightsOnlyLoadable ? "torch.load(weights_only=True) would accept it"
                                  : "torch.load(weights_only=True) would refuse it") << '\n';
    for (const auto &g : r.globals) {
        out << "  " << (g.cls == GlobalClass::Dangerous ? "!! " : "   ") << g.use.name << " ×" << g.use.count
            << " at offset " << g.use.firstOffset << " — " << globalClassName(g.cls);
        if (!g.reason.empty())
            out << ": " << g.reason;
        out << '\n';
    }
    for (const auto &a : r.anomalies)
        out << "  anomaly: " << a << '\n';
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
    return anyError ? 1 : anyDangerous ? 3 : 0;
}

} // namespace ckpt::cli
