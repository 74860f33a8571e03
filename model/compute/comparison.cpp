#include "comparison.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "checkpointfolder.h"
#include "dtype.h"
#include "error.h"
#include "inferencemeta.h"
#include "jsonexport.h"
#include "metadata.h"
#include "optimizermap.h"
#include "pythonrepr.h"
#include "tensorref.h"
#include "value.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>

namespace ckpt {

std::string cosineText(double v)
{
    if (std::isnan(v))
        return "nan";
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    if (v >= 1.0 || std::string_view(buf) != "1")
        return v > 1.0 ? std::string("1") : std::string(buf);  // rounding can give 1 + 2e-16
    // The sums behind the cosine carry float64 rounding of about 1e-13 over millions of elements
    // (torch's own float64 cosine of the same pair differs there too): "1 - 8.7e-14" would be
    // noise given as a figure. JSON keeps the value computed.
    if (1.0 - v < 1e-12)
        return "1";
    std::snprintf(buf, sizeof buf, "1 - %.2g", 1.0 - v);
    return buf;
}

double cosineOf(const TensorDiff &d)
{
    const auto &s = d.scaled;
    if (s.abs == 0)  // equal at every position compared: a·a / ||a||² is 1, rounding aside
        return 1.0;
    const double c = d.cosine();  // NaN for a zero tensor against another, as TensorDiff has it
    return std::isnan(c) ? c : std::clamp(c, -1.0, 1.0);
}

namespace {

using ojson = nlohmann::ordered_json;

const std::vector<NamedTensor> &tensorsOf(const Document &d) { return d.hasStateDict ? d.stateDict : d.tensors; }

std::vector<std::string> namesOf(const std::vector<NamedTensor> &ts)
{
    std::vector<std::string> out;
    out.reserve(ts.size());
    for (const auto &t : ts)
        out.push_back(t.name);
    return out;
}

std::string moduleOf(const std::string &name)
{
    const auto dot = name.rfind('.');
    return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

// JSON has no NaN or Infinity: NaN is written as null and an infinity as "inf" or "-inf", as
// `tensors --stats --json` writes them (a largest difference past float64 is infinite, not absent).
ojson number(double v)
{
    if (std::isnan(v))
        return nullptr;
    if (std::isinf(v))
        return v > 0 ? "inf" : "-inf";
    return v;
}

// A file's metadata entries as text, shown and compared. Shown as info shows them: one JSON
// writer for all of a file's entries, so that a value they share is written once and referred to
// after (a few bytes of pickle can share one large string under thousands of keys). Compared as
// plain JSON, so that a config whose pickle shares a value equals one that does not (the same value
// to Python), within one budget for the comparison; as shown past it.
struct MetadataText {
    std::string shown;
    std::optional<std::string> plain;  // none past the budget (or for a cycle)
    std::string python;                // as Python prints it, for text output
    // Equal as JSON and as Python prints them: JSON has no tuples, and a tuple that became a list
    // (betas (0.9, 0.999) -> [0.9, 0.999]) is a change to the program that reads it.
    bool operator==(const MetadataText &o) const
    {
        return (plain && o.plain ? *plain == *o.plain : shown == o.shown) && python == o.python;
    }
};

std::vector<MetadataText> metadataTexts(const std::vector<std::pair<std::string, ValuePtr>> &entries,
                                        PlainJsonBudget &budget)
{
    const auto text = [](const ojson &j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); };
    auto all = Value::dict();
    for (const auto &[k, v] : entries)
        all->entries().push_back({Value::string(k), v});
    const ojson shown = valueToJson(all);
    std::unordered_map<std::string_view, const ojson *> byKey;  // past the output limit, a key is missing
    for (const auto &[k, v] : shown.items())
        byKey.emplace(k, &v);
    std::vector<MetadataText> out;
    out.reserve(entries.size());
    for (const auto &[k, v] : entries) {
        const auto it = byKey.find(k);
        MetadataText t{it != byKey.end() ? text(*it->second) : std::string(R"({"__truncated__":"output limit"})"),
                       std::nullopt, v ? pythonRepr(*v, ReprLimits{.maxChars = 2000}) : std::string("None")};
        try {
            t.plain = text(valueToPlainJson(v, "metadata", budget));
        } catch (const FormatError &) {
        }
        out.push_back(std::move(t));
    }
    return out;
}

ojson diffJson(const TensorDiff &d, const NonFiniteValues &nf, double normA, double normB)
{
    return ojson{{"identical", d.identical},
                 {"elements", d.count},
                 {"outside_tolerance", d.outside},
                 {"non_finite_mismatches", d.nonFinite},
                 {"max_abs_diff", number(d.maxAbs)},
                 {"mean_abs_diff", number(d.meanAbs())},
                 {"relative_l2", number(d.relativeL2())},
                 {"cosine", number(cosineOf(d))},
                 // Over the positions compared (both finite), as relative_l2 and cosine are made.
                 {"norm_a", number(d.normA())},
                 {"norm_b", number(d.normB())},
                 // Each file's tensor's own, over every element, as torch gives it: inf, NaN (null).
                 {"tensor_norm_a", number(normA)},
                 {"tensor_norm_b", number(normB)},
                 {"non_finite", {{"a", {{"nan", nf.nanA}, {"inf", nf.infA}}}, {"b", {{"nan", nf.nanB}, {"inf", nf.infB}}}}}};
}

std::optional<double> scalarOf(const ValuePtr &v, const ComputeApi &api)
{
    if (!v)
        return std::nullopt;
    switch (v->kind()) {
    case Value::Kind::Int:
    case Value::Kind::Bool: return static_cast<double>(v->asInt());
    case Value::Kind::Float: return v->asFloat();
    case Value::Kind::Tensor:
        if (v->tensorRef() && v->tensorRef()->numel() == 1) {
            const auto values = api.values(*v->tensorRef(), 0, 1);
            if (!values.empty())
                return values[0];
        }
        return std::nullopt;
    default: return std::nullopt;
    }
}

std::optional<OptimizerSummary> optimizerOf(const Document &d, const ComputeApi &api)
{
    if (!d.optimizer)
        return std::nullopt;
    OptimizerSummary s;
    s.type = optimizerClassName(*d.optimizer);
    if (auto groups = d.optimizer->get("param_groups"); groups && groups->isSequence())
        for (const auto &g : groups->items())
            if (g && g->isDict()) {
                if (auto lr = scalarOf(g->get("lr"), api))
                    s.learningRates.push_back(*lr);
                auto &hyper = s.groups.emplace_back();
                for (const auto &e : g->entries())
                    if (e.key && e.key->isString() && e.key->text() != "params" && hyper.size() < 64)
                        hyper.emplace_back(e.key->text(),
                                           e.value ? pythonRepr(*e.value, ReprLimits{.maxChars = 200}) : std::string("None"));
            }
    if (auto state = d.optimizer->get("state"); state && state->isDict())
        for (const auto &e : state->entries())
            if (e.value && e.value->isDict())
                if (auto step = scalarOf(e.value->get("step"), api)) {
                    s.step = std::max(s.step.value_or(*step), *step);
                    s.minStep = std::min(s.minStep.value_or(*step), *step);
                }
    return s;
}

ojson optimizerJson(const std::optional<OptimizerSummary> &o)
{
    if (!o)
        return nullptr;
    ojson j{{"type", o->type}, {"learning_rates", o->learningRates}};
    j["step"] = o->step ? ojson(*o->step) : ojson(nullptr);
    j["step_min"] = o->minStep ? ojson(*o->minStep) : ojson(nullptr);
    ojson groups = ojson::array();
    for (const auto &g : o->groups) {
        ojson e = ojson::object();
        for (const auto &[k, v] : g)
            e[k] = v;  // as Python prints it
        groups.push_back(std::move(e));
    }
    j["param_groups"] = std::move(groups);
    return j;
}

std::string stepNumber(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
}

std::string stepText(const OptimizerSummary &o)
{
    if (!o.step)
        return "-";
    return o.minStep && *o.minStep != *o.step ? stepNumber(*o.minStep) + ".." + stepNumber(*o.step) : stepNumber(*o.step);
}

// An epoch or step, to order a run's checkpoints by: an int (a numpy integer included), a float
// holding a whole number (5.0), or a one-element tensor of either (torch.tensor(5), as scripts save
// a counter they kept on the device). Any other number (2.5, NaN, past int64) orders nothing, and
// a note says so rather than a rounded guess; a value of another kind is no epoch.
std::optional<std::int64_t> orderingField(const Document &d, const char *label, const char *word,
                                          const ComputeApi &api, std::vector<std::string> &notes)
{
    const auto whole = [&](double v) -> std::optional<std::int64_t> {
        // 2^63 is exactly a double: [-2^63, 2^63) holds every int64.
        if (v == std::trunc(v) && v >= -0x1p63 && v < 0x1p63)
            return static_cast<std::int64_t>(v);
        notes.push_back(std::string(word) + " " + formatFloat(v) +
                        " is not a whole number: the checkpoint is not ordered by it");
        return std::nullopt;
    };
    for (const auto &f : knownFields(d)) {
        if (f.label != label || !f.value)
            continue;
        const Value &v = *f.value;
        if (v.isInt())
            return v.asInt();
        if (v.kind() == Value::Kind::Float)
            return whole(v.asFloat());
        if (v.isTensor() && v.tensorRef() && v.tensorRef()->numel() == 1) {
            const TensorRef &t = *v.tensorRef();
            try {
                if (dtypeIsIntegral(t.dtype)) {
                    const auto ints = api.integers(t, 0, 1);
                    // uint64 comes as its bits: one past int64 is no position either.
                    if (ints.size() == 1 && (t.dtype != DType::UInt64 || ints[0] >= 0))
                        return ints[0];
                } else if (dtypeIsFloating(t.dtype)) {
                    const auto values = api.values(t, 0, 1);
                    if (values.size() == 1)
                        return whole(values[0]);
                }
            } catch (const std::exception &e) {
                notes.push_back(std::string(word) + " could not be read: " + e.what());
            }
        }
        return std::nullopt;
    }
    return std::nullopt;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A tensor's L2 norm as torch.linalg.norm gives it: NaN when it holds a NaN, inf when it holds an
// infinity (statistics' own l2 is over the values that are not NaN).
double torchNorm(const TensorStats &s)
{
    return s.torch().l2;
}

// ||b - a|| as torch computes it, where `d` (of a and b) met a position that is not finite on both
// sides: NaN where either holds a NaN, or both the same infinity at one place (inf - inf); else an
// infinity met another value: inf.
double torchDiffNorm(const TensorDiff &d, const TensorStats &sa, const TensorStats &sb)
{
    if (d.finite == d.count)
        return d.normDiff();
    if (sa.nanCount > 0 || sb.nanCount > 0)
        return kNaN;
    // No NaN: each position not finite on both sides holds an infinity; those not counted as
    // mismatches hold the same one on both.
    return d.count - d.finite > d.nonFinite ? kNaN : kInf;
}

// A pool of tensor comparisons: their sums, NaN/Inf counts and norms (as torch: inf, NaN).
struct Pool {
    TensorDiff diff;
    NonFiniteValues nonFinite;
    double normA = 0, normB = 0;  // hypot of the tensors' own norms, exact where all are finite
    void add(const TensorComparison &t)
    {
        diff.accumulate(t.diff);
        nonFinite.add(t.nonFinite);
        normA = std::hypot(normA, t.normA);
        normB = std::hypot(normB, t.normB);
    }
    void into(ModuleComparison &m) const
    {
        m.diff = diff;
        m.nonFinite = nonFinite;
        // hypot(inf, NaN) is inf: a NaN anywhere makes the pooled norm NaN, as torch's.
        const auto norm = [](std::int64_t nans, std::int64_t infs, double hyp) {
            return nans > 0 ? kNaN : infs > 0 ? kInf : hyp;
        };
        m.normA = nonFinite.any() ? norm(nonFinite.nanA, nonFinite.infA, normA) : diff.normA();
        m.normB = nonFinite.any() ? norm(nonFinite.nanB, nonFinite.infB, normB) : diff.normB();
    }
};

} // namespace

std::string statusName(TensorComparison::Status s)
{
    switch (s) {
    case TensorComparison::Status::Identical: return "identical";
    case TensorComparison::Status::Close: return "close";
    case TensorComparison::Status::Different: return "different";
    case TensorComparison::Status::ShapeChanged: return "shape_changed";
    case TensorComparison::Status::Unreadable: return "unreadable";
    }
    return {};
}

SetAsideTensor setAsideTensor(const NamedTensor &t)
{
    SetAsideTensor s{t.name, std::nullopt};
    if (const auto n = vectorTensorNumbers(t.ref()); n.size() == 1)
        s.value = n[0];
    return s;
}

std::string setAsideText(const SetAsideTensor &s, const std::string &whose)
{
    std::string out = s.name;
    if (!whose.empty())
        out += " of " + whose;
    if (s.value) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.4g", *s.value);
        out += std::string(" (") + buf + ")";
    }
    return out + " is the count of models torch.optim.swa_utils.AveragedModel averaged, not a weight: set aside";
}

ojson setAsideJson(const SetAsideTensor &s)
{
    return ojson{{"name", s.name}, {"what", "averaged_model_count"}, {"value", s.value ? number(*s.value) : ojson(nullptr)}};
}

bool Comparison::weightsEqual() const
{
    return onlyA.empty() && onlyB.empty() &&
           std::all_of(tensors.begin(), tensors.end(), [](const TensorComparison &t) {
               return t.status == TensorComparison::Status::Identical || t.status == TensorComparison::Status::Close;
           });
}

std::string optimizerText(const std::optional<OptimizerSummary> &o)
{
    if (!o)
        return "none";
    std::string lrs;
    for (std::size_t g = 0; g < o->groups.size(); ++g) {
        std::string lr = "-";
        for (const auto &[k, v] : o->groups[g])
            if (k == "lr")
                lr = v;
        lrs += (g ? "," : "") + lr;
    }
    // An optimizer that keeps no step (SGD) says none, rather than "step -".
    const std::string step = stepText(*o);
    return o->type + " lr " + (lrs.empty() ? "-" : lrs) + (step == "-" ? std::string() : " step " + step);
}

std::vector<std::string> optimizerChanges(const std::optional<OptimizerSummary> &a, const std::optional<OptimizerSummary> &b)
{
    std::vector<std::string> out;
    if (!a || !b) {
        if (a || b)
            out.push_back("optimizer " + optimizerText(a) + " -> " + optimizerText(b));
        return out;
    }
    if (a->type != b->type)
        out.push_back("class " + a->type + " -> " + b->type);
    if (a->groups.size() != b->groups.size())
        out.push_back("param groups " + std::to_string(a->groups.size()) + " -> " + std::to_string(b->groups.size()));
    for (std::size_t g = 0; g < std::min(a->groups.size(), b->groups.size()); ++g) {
        const std::string where = a->groups.size() > 1 || b->groups.size() > 1 ? "group " + std::to_string(g) + ": " : "";
        const auto &ga = a->groups[g], &gb = b->groups[g];
        const auto find = [](const std::vector<std::pair<std::string, std::string>> &h, const std::string &k) {
            for (const auto &[key, v] : h)
                if (key == k)
                    return std::optional<std::string>(v);
            return std::optional<std::string>();
        };
        for (const auto &[k, v] : ga) {
            const auto other = find(gb, k);
            if (!other || *other != v)
                out.push_back(where + k + " " + v + " -> " + other.value_or("(absent)"));
        }
        for (const auto &[k, v] : gb)
            if (!find(ga, k))
                out.push_back(where + k + " (absent) -> " + v);
    }
    if (stepText(*a) != stepText(*b))
        out.push_back("step " + stepText(*a) + " -> " + stepText(*b));
    return out;
}

Comparison compareDocuments(const Document &a, const Document &b, const ComputeApi &api, const CompareOptions &options)
{
    Comparison c;
    c.fileA = a.path;
    c.fileB = b.path;
    c.atol = options.m_atol;
    c.rtol = options.m_rtol;
    const auto &ta = tensorsOf(a);
    const auto &tb = tensorsOf(b);
    const KeyAlignment align = alignKeys(namesOf(ta), namesOf(tb), options.m_mappings);
    c.prefixA = align.prefixA;
    c.prefixB = align.prefixB;
    for (auto i : align.onlyA)
        c.onlyA.push_back(ta[i].name);
    for (auto j : align.onlyB)
        c.onlyB.push_back(tb[j].name);
    for (auto i : align.wrapperA)
        c.setAsideA.push_back(setAsideTensor(ta[i]));
    for (auto j : align.wrapperB)
        c.setAsideB.push_back(setAsideTensor(tb[j]));

    std::map<std::string, ModuleComparison> modules;
    // A module's figures pool its floating tensors: an integer counter beside them
    // (BatchNorm's num_batches_tracked, a step count) would dominate its relative change. A module
    // of integer tensors only is measured by them.
    struct Pools {
        bool floatingToo = false;
        Pool floating, integers;
    };
    std::map<std::string, Pools> pools;
    std::size_t done = 0;
    for (const auto &[i, j] : align.pairs) {
        const TensorRef &ra = ta[i].ref();
        const TensorRef &rb = tb[j].ref();
        TensorComparison t;
        t.name = ta[i].name;
        t.nameB = tb[j].name;
        t.dtypeA = dtypeName(ra.dtype);
        t.dtypeB = dtypeName(rb.dtype);
        t.shapeA = ra.shape;
        t.shapeB = rb.shape;
        if (ra.shape != rb.shape) {
            t.status = TensorComparison::Status::ShapeChanged;
        } else {
            try {
                t.diff = api.difference(ra, rb, options.m_atol, options.m_rtol, options.m_cancelled);
                t.status = t.diff.identical         ? TensorComparison::Status::Identical
                           : t.diff.outside == 0 ? TensorComparison::Status::Close
                                                  : TensorComparison::Status::Different;
                t.normA = t.diff.normA();
                t.normB = t.diff.normB();
                if (t.diff.finite < t.diff.count) {
                    // A NaN or infinity on either side, which the figures leave out: counted, and
                    // the norms made torch's (a tensor that went to inf has the norm inf).
                    const TensorStats sa = api.statistics(ra, options.m_cancelled),
                                      sb = api.statistics(rb, options.m_cancelled);
                    t.nonFinite = {sa.nanCount, sa.infCount, sb.nanCount, sb.infCount};
                    t.normA = torchNorm(sa);
                    t.normB = torchNorm(sb);
                }
            } catch (const std::exception &e) {
                // Cut short by a cancel: the comparison stops, not this tensor "unreadable".
                if (options.m_cancelled && options.m_cancelled())
                    throw std::runtime_error("comparison cancelled");
                t.status = TensorComparison::Status::Unreadable;
                t.error = e.what();
            }
        }
        if (t.status != TensorComparison::Status::ShapeChanged && t.status != TensorComparison::Status::Unreadable) {
            const std::string module = moduleOf(t.name.substr(std::min(c.prefixA.size(), t.name.size())));
            auto &m = modules[module];
            m.tensors += 1;
            m.changed += t.status != TensorComparison::Status::Identical;
            auto &p = pools[module];
            if (dtypeIsFloating(ra.dtype) || dtypeIsComplex(ra.dtype) || dtypeIsFloating(rb.dtype) ||
                dtypeIsComplex(rb.dtype)) {
                p.floating.add(t);
                p.floatingToo = true;
            } else {
                p.integers.add(t);
                if (t.status != TensorComparison::Status::Identical && t.diff.outside > 0) {
                    const std::string leaf = t.name.substr(std::min(t.name.size(), module.size() + (module.empty() ? 0 : 1)));
                    std::string what = leaf + " (" + std::to_string(t.diff.outside) + " of " +
                                       std::to_string(t.diff.count) + " elements)";
                    if (t.diff.count == 1) {
                        try {  // exactly, as integers: a step counter past 2^53 included
                            const TensorStats sa = api.statistics(ra), sb = api.statistics(rb);
                            if (sa.exact && sb.exact && !sa.exactUnsigned && !sb.exactUnsigned)
                                what = leaf + " " + std::to_string(sa.exactMin) + " -> " + std::to_string(sb.exactMin);
                        } catch (const std::exception &) {
                        }
                    }
                    m.integerChanges.push_back(std::move(what));
                }
            }
        }
        c.tensors.push_back(std::move(t));
        if (options.m_progress && !options.m_progress(++done, align.pairs.size()))
            throw std::runtime_error("comparison cancelled");
    }
    for (auto &[name, m] : modules) {
        m.name = name;
        const auto &p = pools[name];
        (p.floatingToo ? p.floating : p.integers).into(m);
        if (!p.floatingToo)
            m.integerChanges.clear();  // the figures are the integers' own
        c.modules.push_back(m);
    }
    // Diverged modules (a NaN or infinity came, went or moved) first: their figures, over the
    // finite positions, can read 0 for a module whose weights blew up.
    std::stable_sort(c.modules.begin(), c.modules.end(), [](const ModuleComparison &x, const ModuleComparison &y) {
        if (x.diverged() != y.diverged())
            return x.diverged();
        return x.diff.relativeL2() > y.diff.relativeL2();
    });

    // Metadata: every top-level entry whose saved value differs.
    std::map<std::string, std::pair<std::optional<MetadataText>, std::optional<MetadataText>>> meta;
    std::vector<std::string> order;
    PlainJsonBudget budget;
    auto collect = [&](const Document &d, bool first) {
        std::vector<std::pair<std::string, ValuePtr>> entries;
        std::set<std::string> keys;
        for (const auto &e : metadataEntries(d))
            if (e.role == MetadataEntry::Role::Plain && keys.insert(e.key).second)
                entries.emplace_back(e.key, e.value);
        // A safetensors file keeps these in its __metadata__ (as text): compared as the values
        // they were written from, so a checkpoint and its safetensors copy agree on its epoch.
        for (const auto &[k, v] : formatMetadataEntries(d))
            if (keys.insert(k).second)
                entries.emplace_back(k, v);
        auto texts = metadataTexts(entries, budget);
        for (std::size_t i = 0; i < entries.size(); ++i) {
            auto [it, fresh] = meta.try_emplace(entries[i].first);
            if (fresh)
                order.push_back(entries[i].first);
            (first ? it->second.first : it->second.second) = std::move(texts[i]);
        }
    };
    collect(a, true);
    collect(b, false);
    const auto shown = [](const std::optional<MetadataText> &t) {
        return t ? std::optional<std::string>(t->shown) : std::nullopt;
    };
    const auto python = [](const std::optional<MetadataText> &t) {
        return t ? std::optional<std::string>(t->python) : std::nullopt;
    };
    for (const auto &k : order) {
        const auto &[va, vb] = meta[k];
        if (!va || !vb || !(*va == *vb))
            c.metadata.push_back({k, shown(va), shown(vb), python(va), python(vb)});
    }
    c.optimizerA = optimizerOf(a, api);
    c.optimizerB = optimizerOf(b, api);
    return c;
}

ojson comparisonToJson(const Comparison &c)
{
    ojson j;
    j["a"] = c.fileA;
    j["b"] = c.fileB;
    j["atol"] = c.atol;
    j["rtol"] = c.rtol;
    j["equal"] = c.weightsEqual();
    j["prefixes"] = {{"a", c.prefixA}, {"b", c.prefixB}};
    j["removed"] = c.onlyA;
    j["added"] = c.onlyB;
    if (!c.setAsideA.empty() || !c.setAsideB.empty()) {
        auto &list = j["set_aside"] = ojson::array();
        for (const auto *side : {&c.setAsideA, &c.setAsideB})
            for (const auto &s : *side) {
                ojson e{{"file", side == &c.setAsideA ? "a" : "b"}};
                e.update(setAsideJson(s));
                list.push_back(std::move(e));
            }
    }
    std::map<std::string, int> counts;
    ojson tensors = ojson::array();
    for (const auto &t : c.tensors) {
        ++counts[statusName(t.status)];
        ojson e{{"name", t.name}};
        if (t.nameB != t.name)
            e["name_b"] = t.nameB;
        e["status"] = statusName(t.status);
        e["dtype"] = t.dtypeA == t.dtypeB ? ojson(t.dtypeA) : ojson{t.dtypeA, t.dtypeB};
        e["shape"] = t.shapeA == t.shapeB ? ojson(t.shapeA) : ojson{t.shapeA, t.shapeB};
        if (t.status == TensorComparison::Status::Unreadable)
            e["error"] = t.error;
        else if (t.status != TensorComparison::Status::ShapeChanged)
            e.update(diffJson(t.diff, t.nonFinite, t.normA, t.normB));
        tensors.push_back(std::move(e));
    }
    ojson summary{{"compared", c.tensors.size()}, {"removed", c.onlyA.size()}, {"added", c.onlyB.size()}};
    for (const char *s : {"identical", "close", "different", "shape_changed", "unreadable"})
        summary[s] = counts[s];
    j["summary"] = summary;
    j["tensors"] = tensors;
    ojson modules = ojson::array();
    for (const auto &m : c.modules) {
        ojson e{{"name", m.name}, {"tensors", m.tensors}, {"changed", m.changed}, {"diverged", m.diverged()}};
        e.update(diffJson(m.diff, m.nonFinite, m.normA, m.normB));
        // Integer tensors beside floating ones, left out of the figures above, that changed.
        e["integer_changes"] = m.integerChanges;
        modules.push_back(std::move(e));
    }
    j["modules"] = modules;
    ojson meta = ojson::array();
    for (const auto &m : c.metadata)
        meta.push_back({{"key", m.key},
                        {"a", m.a ? parseOrderedJson(*m.a) : ojson(nullptr)},  // linear in the keys
                        {"b", m.b ? parseOrderedJson(*m.b) : ojson(nullptr)},
                        {"change", !m.a ? "added" : !m.b ? "removed" : "changed"}});
    j["metadata"] = meta;
    j["optimizer"] = {{"a", optimizerJson(c.optimizerA)},
                      {"b", optimizerJson(c.optimizerB)},
                      {"changes", optimizerChanges(c.optimizerA, c.optimizerB)}};
    return j;
}

Series computeSeries(const std::vector<const Document *> &input, const ComputeApi &api,
                     const std::function<bool(std::size_t, std::size_t)> &progress, const CancelCheck &cancelled)
{
    struct Item {
        const Document *doc;
        SeriesPoint point;
    };
    std::vector<Item> items;
    for (const Document *d : input) {
        SeriesPoint p{d->path, std::nullopt, std::nullopt, {}, {}};
        p.epoch = orderingField(*d, "Epoch", "epoch", api, p.notes);
        p.step = orderingField(*d, "Step", "step", api, p.notes);
        // A Trainer's checkpoint folder keeps its step in trainer_state.json, not in the weights.
        // (Its epoch is fractional, 1.5: not a place in the run; the step is.)
        if (!p.step && d->folder && d->folder->trainerState && d->folder->trainerState->globalStep) {
            p.step = d->folder->trainerState->globalStep;
            p.notes.push_back("step " + std::to_string(*p.step) + " from the folder's trainer_state.json");
        }
        // The weights file of such a folder named by itself (checkpoint-100/model.safetensors): the
        // same step, from the trainer_state.json beside it, so that naming the file or the folder
        // orders alike.
        if (!p.step && !d->folder) {
            std::error_code ec;
            const auto beside = std::filesystem::path(d->path).parent_path() / "trainer_state.json";
            if (std::filesystem::is_regular_file(beside, ec)) {
                try {
                    if (const auto state = readTrainerState(beside.string()); state.globalStep) {
                        p.step = state.globalStep;
                        p.notes.push_back("step " + std::to_string(*p.step) + " from trainer_state.json beside the file");
                    }
                } catch (const std::exception &) {
                    // An unreadable trainer state beside a file orders nothing; the file is still compared.
                }
            }
        }
        // The same file given twice (a glob and a name) is compared with itself: said.
        for (std::size_t k = 0; k < items.size(); ++k) {
            std::error_code ec;
            if (std::filesystem::equivalent(items[k].doc->path, d->path, ec) && !ec) {
                p.notes.push_back("the same file as " + items[k].point.file + ", given again");
                break;
            }
        }
        items.push_back({d, std::move(p)});
    }
    // The field that orders: the epoch where any checkpoint records one, else the step. Those that
    // record it are sorted (by it, then the other, then the file name) among the places they hold in
    // the list given; one that records none keeps its place rather than go first as a baseline the
    // user did not choose. Where none records either, the natural order of the file names.
    const bool byEpoch = std::any_of(items.begin(), items.end(), [](const Item &i) { return i.point.epoch.has_value(); });
    const bool byStep = !byEpoch && std::any_of(items.begin(), items.end(), [](const Item &i) { return i.point.step.has_value(); });
    const auto field = [byEpoch](const Item &i) { return byEpoch ? i.point.epoch : i.point.step; };
    const auto key = [byEpoch](const Item &i) {
        const auto &first = byEpoch ? i.point.epoch : i.point.step;
        const auto &second = byEpoch ? i.point.step : i.point.epoch;
        return std::make_tuple(first.value_or(INT64_MIN), second.value_or(INT64_MIN), naturalKey(i.point.file));
    };
    std::vector<std::size_t> places;  // where the checkpoints that record the field are in the list
    std::vector<Item> ordered;
    for (std::size_t k = 0; k < items.size(); ++k)
        if (!(byEpoch || byStep) || field(items[k]))
            places.push_back(k);
    for (std::size_t k : places)
        ordered.push_back(items[k]);
    std::stable_sort(ordered.begin(), ordered.end(), [&key](const Item &x, const Item &y) { return key(x) < key(y); });
    for (std::size_t i = 0; i < places.size(); ++i)
        items[places[i]] = std::move(ordered[i]);
    std::vector<std::string> unordered;  // files that record no epoch (or step) where others do
    const char *word = byEpoch ? "epoch" : "step";
    if (byEpoch || byStep)
        for (std::size_t k = 0; k < items.size(); ++k)
            if (!field(items[k])) {
                unordered.push_back(items[k].point.file);
                items[k].point.notes.push_back(std::string("no ") + word + " recorded: kept at place " +
                                               std::to_string(k + 1) + " of the list given");
            }
    std::string ordering = !(byEpoch || byStep) ? "ordered by file name (no checkpoint records an epoch or step)"
                           : byEpoch            ? "ordered by epoch, then step, then file name"
                                                : "ordered by step, then file name (no checkpoint records an epoch as a "
                                                  "whole number)";
    if (!unordered.empty()) {
        ordering += "; " + std::to_string(unordered.size()) + (unordered.size() == 1 ? " checkpoint records" : " checkpoints record") +
                    " no " + word + " and " + (unordered.size() == 1 ? "keeps its" : "keep their") +
                    " place in the list given:";
        for (std::size_t i = 0; i < unordered.size() && i < 5; ++i)
            ordering += (i ? ", " : " ") + unordered[i];
        if (unordered.size() > 5)
            ordering += ", and " + std::to_string(unordered.size() - 5) + " more";
    }
    Series s;
    s.ordering = std::move(ordering);
    for (const auto &i : items)
        s.points.push_back(i.point);
    if (items.empty())
        return s;

    // Layers: every tensor any checkpoint holds, matched across checkpoints by aligned name (each
    // checkpoint against the names gathered so far), in the order they first appear.
    const std::size_t n = items.size();
    std::vector<std::string> names;
    std::vector<std::vector<const TensorRef *>> at(n);  // [checkpoint][layer]
    for (std::size_t k = 0; k < n; ++k) {
        const auto &ts = tensorsOf(*items[k].doc);
        const KeyAlignment align = alignKeys(names, namesOf(ts));
        std::vector<const TensorRef *> current(names.size() + align.onlyB.size(), nullptr);
        for (const auto &[i, j] : align.pairs)
            current[i] = &ts[j].ref();
        for (std::size_t j : align.onlyB) {
            current[names.size()] = &ts[j].ref();
            names.push_back(ts[j].name);
        }
        // AveragedModel's counter is no layer: said per checkpoint rather than dropped unsaid.
        for (std::size_t j : align.wrapperB)
            s.points[k].setAside.push_back(setAsideTensor(ts[j]));
        at[k] = std::move(current);
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    s.layers.resize(names.size());
    for (std::size_t l = 0; l < names.size(); ++l) {
        SeriesLayer &layer = s.layers[l];
        layer.name = names[l];
        layer.shape.assign(n, std::nullopt);
        layer.norm.assign(n, nan);
        layer.driftFromFirst.assign(n, nan);
        layer.driftFromPrevious.assign(n, nan);
        layer.normGap.assign(n, SeriesGap::Absent);
        layer.fromFirstGap.assign(n, SeriesGap::Absent);
        layer.fromPreviousGap.assign(n, SeriesGap::Absent);
        layer.nanCount.assign(n, 0);
        layer.infCount.assign(n, 0);
    }
    const auto tensorAt = [&at](std::size_t k, std::size_t l) { return l < at[k].size() ? at[k][l] : nullptr; };
    // Asked between chunks; once it says stop, a tensor's pass that throws was cancelled, not
    // unreadable, and the series stops.
    bool stopped = false;
    const CancelCheck ask = [&] { return stopped = stopped || (cancelled && cancelled()); };
    const auto rethrowIfCancelled = [&stopped] {
        if (stopped)
            throw std::runtime_error("series cancelled");
    };
    // The drift of `t` from `other` (checkpoint `k`'s tensor from an earlier one), with why none.
    // ||t - other|| as torch gives it (inf, NaN where they hold such values), from their difference.
    const auto driftOf = [&api, &ask](const TensorDiff &d, const TensorRef &other, const TensorRef &t) {
        return d.finite < d.count ? torchDiffNorm(d, api.statistics(other, ask), api.statistics(t, ask)) : d.normDiff();
    };
    const auto drift = [&](const TensorRef *other, const TensorRef &t, double &value, SeriesGap &gap) {
        if (!other)
            gap = SeriesGap::AbsentOther;
        else if (other->shape != t.shape)
            gap = SeriesGap::ShapeChanged;
        else {
            try {
                value = driftOf(api.difference(*other, t, 0, 0, ask), *other, t);
                gap = SeriesGap::None;
            } catch (const std::exception &) {
                rethrowIfCancelled();
                gap = SeriesGap::Unreadable;
            }
        }
    };
    const std::size_t total = n * names.size();
    std::size_t done = 0;
    for (std::size_t k = 0; k < n; ++k) {
        for (std::size_t l = 0; l < names.size(); ++l) {
            SeriesLayer &layer = s.layers[l];
            if (const TensorRef *t = tensorAt(k, l)) {
                layer.shape[k] = t->shape;
                layer.floating = layer.floating || dtypeIsFloating(t->dtype) || dtypeIsComplex(t->dtype);
                const TensorRef *first = tensorAt(0, l);
                try {
                    // The norm is always this checkpoint's own tensor's; where it has the first's
                    // shape, one pass gives it and the drift from the first together. Those figures
                    // leave out positions that are not finite: where there are any, the tensor's
                    // statistics count them and the norm and drift are torch's (inf, NaN).
                    const bool sameShape = first && first->shape == t->shape;
                    const TensorDiff d = api.difference(sameShape ? *first : *t, *t, 0, 0, ask);
                    layer.norm[k] = d.normB();
                    if (d.finite < d.count) {
                        const TensorStats st = api.statistics(*t, ask);
                        layer.norm[k] = torchNorm(st);
                        layer.nanCount[k] = st.nanCount;
                        layer.infCount[k] = st.infCount;
                    }
                    if (sameShape) {
                        layer.driftFromFirst[k] = driftOf(d, *first, *t);
                        layer.fromFirstGap[k] = SeriesGap::None;
                    } else {
                        layer.fromFirstGap[k] = first ? SeriesGap::ShapeChanged : SeriesGap::AbsentOther;
                    }
                    layer.normGap[k] = SeriesGap::None;
                } catch (const std::exception &) {
                    rethrowIfCancelled();
                    layer.normGap[k] = layer.fromFirstGap[k] = SeriesGap::Unreadable;
                }
                if (k == 0) {
                    // Against itself, as the drift from the first: 0, or NaN as torch's w - w
                    // where w holds a NaN or an infinity.
                    layer.driftFromPrevious[k] = layer.normGap[k] == SeriesGap::None ? layer.driftFromFirst[k] : nan;
                    layer.fromPreviousGap[k] = layer.normGap[k];
                } else if (layer.normGap[k] == SeriesGap::Unreadable) {
                    layer.fromPreviousGap[k] = SeriesGap::Unreadable;
                } else {
                    drift(tensorAt(k - 1, l), *t, layer.driftFromPrevious[k], layer.fromPreviousGap[k]);
                }
            }
            if (progress && !progress(++done, total))
                throw std::runtime_error("series cancelled");
        }
    }
    return s;
}

std::string seriesGapText(SeriesGap g, bool fromFirst)
{
    switch (g) {
    case SeriesGap::None: return {};
    case SeriesGap::Absent: return "absent";
    case SeriesGap::AbsentOther: return fromFirst ? "absent from the first checkpoint" : "absent from the previous checkpoint";
    case SeriesGap::ShapeChanged: return "shape changed";
    case SeriesGap::Unreadable: return "unreadable";
    }
    return {};
}

ojson seriesToJson(const Series &s)
{
    ojson points = ojson::array();
    for (const auto &p : s.points)
        points.push_back({{"file", p.file},
                          {"epoch", p.epoch ? ojson(*p.epoch) : ojson(nullptr)},
                          {"step", p.step ? ojson(*p.step) : ojson(nullptr)},
                          {"notes", p.notes},
                          {"set_aside", [&p] {
                               ojson list = ojson::array();
                               for (const auto &a : p.setAside)
                                   list.push_back(setAsideJson(a));
                               return list;
                           }()}});
    // Per layer, arrays with one entry per checkpoint; a figure is null exactly where its reason
    // (in "reasons") is not null: why there is none, or "nan" where the figure is NaN (JSON has no
    // NaN; an infinite one is "inf").
    ojson layers = ojson::array();
    for (const auto &l : s.layers) {
        ojson present = ojson::array(), shape = ojson::array(), norm = ojson::array(), first = ojson::array(),
              prev = ojson::array(), normWhy = ojson::array(), firstWhy = ojson::array(), prevWhy = ojson::array(),
              nans = ojson::array(), infs = ojson::array();
        const auto why = [](SeriesGap g, bool fromFirst, double v) {
            return g != SeriesGap::None ? ojson(seriesGapText(g, fromFirst)) : std::isnan(v) ? ojson("nan") : ojson(nullptr);
        };
        for (std::size_t k = 0; k < l.norm.size(); ++k) {
            present.push_back(l.present(k));
            shape.push_back(l.shape[k] ? ojson(*l.shape[k]) : ojson(nullptr));
            norm.push_back(l.normGap[k] == SeriesGap::None ? number(l.norm[k]) : ojson(nullptr));
            first.push_back(l.fromFirstGap[k] == SeriesGap::None ? number(l.driftFromFirst[k]) : ojson(nullptr));
            prev.push_back(l.fromPreviousGap[k] == SeriesGap::None ? number(l.driftFromPrevious[k]) : ojson(nullptr));
            normWhy.push_back(why(l.normGap[k], false, l.norm[k]));
            firstWhy.push_back(why(l.fromFirstGap[k], true, l.driftFromFirst[k]));
            prevWhy.push_back(why(l.fromPreviousGap[k], false, l.driftFromPrevious[k]));
            const bool counted = l.normGap[k] == SeriesGap::None;
            nans.push_back(counted ? ojson(l.nanCount[k]) : ojson(nullptr));
            infs.push_back(counted ? ojson(l.infCount[k]) : ojson(nullptr));
        }
        layers.push_back({{"name", l.name},
                          {"present", present},
                          {"shape", shape},
                          {"norm", norm},
                          {"drift_from_first", first},
                          {"drift_from_previous", prev},
                          {"nan_count", nans},
                          {"inf_count", infs},
                          {"reasons", {{"norm", normWhy}, {"drift_from_first", firstWhy}, {"drift_from_previous", prevWhy}}}});
    }
    ojson skipped = ojson::array();
    for (const auto &k : s.skipped)
        skipped.push_back({{"file", k.file}, {"reason", k.reason}});
    return ojson{{"ordering", s.ordering}, {"checkpoints", points}, {"skipped", skipped}, {"layers", layers}};
}

} // namespace ckpt
