#include "predictionjson.h"

#include "architecture.h"
#include "predictionoutputs.h"
#include "tensorref.h"

#include <cmath>
#include <cstdio>

namespace ckpt {

nlohmann::ordered_json predictionToJson(const PredictionResult &r, const Architecture &arch,
                                        const std::vector<std::string> &notes, const std::vector<std::int64_t> &inputShape)
{
    using json = nlohmann::ordered_json;
    json outputs = json::array();
    for (const auto &s : r.outputs) {
        json top = json::array();
        for (const auto &t : s.top)
            top.push_back({{"index", t.index},
                           {"class", t.label.empty() ? json() : json(t.label)},
                           {"probability", r.probabilitiesFrom == "none" ? json() : json(t.probability)},
                           {"value", t.value}});
        outputs.push_back({{"logits", s.logits}, {"probabilities", s.probabilities}, {"argmax", s.argmax}, {"top", top}});
    }
    return {{"device", r.device},
            {"architecture",
             {{"source", sourceName(arch.source)}, {"exact", arch.exact}, {"assumptions", arch.assumptions}}},
            {"warnings", arch.warnings},
            {"normalized", r.normalized},
            {"dtype", r.dtype},
            {"half", r.dtype == "float16"},
            {"input_shape", inputShape},
            {"output_shape", r.outputShape},
            {"outputs", outputs},
            {"probabilities_from", r.probabilitiesFrom},
            {"probability_rule", probabilityRule(r)},
            {"latency_ms", r.latencyMs},
            {"latency_runs_ms", r.runsMs},
            {"notes", notes}};
}

std::string probabilityRule(const PredictionResult &r)
{
    const std::string &from = r.probabilitiesFrom;
    if (from == "sigmoid")
        return r.outputs.empty() || r.outputs.front().logits.size() == 1
                   ? "one output, taken as a binary classifier's logit: its probability is sigmoid(logit)"
                   : "each output's probability is sigmoid(output), on its own (multi-label)";
    if (from == "none" && !isScorePerClass(sampleOutputShape(r)))
        return "outputs as values: each sample's output has shape " + shapeText(sampleOutputShape(r)) +
               ", not one score per class; its values are listed flattened (row-major), ranked by value, "
               "no probabilities";
    if (from == "none")
        return "outputs as values (--probabilities none): ranked by value, no probabilities";
    if (from == "exp")
        return "probabilities are exp(output): the model's last layer is a LogSoftmax, its outputs are "
               "log-probabilities";
    if (from == "as is")
        return "probabilities are the outputs as they are: the model's last layer (a Softmax or a Sigmoid) gives "
               "probabilities already";
    return "probabilities are softmax(outputs) over each sample's outputs: they are read as logits";
}

std::string predictionToText(const PredictionResult &r, const std::vector<std::string> &warnings)
{
    std::string out;
    char buf[64];
    // Beside the numbers they concern, not among the notes above them.
    for (const auto &w : warnings)
        out += "warning: " + w + "\n";
    for (std::size_t i = 0; i < r.outputs.size(); ++i) {
        const auto &s = r.outputs[i];
        out += "sample " + std::to_string(i + 1) + ":";
        for (const auto &t : s.top) {
            // A NaN probability (a model whose outputs are NaN) reads "nan", as torch prints it,
            // not printf's "-nan".
            const std::string figure = r.probabilitiesFrom == "none" ? formatFloat(t.value)
                                       : !std::isfinite(t.probability) ? formatFloat(t.probability)
                                                                       : [&] {
                                                                             std::snprintf(buf, sizeof buf, "%.4f", t.probability);
                                                                             return std::string(buf);
                                                                         }();
            out += "  " + (t.label.empty() ? "#" + std::to_string(t.index) : t.label) + " " + figure;
        }
        out += r.probabilitiesFrom == "none" ? "\n  outputs:" : "\n  logits:";
        for (std::size_t j = 0; j < s.logits.size() && j < 20; ++j)
            out += " " + formatFloat(s.logits[j]);
        out += s.logits.size() > 20 ? " ...\n" : "\n";
    }
    out += probabilityRule(r) + "\n";
    std::snprintf(buf, sizeof buf, "%.3f", r.latencyMs);
    out += "device: " + r.device + (r.dtype != "float32" ? " (" + r.dtype + ")" : "") + "  latency: " + buf + " ms";
    if (r.runsMs.size() > 1) {
        std::snprintf(buf, sizeof buf, "%.3f", r.runsMs.front());
        out += " (median of " + std::to_string(r.runsMs.size()) + " runs; the first " + buf + " ms)";
    }
    out += "\n";
    return out;
}

} // namespace ckpt
