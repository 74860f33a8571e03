#include "predictionoutputs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace ckpt {

namespace {

// softmax over one sample's outputs, the largest subtracted first (as torch.softmax does).
std::vector<double> softmax(const std::vector<double> &x)
{
    double top = -std::numeric_limits<double>::infinity();
    for (double v : x)
        top = std::max(top, v);  // NaN is not taken; a NaN output makes every probability NaN below
    std::vector<double> out(x.size());
    double sum = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        sum += out[i] = std::exp(x[i] - top);
    for (double &v : out)
        v /= sum;
    return out;
}

std::vector<double> elementwise(const std::vector<double> &x, double (*f)(double))
{
    std::vector<double> out(x.size());
    std::transform(x.begin(), x.end(), out.begin(), f);
    return out;
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
double exponential(double v) { return std::exp(v); }
double same(double v) { return v; }

} // namespace

bool outputRanksBefore(double a, double b) { return !std::isnan(a) && (std::isnan(b) || a > b); }

std::vector<std::int64_t> sampleOutputShape(const PredictionResult &r)
{
    // As the predictor splits the output: by its first dimension when that is the batch.
    const auto &shape = r.outputShape;
    if (!shape.empty() && shape.front() == static_cast<std::int64_t>(r.outputs.size()))
        return {shape.begin() + 1, shape.end()};
    return shape;
}

bool isScorePerClass(const std::vector<std::int64_t> &shape)
{
    return std::count_if(shape.begin(), shape.end(), [](std::int64_t d) { return d > 1; }) <= 1;
}

void readOutputs(PredictionResult &r, Architecture::Output output, const std::string &how, int topK,
                 const std::vector<std::string> &classNames)
{
    const std::size_t width = r.outputs.empty() ? 0 : r.outputs.front().logits.size();
    const bool perClass = isScorePerClass(sampleOutputShape(r));
    std::string from = how;
    if (how == "auto" && !perClass) {
        from = "none";  // a softmax over a map's or a sequence's flattened values is no class probability
    } else if (how == "auto") {
        switch (output) {
        case Architecture::Output::LogProbabilities: from = "exp"; break;
        case Architecture::Output::Probabilities: from = "as is"; break;
        // A softmax over one value is always 1: a single logit is a binary classifier's.
        case Architecture::Output::Logits: from = width == 1 ? "sigmoid" : "softmax"; break;
        }
    } else if (how != "softmax" && how != "sigmoid" && how != "none") {
        throw std::runtime_error("probabilities by '" + how + "': auto, softmax, sigmoid or none");
    }
    r.probabilitiesFrom = from;
    for (SampleOutput &s : r.outputs) {
        const std::vector<double> &x = s.logits;
        s.probabilities = from == "softmax" ? softmax(x)
                          : from == "sigmoid" ? elementwise(x, sigmoid)
                          : from == "exp"     ? elementwise(x, exponential)
                          : from == "as is"   ? elementwise(x, same)
                                              : std::vector<double>();
        // Ranked by probability, or by value when there are none (the same order for a softmax).
        const bool values = from == "none";
        const std::vector<double> &rank = values ? s.logits : s.probabilities;
        std::vector<std::size_t> order(rank.size());
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::stable_sort(order.begin(), order.end(),
                         [&rank](std::size_t a, std::size_t b) { return outputRanksBefore(rank[a], rank[b]); });
        s.argmax = order.empty() ? -1 : static_cast<std::int64_t>(order.front());
        s.top.clear();
        for (std::size_t j = 0; j < std::min<std::size_t>(static_cast<std::size_t>(std::max(topK, 0)), order.size()); ++j) {
            TopClass t;
            t.index = static_cast<std::int64_t>(order[j]);
            t.value = s.logits[order[j]];
            t.probability = values ? std::numeric_limits<double>::quiet_NaN() : s.probabilities[order[j]];
            if (perClass && order[j] < classNames.size())
                t.label = classNames[order[j]];
            s.top.push_back(t);
        }
    }
}

} // namespace ckpt
