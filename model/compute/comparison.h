#pragma once

#include "computeapi.h"
#include "document.h"
#include "keyalign.h"

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ckpt {

// A cosine similarity for people: six significant digits, and where those round a value short of 1
// to "1", the gap instead ("1 - 2e-07"); "nan" for NaN.
std::string cosineText(double v);

// The cosine similarity of the positions a TensorDiff compared without float64's rounding: exactly
// 1 where the values are equal (two zero tensors included; torch's own gives 1 - 1.1e-16 for some),
// never past [-1, 1]; NaN for a zero tensor against another, as TensorDiff::cosine has it.
double cosineOf(const TensorDiff &d);

// Options for comparing two checkpoints, set LibTorch-style: CompareOptions().atol(1e-6).
struct CompareOptions {
    CompareOptions &atol(double v) { m_atol = v; return *this; }
    CompareOptions &rtol(double v) { m_rtol = v; return *this; }
    CompareOptions &map(KeyMapping m) { m_mappings.push_back(std::move(m)); return *this; }
    // Called after each tensor with (done, total); returning false cancels (compare throws).
    CompareOptions &progress(std::function<bool(std::size_t, std::size_t)> f) { m_progress = std::move(f); return *this; }
    // Asked within each tensor too, between chunks (ComputeApi's CancelCheck): true stops a
    // comparison of two 10-GB tensors there, and compare throws; no tensor is then reported
    // unreadable for having been cut short.
    CompareOptions &cancelled(CancelCheck f) { m_cancelled = std::move(f); return *this; }

    double m_atol = 0.0;
    double m_rtol = 0.0;
    std::vector<KeyMapping> m_mappings;
    std::function<bool(std::size_t, std::size_t)> m_progress;
    CancelCheck m_cancelled;
};

// How many NaN and infinite elements each file's tensor holds (pooled over a module's tensors):
// the figures of a TensorDiff leave such positions out, these say they are there.
struct NonFiniteValues {
    std::int64_t nanA = 0, infA = 0, nanB = 0, infB = 0;
    bool any() const { return nanA || infA || nanB || infB; }
    void add(const NonFiniteValues &o)
    {
        nanA += o.nanA;
        infA += o.infA;
        nanB += o.nanB;
        infB += o.infB;
    }
};

// One tensor present in both files.
struct TensorComparison {
    enum class Status { Identical, Close, Different, ShapeChanged, Unreadable };
    std::string name;      // a's name
    std::string nameB;     // b's name (differs when prefixes or mappings were applied)
    std::string dtypeA, dtypeB;
    std::vector<std::int64_t> shapeA, shapeB;
    Status status = Status::Identical;
    TensorDiff diff;
    NonFiniteValues nonFinite;
    // Each file's tensor's own L2 norm as torch gives it: inf where it holds an infinity, NaN where
    // it holds a NaN (diff.normA() and normB() leave out the positions where either is not finite).
    double normA = 0, normB = 0;
    std::string error;     // Unreadable: why
};
std::string statusName(TensorComparison::Status s);  // "identical", "close", "different", "shape_changed", "unreadable"

// Figures of one module (the names' dotted prefix), summed over its tensors present in both files.
struct ModuleComparison {
    std::string name;      // "" for tensors at the top level
    int tensors = 0;
    int changed = 0;       // tensors not identical
    TensorDiff diff;
    NonFiniteValues nonFinite;
    double normA = 0, normB = 0;  // of the pooled tensors, as for one tensor (inf, NaN)
    // Integer tensors of a module that also holds floating ones (left out of its figures) that
    // changed: "num_batches_tracked 6 -> 7" for one element, "steps (3 of 8 elements)" otherwise.
    std::vector<std::string> integerChanges;
    // Changed only through such integers: its figures (of the floating tensors) read no change.
    bool onlyIntegersChanged() const { return !integerChanges.empty() && diff.scaled.abs == 0 && diff.nonFinite == 0; }
    // NaN or an infinity appeared, went or moved between the files (diff.nonFinite > 0): its
    // figures over the finite positions may read unchanged while the module diverged.
    bool diverged() const { return diff.nonFinite > 0; }
};

// A top-level metadata entry that differs: its JSON text on each side (absent: nullopt), and the
// value as Python prints it (pythonRepr, cut at a few thousand characters) for text output.
struct MetadataChange {
    std::string key;
    std::optional<std::string> a;
    std::optional<std::string> b;
    std::optional<std::string> pythonA;
    std::optional<std::string> pythonB;
};

struct OptimizerSummary {
    std::string type;
    std::vector<double> learningRates;  // per param group
    std::optional<double> step;         // the largest step any parameter records
    std::optional<double> minStep;      // the smallest (a parameter frozen for a while lags)
    // Per param group, its hyper-parameters (every entry but "params") as Python prints them.
    std::vector<std::vector<std::pair<std::string, std::string>>> groups;
};
// "Adam lr 0.001 step 5" ("step 3..5" where parameters record different steps; "none").
std::string optimizerText(const std::optional<OptimizerSummary> &o);
// What changed from a to b, one line each: "group 1: momentum 0.9 -> 0.5", "step 1 -> 2",
// "class SGD -> Adam", "param groups 2 -> 3"; empty when nothing did.
std::vector<std::string> optimizerChanges(const std::optional<OptimizerSummary> &a, const std::optional<OptimizerSummary> &b);

// A tensor the name alignment set aside rather than compared or listed as removed or added:
// torch.optim.swa_utils.AveragedModel's n_averaged (see keyalign.h), the count of models SWA or EMA
// averaged, which the plain model does not have. `ckpt diff`, `ckpt series` and the Compare view
// say so in the same words, from these.
struct SetAsideTensor {
    std::string name;
    std::optional<double> value;  // its one number, when it holds exactly one
};
SetAsideTensor setAsideTensor(const NamedTensor &t);
// "n_averaged of the first file (3) is the count of models torch.optim.swa_utils.AveragedModel
// averaged, not a weight: set aside"; `whose` ("the first file") may be empty: "n_averaged (3) is ...".
std::string setAsideText(const SetAsideTensor &s, const std::string &whose = {});
// {"name": "n_averaged", "what": "averaged_model_count", "value": 3}
nlohmann::ordered_json setAsideJson(const SetAsideTensor &s);

struct Comparison {
    std::string fileA, fileB;
    std::string prefixA, prefixB;           // wrapper prefixes set aside to align the names
    std::vector<SetAsideTensor> setAsideA, setAsideB;  // AveragedModel counters the other file has none to pair with
    std::vector<std::string> onlyA, onlyB;  // removed (only in a) and added (only in b)
    std::vector<TensorComparison> tensors;  // in both, in a's order
    std::vector<ModuleComparison> modules;  // diverged ones first, then most changed (relative L2)
    std::vector<MetadataChange> metadata;
    std::optional<OptimizerSummary> optimizerA, optimizerB;
    double atol = 0, rtol = 0;
    // Same tensor names (after alignment), shapes, and values within tolerance.
    bool weightsEqual() const;
};

// Compares the state dicts (every tensor when a file has none), metadata and optimizer state of two
// documents. Tensor figures come from `api`, one tensor pair at a time.
Comparison compareDocuments(const Document &a, const Document &b, const ComputeApi &api, const CompareOptions &options = {});
nlohmann::ordered_json comparisonToJson(const Comparison &c);

// A run's checkpoints in order: per tensor, its L2 norm at each checkpoint and its drift
// (||w_t - w_first||, ||w_t - w_previous||). Every tensor named in any checkpoint is a layer, in the
// order they first appear; where a figure cannot be given it is NaN and its gap says why. The
// figures are torch's: a norm or drift of a tensor holding an infinity is inf, one holding a NaN is
// NaN (with no gap), as is the drift between two that hold the same infinity at one place.
struct SeriesPoint {
    std::string file;
    std::optional<std::int64_t> epoch;  // an int, a whole float or a one-element tensor of either
    std::optional<std::int64_t> step;
    std::vector<std::string> notes;     // an epoch or step that is not a whole number, and so no order
    std::vector<SetAsideTensor> setAside;  // its AveragedModel counter, which is no layer of the model
};
enum class SeriesGap : std::uint8_t {
    None,              // the figure is there
    Absent,            // this checkpoint lacks the tensor
    AbsentOther,       // the checkpoint drifted from (the first, the previous) lacks it
    ShapeChanged,      // the two checkpoints hold it in different shapes: no drift between them
    Unreadable,        // its data could not be read
};
std::string seriesGapText(SeriesGap g, bool fromFirst);  // "absent", "shape changed", ...
struct SeriesLayer {
    std::string name;
    std::vector<std::optional<std::vector<std::int64_t>>> shape;  // per checkpoint; nullopt: absent
    std::vector<double> norm;           // NaN where normGap says why
    std::vector<double> driftFromFirst;
    std::vector<double> driftFromPrevious;
    std::vector<SeriesGap> normGap, fromFirstGap, fromPreviousGap;
    // Per checkpoint, the tensor's NaN and infinite elements (0 where absent or unreadable).
    std::vector<std::int64_t> nanCount, infCount;
    // Some checkpoint holds it as a floating (or complex) tensor: a weight, not a counter such as
    // BatchNorm's num_batches_tracked, whose figures would swamp the weights' on one chart.
    bool floating = false;
    bool present(std::size_t k) const { return shape[k].has_value(); }
};
// A file named for the series that could not be read, and why: left out, the others still compared.
struct SeriesSkipped {
    std::string file;
    std::string reason;
};
struct Series {
    std::vector<SeriesPoint> points;
    std::vector<SeriesLayer> layers;
    // How the checkpoints were ordered, in a sentence ("by epoch; ..."), naming any that record no epoch.
    std::string ordering;
    std::vector<SeriesSkipped> skipped;  // set by the caller that read the files
};
// Orders `docs` and computes the series. Where any records an epoch, those that do are sorted by
// epoch, then step, then file name (natural order) among the places they hold in `docs`, and those
// that record none keep their place; so by step where none records an epoch but some a step; by
// file name where none records either. `progress` is called after each tensor (false stops);
// `cancelled` is asked between the chunks of each tensor's pass, so that a cancel reaches inside a
// huge tensor. Either stopping throws std::runtime_error("series cancelled").
Series computeSeries(const std::vector<const Document *> &docs, const ComputeApi &api,
                     const std::function<bool(std::size_t, std::size_t)> &progress = {},
                     const CancelCheck &cancelled = {});
nlohmann::ordered_json seriesToJson(const Series &s);

} // namespace ckpt
