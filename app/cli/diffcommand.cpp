#include "diffcommand.h"

#include "clicommon.h"
#include "clitext.h"
#include "textcodec.h"
#include "comparison.h"
#include "computeloader.h"
#include "document.h"
#include "checkpointfolder.h"
#include "inferencemeta.h"
#include "keyalign.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <tuple>
#include <optional>
#include <iostream>
#include <memory>
#include <sstream>

namespace ckpt::cli {

namespace {

std::string num(double v) { return floatText(v, 4); }

// A metadata value in the words of the text output: as Python prints it.
std::string metadataText(const std::optional<std::string> &python)
{
    return python ? displayText(*python) : std::string("(absent)");
}

// Where a side holds NaN or infinite values, the norms as torch gives them ("norm 3.742 -> inf"):
// the figures before it are over the finite positions and can read 0 for weights that blew up.
std::string normsText(const NonFiniteValues &nf, double normA, double normB)
{
    return nf.any() ? "  norm " + num(normA) + " -> " + num(normB) : std::string();
}

// The tensors that could not be read, when nothing else differs: the files are then not known to
// differ (exit 2, a file that cannot be read whole), rather than said to (exit 1). 0 otherwise.
std::size_t unreadableOnly(const Comparison &c)
{
    std::size_t unreadable = 0;
    for (const auto &t : c.tensors) {
        if (t.status == TensorComparison::Status::Unreadable)
            ++unreadable;
        else if (t.status != TensorComparison::Status::Identical && t.status != TensorComparison::Status::Close)
            return 0;
    }
    return c.onlyA.empty() && c.onlyB.empty() ? unreadable : 0;
}

void printText(const Comparison &c, std::ostream &out)
{
    out << c.fileA << "\n  vs " << c.fileB << '\n';
    if (!c.prefixA.empty())
        out << "names aligned by setting aside the prefix '" << c.prefixA << "' of the first file\n";
    if (!c.prefixB.empty())
        out << "names aligned by setting aside the prefix '" << c.prefixB << "' of the second file\n";
    for (const auto &s : c.setAsideA)
        out << setAsideText(s, "the first file") << '\n';
    for (const auto &s : c.setAsideB)
        out << setAsideText(s, "the second file") << '\n';
    int identical = 0, close = 0, different = 0, shape = 0, unreadable = 0;
    for (const auto &t : c.tensors) {
        identical += t.status == TensorComparison::Status::Identical;
        close += t.status == TensorComparison::Status::Close;
        different += t.status == TensorComparison::Status::Different;
        shape += t.status == TensorComparison::Status::ShapeChanged;
        unreadable += t.status == TensorComparison::Status::Unreadable;
    }
    out << c.tensors.size() << " tensors in both: " << identical << " identical, " << close << " within tolerance, "
        << different << " different, " << shape << " with another shape";
    if (unreadable)
        out << ", " << unreadable << " unreadable";
    out << "; " << c.onlyA.size() << " removed, " << c.onlyB.size() << " added\n";
    for (const auto &n : c.onlyA)
        out << "  - " << displayText(n) << '\n';
    for (const auto &n : c.onlyB)
        out << "  + " << displayText(n) << '\n';
    bool header = false;
    for (const auto &m : c.modules) {
        if (m.changed == 0)
            continue;
        if (!header)
            out << "modules that changed, those with NaN/Inf mismatches first, then most changed (relative L2 of "
                   "the difference):\n";
        header = true;
        out << "  " << padRight(m.name.empty() ? "(top level)" : displayText(m.name), 32);
        // Its figures are of its floating tensors: one changed only through an integer buffer
        // (num_batches_tracked) says that, not "rel 0 max 0 cos 1".
        if (m.onlyIntegersChanged())
            out << " only an integer buffer changed:";
        else
            out << " rel " << num(m.diff.relativeL2()) << "  max " << num(m.diff.maxAbs) << "  cos "
                << cosineText(cosineOf(m.diff));
        for (std::size_t i = 0; i < m.integerChanges.size() && i < 3; ++i)
            out << (i ? ", " : m.onlyIntegersChanged() ? " " : "  also ") << displayText(m.integerChanges[i]);
        if (m.integerChanges.size() > 3)
            out << ", and " << m.integerChanges.size() - 3 << " more integer tensors";
        out << "  (" << m.changed << "/" << m.tensors << " tensors)";
        if (m.diverged())
            out << "  diverged: " << m.diff.nonFinite << " NaN/Inf mismatch" << (m.diff.nonFinite == 1 ? "" : "es");
        out << normsText(m.nonFinite, m.normA, m.normB) << '\n';
    }
    header = false;
    for (const auto &t : c.tensors) {
        if (t.status == TensorComparison::Status::Identical)
            continue;
        if (!header)
            out << "tensors that are not identical:\n";
        header = true;
        out << "  " << displayText(t.name) << "  " << statusName(t.status);
        if (t.dtypeA != t.dtypeB)
            out << "  " << t.dtypeA << " -> " << t.dtypeB;
        if (t.status == TensorComparison::Status::ShapeChanged)
            out << "  " << shapeText(t.shapeA) << " -> " << shapeText(t.shapeB);
        else if (t.status == TensorComparison::Status::Unreadable)
            out << "  " << t.error;
        else
            out << "  max " << num(t.diff.maxAbs) << "  mean " << num(t.diff.meanAbs()) << "  rel " << num(t.diff.relativeL2())
                << "  cos " << cosineText(cosineOf(t.diff)) << "  outside " << t.diff.outside;
        // Positions where one side is NaN or infinite and the other is not the same: the figures
        // above leave them out, so they are said apart (as the JSON's non_finite_mismatches).
        if (t.diff.nonFinite)
            out << "  (" << t.diff.nonFinite << " NaN/Inf mismatch" << (t.diff.nonFinite == 1 ? "" : "es") << ")";
        if (t.status != TensorComparison::Status::ShapeChanged && t.status != TensorComparison::Status::Unreadable)
            out << normsText(t.nonFinite, t.normA, t.normB);
        out << '\n';
    }
    for (const auto &m : c.metadata)
        out << "metadata " << displayText(m.key) << ": " << metadataText(m.pythonA) << " -> " << metadataText(m.pythonB)
            << '\n';
    if (c.optimizerA || c.optimizerB) {
        // Each hyper-parameter that changed, per group, as Python prints it; "unchanged" when none.
        const auto changes = optimizerChanges(c.optimizerA, c.optimizerB);
        if (changes.empty())
            out << "optimizer: unchanged (" << displayText(optimizerText(c.optimizerA)) << ")\n";
        else
            out << "optimizer: " << displayText(optimizerText(c.optimizerA)) << " -> "
                << displayText(optimizerText(c.optimizerB)) << '\n';
        for (const auto &line : changes)
            out << "  " << displayText(line) << '\n';
    }
    if (const std::size_t n = unreadableOnly(c))
        out << "weights not compared whole: " << n << (n == 1 ? " tensor" : " tensors")
            << " could not be read, and the others are equal (atol " << c.atol << ", rtol " << c.rtol << ")\n";
    else
        out << "weights " << (c.weightsEqual() ? "equal" : "differ") << " (atol " << c.atol << ", rtol " << c.rtol
            << ")\n";
}

} // namespace

int runDiff(const DiffOptions &options, std::ostream &out, std::ostream &err)
{
    if (options.weights.size() > 2) {
        err << "ckpt: --weights is given once (for both files) or twice (the first file's, then the second's), not "
            << options.weights.size() << " times\n";
        return 2;
    }
    std::string current = options.a;
    try {
        CompareOptions co;
        co.atol(options.atol).rtol(options.rtol);
        for (const auto &m : options.mappings)
            co.map(parseKeyMapping(m));
        const auto &w = options.weights;
        const Document a = readInput(options.a, w.empty() ? std::string() : w.front());
        current = options.b;
        const Document b = readInput(options.b, w.empty() ? std::string() : w.back());
        current = options.a;
        const ComputeApi *api = computeModuleOrReport(err);
        if (!api)
            return 2;
        const Comparison c = compareDocuments(a, b, *api, co);
        auto setName = [](const Document &d) {
            return d.stateDictPath.empty() ? std::string("(root)") : pathText(d.stateDictPath);
        };
        if (options.json) {
            auto j = comparisonToJson(c);
            if (!w.empty())  // which sets were compared, where --weights chose them
                j["weights"] = {{"a", setName(a)}, {"b", setName(b)}};
            out << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
        } else {
            std::ostringstream text;  // names come from the files: no control bytes to the terminal
            if (!w.empty())
                text << "weights: '" << setName(a) << "' of the first file, '" << setName(b) << "' of the second\n";
            printText(c, text);
            out << displayText(text.str(), true);
        }
        return c.weightsEqual() ? 0 : unreadableOnly(c) ? 2 : 1;
    } catch (const std::exception &e) {
        reportError(err, current, e);
        return 2;
    }
}

int runSeries(const SeriesOptions &options, std::ostream &out, std::ostream &err)
{
    std::string current;
    try {
        std::vector<std::unique_ptr<Document>> docs;
        std::vector<const Document *> ptrs;
        // A file that cannot be read (a truncated save, something else given by the glob) is left
        // out with a note naming it and why, and the run is still compared over the others; exit 2
        // then, as diff's for a file it cannot read.
        std::vector<SeriesSkipped> skipped;
        // A run's output folder (a Trainer's output_dir, no checkpoint of its own) is the run: its
        // checkpoint folders, by step; computeSeries then orders them by the usual rule.
        std::vector<std::string> files;
        std::vector<std::string> runNotes;
        // An output_dir that also holds the final model (save_model() after the run) is one model;
        // given alone, there is no series of it, and its run's checkpoint folders are followed.
        const bool alone = options.files.size() == 1;
        for (const auto &f : options.files) {
            current = f;
            const auto run = isFolder(f) ? findRunFolder(f, alone) : std::nullopt;
            if (!run) {
                files.push_back(f);
                continue;
            }
            std::string note = "run folder " + f + ": " + std::to_string(run->checkpoints.size()) +
                               (run->checkpoints.size() == 1 ? " checkpoint folder" : " checkpoint folders");
            if (run->found > run->checkpoints.size())
                note += " (of " + std::to_string(run->found) + "; only the first " +
                        std::to_string(FolderLimits::kMaxRunCheckpoints) + " by step are read)";
            if (run->entriesCut)
                note += " (among the folder's first " + std::to_string(FolderLimits::kMaxEntries) + " entries)";
            runNotes.push_back(note);
            for (const auto &c : run->checkpoints)
                files.push_back(c.path);
        }
        current.clear();
        for (const auto &f : files) {
            try {
                docs.push_back(std::make_unique<Document>(readDocument(f)));
            } catch (const std::exception &e) {
                std::ostringstream why;
                reportError(why, f, e);  // "ckpt: FILE: reason"
                std::string text = why.str();
                while (!text.empty() && text.back() == '\n')
                    text.pop_back();
                skipped.push_back({f, text.rfind("ckpt: ", 0) == 0 ? text.substr(6) : text});
                err << text << " (left out of the series)\n";
                continue;
            }
            // A --weights path a file does not hold is the option's fault, not the file's: refused.
            current = f;
            if (!options.weights.empty())
                useWeightSet(*docs.back(), weightSetPath(*docs.back(), options.weights));
            ptrs.push_back(docs.back().get());
        }
        current.clear();
        if (ptrs.empty() && !skipped.empty())
            return 2;  // each was said above
        const ComputeApi *api = computeModuleOrReport(err);
        if (!api)
            return 2;
        Series s = computeSeries(ptrs, *api);
        s.skipped = std::move(skipped);
        const int status = s.skipped.empty() ? 0 : 2;
        if (options.json) {
            out << seriesToJson(s).dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
            return status;
        }
        for (const auto &n : runNotes)
            out << displayText(n) << '\n';
        for (const auto &k : s.skipped)
            out << "left out, cannot be read: " << displayText(k.reason) << '\n';
        out << "checkpoints, " << displayText(s.ordering) << ":\n";
        for (std::size_t k = 0; k < s.points.size(); ++k) {
            out << "  " << k << "  " << displayText(s.points[k].file) << "  epoch "
                << (s.points[k].epoch ? std::to_string(*s.points[k].epoch) : "-") << "  step "
                << (s.points[k].step ? std::to_string(*s.points[k].step) : "-") << '\n';
            for (const auto &note : s.points[k].notes)
                out << "     " << displayText(note) << '\n';
            for (const auto &aside : s.points[k].setAside)
                out << "     " << displayText(setAsideText(aside)) << '\n';
        }
        out << "per tensor, one column per checkpoint: \"norm\" its L2 norm, \"from first\" its drift from the first "
               "checkpoint, \"from prev\" its drift from the previous one\n"
               "(\"absent\": the checkpoint lacks the tensor; \"n/c\": not comparable, the reason is given below)\n";
        std::ostringstream text;  // names come from the files: no control bytes to the terminal
        for (const auto &l : s.layers) {
            text << "  " << displayText(l.name) << '\n';
            // Each row labelled: a reader of one tensor's block needs not count rows back to the header.
            const std::tuple<const char *, const std::vector<double> *, const std::vector<SeriesGap> *> rows[] = {
                {"norm", &l.norm, &l.normGap},
                {"from first", &l.driftFromFirst, &l.fromFirstGap},
                {"from prev", &l.driftFromPrevious, &l.fromPreviousGap}};
            for (const auto &[label, values, gaps] : rows) {
                text << "    " << label << std::string(10 - std::strlen(label), ' ');
                for (std::size_t k = 0; k < values->size(); ++k) {
                    const SeriesGap g = (*gaps)[k];
                    text << padLeft(g == SeriesGap::None         ? num((*values)[k])
                                    : g == SeriesGap::Absent     ? std::string("absent")
                                    : g == SeriesGap::Unreadable ? std::string("unreadable")
                                                                 : std::string("n/c"),
                                    11);
                }
                text << '\n';
            }
            // Why each "n/c" is there: the checkpoints that lack the tensor and its shape changes.
            std::vector<std::size_t> absent;
            for (std::size_t k = 0; k < l.shape.size(); ++k)
                if (!l.present(k))
                    absent.push_back(k);
            if (!absent.empty()) {
                text << "    absent from checkpoint" << (absent.size() > 1 ? "s" : "");
                for (std::size_t i = 0; i < absent.size(); ++i)
                    text << (i ? ", " : " ") << absent[i];
                text << '\n';
            }
            // Where the tensor holds NaN or infinite values: its figures there are nan or inf, as
            // torch's, and this line says how many of each (a run that diverged).
            std::string nonFinite;
            for (std::size_t k = 0; k < l.nanCount.size(); ++k) {
                if (!l.nanCount[k] && !l.infCount[k])
                    continue;
                nonFinite += std::string(nonFinite.empty() ? " " : ", ") + std::to_string(k) + " (";
                if (l.nanCount[k])
                    nonFinite += std::to_string(l.nanCount[k]) + " NaN" + (l.infCount[k] ? ", " : "");
                if (l.infCount[k])
                    nonFinite += std::to_string(l.infCount[k]) + " Inf";
                nonFinite += ")";
            }
            if (!nonFinite.empty())
                text << "    NaN or Inf values at checkpoint" << nonFinite << '\n';
            const std::optional<std::vector<std::int64_t>> *last = nullptr;
            for (std::size_t k = 0; k < l.shape.size(); ++k) {
                if (!l.shape[k])
                    continue;
                if (last && **last != *l.shape[k])
                    text << "    shape changed from " << shapeText(**last) << " to " << shapeText(*l.shape[k])
                         << " at checkpoint " << k << ": no drift across the change\n";
                last = &l.shape[k];
            }
        }
        out << displayText(text.str(), true);
        return status;
    } catch (const std::exception &e) {
        reportError(err, current, e);
        return 2;
    }
}

} // namespace ckpt::cli
