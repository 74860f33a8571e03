#pragma once

// How a prediction's outputs are read: probabilities, the best classes. Plain C++ on the outputs
// LibTorch gave (no LibTorch): the predictor reads each run with it, and the prediction pane reads
// a result again when the user asks for another reading, without running the model again.
#include "architecture.h"
#include "computeapi.h"

#include <string>
#include <vector>

namespace ckpt {

// The order outputs and probabilities are ranked in: larger first, NaN after every number (-inf
// included). A strict weak order, which comparing NaN with > is not.
bool outputRanksBefore(double a, double b);

// One sample's output shape: the result's output shape without its batch dimension (the whole
// shape when the output has none, as the predictor then reads it as one sample).
std::vector<std::int64_t> sampleOutputShape(const PredictionResult &result);

// Whether a sample's output of `shape` is one score per class: a vector, or a shape with at most
// one dimension longer than 1 ([5], [5, 1, 1]). [8, 8, 5] is not: a map, a sequence, an image.
bool isScorePerClass(const std::vector<std::int64_t> &shape);

// Fills each sample's probabilities, top classes (the `topK` best, named by `classNames`), argmax
// and the result's probabilitiesFrom from the samples' outputs (`logits`), read as `how` says:
// "auto" (as `output` — the architecture's last layer — and the width say: softmax; sigmoid for a
// single output; exp of log-probabilities; probabilities as they are), "softmax", "sigmoid" (each
// output on its own) or "none" (no probabilities; the top ranked by value). NaN ranks last. When a
// sample's output is not one score per class (isScorePerClass), "auto" reads values ("none") and
// no class names are given: its flattened values are not classes.
// Throws std::runtime_error for another `how`.
void readOutputs(PredictionResult &result, Architecture::Output output, const std::string &how, int topK,
                 const std::vector<std::string> &classNames);

} // namespace ckpt
