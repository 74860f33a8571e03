#include "tensorscommand.h"

#include "clicommon.h"
#include "clitext.h"
#include "pythonrepr.h"
#include "textcodec.h"
#include "computeloader.h"
#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "valuetree.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iostream>
#include <string_view>
#include <vector>

namespace ckpt::cli {

namespace {
using json = nlohmann::ordered_json;

json number(double v)
{
    if (std::isnan(v))
        return nullptr;
    if (std::isinf(v))
        return v > 0 ? "inf" : "-inf";
    return v;
}

// An integer exactly: a uint64's bits as the unsigned number they are.
json integer(std::int64_t v, bool asUnsigned)
{
    return asUnsigned ? json(static_cast<std::uint64_t>(v)) : json(v);
}

json figuresJson(const StatFigures &f, const TensorStats &s)
{
    // An integer tensor's extremes exactly (they hold no NaN, so torch's are these).
    return json{{"min", s.exactExtremes() ? integer(s.exactMin, s.exactUnsigned) : number(f.min)},
                {"max", s.exactExtremes() ? integer(s.exactMax, s.exactUnsigned) : number(f.max)},
                {"mean", number(f.mean)},
                {"std", number(f.std)},
                {"l2", number(f.l2)}};
}

json statsJson(const TensorStats &s)
{
    // The figures are torch's (TensorStats::torch, as the window shows them): a NaN anywhere makes
    // min, max, mean, std and the norm NaN (as diff and series say of the same tensor). Those over
    // the values that are not NaN are kept apart, under their own name.
    json j = figuresJson(s.torch(), s);
    j["zero_fraction"] = s.count ? number(static_cast<double>(s.zeroCount) / static_cast<double>(s.count)) : json(nullptr);
    j["nan"] = s.nanCount;
    j["inf"] = s.infCount;
    if (s.nanCount > 0)
        j["without_nan"] = figuresJson(s.withoutNan(), s);
    return j;
}

// The keys of an entry (a row of `tensors`, the head of `show`), in order; entryMembers hands them
// over by number.
enum EntryKey : std::size_t { kName, kDtype, kShape, kNumel, kBytes, kDevice, kProblem, kStats };
constexpr std::array<std::string_view, 8> kEntryKeys{"name", "dtype", "shape", "numel", "bytes", "device", "problem", "stats"};

// The members of a tensor's entry, each handed to add(key, value): the one account of an entry,
// for the tree (entryJson, `show`) and for the streamed rows of `tensors --json`.
template <class Add> void entryMembers(const NamedTensor &t, Add &&add)
{
    const auto &r = t.ref();
    add(kName, t.name);
    add(kDtype, dtypeName(r.dtype));
    add(kShape, r.shape);
    add(kNumel, r.numel());
    add(kBytes, r.nbytes());
    add(kDevice, r.device());
    if (!r.problem.empty())
        add(kProblem, r.problem);
}

json entryJson(const NamedTensor &t)
{
    json j = json::object();
    entryMembers(t, [&j](std::size_t key, const auto &value) { j[std::string(kEntryKeys[key])] = value; });
    return j;
}

// Statistics of one tensor, or the reason there are none (meta tensors, unsupported dtypes).
json statsOf(const TensorRef &r)
{
    try {
        return statsJson(ComputeLoader::api().statistics(r));
    } catch (const std::runtime_error &e) {
        return json{{"error", e.what()}};
    }
}

// A statistic in the text: as torch prints the number (nan, inf), but "-" where the tensor has no
// elements to take it over (zero_fraction is null then) and torch gives no figure; the norm of no
// elements is 0, as torch.linalg.norm and the window give it.
std::string statText(const json &stats, const char *key, const json &of)
{
    return of["zero_fraction"].is_null() && !stats[key].is_number() ? std::string("-") : numberText(stats[key]);
}
std::string statText(const json &stats, const char *key) { return statText(stats, key, stats); }

const std::vector<NamedTensor> &tableOf(const Document &doc) { return doc.hasStateDict ? doc.stateDict : doc.tensors; }

// A value of `show`'s list as text: floats as torch prints them (nan, inf), integers exactly, bools
// True and False, a complex value's [real, imaginary] pair with each part so.
std::string elementText(const json &v)
{
    if (v.is_array())
        return "[" + (v.size() == 2 ? numberText(v[0]) + ", " + numberText(v[1]) : std::string()) + "]";
    if (v.is_boolean())
        return v.get<bool>() ? "True" : "False";  // as torch prints a bool tensor's values
    return numberText(v);
}

// `ckpt show` as text: what the JSON says, a line each, its numbers as torch prints them.
std::string showText(const json &j)
{
    const auto dump = [](const json &v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); };
    std::string text;
    text = displayText(j["name"].get<std::string>()) + "  " + j["dtype"].get<std::string>() + "  " +
           shapeText(j["shape"].get<std::vector<std::int64_t>>()) + "  " + j["device"].get<std::string>() + "  " +
           dump(j["numel"]) + " elements\n";
    if (j.contains("stats")) {
        const auto &st = j["stats"];
        if (st.contains("error")) {
            text += "  statistics: " + displayText(st["error"].get<std::string>()) + "\n";
        } else {
            text += "  min " + statText(st, "min") + "  max " + statText(st, "max") + "  mean " + statText(st, "mean") +
                    "  std " + statText(st, "std") + "  l2 " + statText(st, "l2");
            if (st["zero_fraction"].is_number())
                text += "  zeros " + floatText(st["zero_fraction"].get<double>() * 100) + " %";
            text += "  nan " + dump(st["nan"]) + "  inf " + dump(st["inf"]) +
                    (st.contains("over") ? "  (" + st["over"].get<std::string>() + ")" : "") + "\n";
            if (st.contains("without_nan")) {
                const auto &w = st["without_nan"];
                text += "  without the NaN values: min " + statText(w, "min", st) + "  max " + statText(w, "max", st) +
                        "  mean " + statText(w, "mean", st) + "  std " + statText(w, "std", st) + "  l2 " +
                        statText(w, "l2", st) + "\n";
            }
        }
    }
    if (j.contains("histogram")) {
        const auto &h = j["histogram"];
        text += "  histogram [" + numberText(h["low"]) + ", " + numberText(h["high"]) + "]: " + dump(h["counts"]) +
                "\n";
    }
    if (j.contains("histogram_error"))
        text += "  histogram: " + j["histogram_error"].get<std::string>() + "\n";
    if (j.contains("values") && !j["values"].empty()) {  // --limit 0 (or no elements): no list
        const auto &v = j["values"];
        text += "  values (the first " + std::to_string(v.size()) + " of " + dump(j["numel"]) + "): ";
        for (std::size_t i = 0; i < v.size(); ++i)
            text += (i ? ", " : "") + elementText(v[i]);
        text += "\n";
    }
    if (j.contains("values_error"))
        text += "  values: " + displayText(j["values_error"].get<std::string>()) + "\n";
    return text;
}

// `tensors --json`: {"file", "tensors": [rows]} as dump(2) would write it, each row written and
// sent on as it is made rather than the whole list built as one tree first.
void writeTensorsJson(const Document &doc, const std::vector<const NamedTensor *> &rows, bool stats, std::ostream &out)
{
    constexpr int kIndent = 2;
    const jsontext::ObjectLayout top("\n", kIndent, {"file", "tensors"});
    std::string head;
    top.member(head, 0, true);
    top.value(head, doc.path);
    top.member(head, 1, false);
    out << head;
    jsontext::ArrayStream list(out, top.memberPad(), kIndent);
    const jsontext::ObjectLayout row(list.elementPad(), kIndent, kEntryKeys);
    for (const NamedTensor *t : rows) {
        std::string &o = list.next();
        bool first = true;
        const auto add = [&](std::size_t key, const auto &value) {
            row.member(o, key, first);
            first = false;
            row.value(o, value);
        };
        entryMembers(*t, add);
        if (stats)
            add(kStats, statsOf(t->ref()));
        row.close(o);
    }
    list.finish();
    head.clear();
    top.close(head);
    out << head << '\n';
}

} // namespace

int runTensors(const TensorsOptions &options, std::ostream &out, std::ostream &err)
{
    try {
        const Document &doc = keepUntilExit(readInput(options.file, options.weights));
        // Case-insensitive for every script, not ASCII only: "über" finds Über.weight.
        const std::string filter = foldCase(options.filter);
        std::vector<const NamedTensor *> selected;
        for (const auto &t : tableOf(doc))
            if (filter.empty() || foldCase(t.name).find(filter) != std::string::npos)
                selected.push_back(&t);
        // Statistics without the compute module fail the command (one line, exit 1), not each row.
        if (options.stats && !selected.empty())
            ComputeLoader::api();
        if (options.json) {
            writeTensorsJson(doc, selected, options.stats, out);
            return 0;
        }
        json rows = json::array();
        for (const NamedTensor *t : selected) {
            json row = entryJson(*t);
            if (options.stats)
                row["stats"] = statsOf(t->ref());
            rows.push_back(std::move(row));
        }
        if (rows.empty()) {
            out << (filter.empty() ? "no tensors in the file\n"
                                   : "no tensor name contains '" + displayText(options.filter) + "'\n");
            return 0;
        }
        // A table: one column per field, each as wide as its widest cell.
        std::vector<std::vector<std::string>> cells;
        std::vector<std::string> header{"name", "dtype", "shape", "device"};
        if (options.stats)
            header.insert(header.end(), {"min", "max", "mean", "std", "l2", "zeros %", "nan", "inf"});
        cells.push_back(header);
        for (const auto &row : rows) {
            std::vector<std::string> line{displayText(row["name"].get<std::string>()), row["dtype"].get<std::string>(),
                                          shapeText(row["shape"].get<std::vector<std::int64_t>>()),
                                          row["device"].get<std::string>()};
            if (row.contains("stats")) {
                const auto &st = row["stats"];
                if (st.contains("error")) {
                    line.push_back("(" + displayText(st["error"].get<std::string>()) + ")");
                } else {
                    for (const char *k : {"min", "max", "mean", "std", "l2"})
                        line.push_back(statText(st, k));
                    const auto &zeros = st["zero_fraction"];
                    line.push_back(zeros.is_number() ? floatText(zeros.get<double>() * 100) : "-");
                    line.push_back(std::to_string(st["nan"].get<std::int64_t>()));
                    line.push_back(std::to_string(st["inf"].get<std::int64_t>()));
                }
            }
            cells.push_back(std::move(line));
        }
        out << tableText(cells);
        return 0;
    } catch (const std::exception &e) {
        return reportError(err, options.file, e);
    }
}

int runShow(const ShowOptions &options, std::ostream &out, std::ostream &err)
{
    try {
        const Document &doc = keepUntilExit(readInput(options.file, options.weights));
        const FoundEntry found = findEntry(doc, options.key);
        const ValuePtr &value = found.value;
        if (!value)
            throw FormatError(doc.path + ": no tensor or entry named '" + options.key + "'");
        if (!found.note.empty() && !options.json)
            out << "note: " << displayText(found.note) << '\n';
        json j;
        if (value->isTensor()) {
            const auto &r = *value->tensorRef();
            j = entryJson({options.key, value});
            if (r.problem.empty() && r.layout != TensorRef::Layout::Meta) {
                ComputeLoader::api();  // without it, the command fails (one line, exit 1)
                j["stats"] = statsOf(r);
                if (dtypeIsComplex(r.dtype))
                    j["stats"]["over"] = "real and imaginary parts together";
                const auto count = std::clamp<std::int64_t>(options.limit, 0, std::max<std::int64_t>(0, r.numel()));
                if (options.histogram > 0) {
                    try {
                        const auto h = ComputeLoader::api().histogram(r, options.histogram);
                        j["histogram"] = {{"low", h.low}, {"high", h.high}, {"counts", h.counts}};
                    } catch (const std::runtime_error &e) {
                        j["histogram_error"] = e.what();
                    }
                }
                try {
                    // Integers as integers, exactly (past 2^53 a double would round them); bools as
                    // true and false, as torch's tolist() gives them.
                    json v = json::array();
                    if (dtypeIsIntegral(r.dtype) || r.dtype == DType::Bool) {
                        for (std::int64_t x : ComputeLoader::api().integers(r, 0, count))
                            v.push_back(r.dtype == DType::Bool ? json(x != 0) : integer(x, r.dtype == DType::UInt64));
                    } else if (dtypeIsComplex(r.dtype)) {
                        // [real, imaginary] per element, as torch.view_as_real(t).tolist() gives them.
                        const auto parts = ComputeLoader::api().values(r, 0, count);
                        for (std::size_t i = 0; i + 1 < parts.size(); i += 2)
                            v.push_back(json::array({number(parts[i]), number(parts[i + 1])}));
                    } else {
                        for (double x : ComputeLoader::api().values(r, 0, count))
                            v.push_back(number(x));
                    }
                    j["values"] = v;
                } catch (const std::runtime_error &e) {
                    j["values_error"] = e.what();
                }
            }
        } else if (options.json) {
            j = json{{"name", options.key}, {"type", value->typeName()}, {"value", valueToJson(value)}};
        } else {
            // Any other entry as Python would print what torch.load returns (True, None, tuples),
            // the data an object was built from in place of running it.
            out << displayText(options.key) << " (" << displayText(value->typeName()) << "): "
                << displayText(pythonRepr(*value, ReprLimits{.maxChars = 200000, .maxItems = 1000})) << '\n';
            return 0;
        }
        if (options.json) {
            if (!found.note.empty())
                j["note"] = found.note;
            out << j.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
            return 0;
        }
        out << showText(j);
        return 0;
    } catch (const std::exception &e) {
        return reportError(err, options.file, e);
    }
}

} // namespace ckpt::cli
