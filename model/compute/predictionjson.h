#pragma once

// A prediction as the JSON `ckpt predict --json` prints and the prediction pane copies; built on
// the compute interface alone (no LibTorch).
#include "computeapi.h"

#include <nlohmann/json.hpp>

namespace ckpt {

struct Architecture;

// {"device", "architecture": {"source", "exact", "assumptions"}, "normalized", "half", "input_shape",
//  "output_shape", "outputs": [{"logits", "probabilities", "argmax", "top": [{"index", "class",
//  "probability"}]}], "probabilities_from": "softmax|sigmoid|exp|as is", "probability_rule", "latency_ms", "notes",
//  "warnings"}.
nlohmann::ordered_json predictionToJson(const PredictionResult &result, const Architecture &arch,
                                        const std::vector<std::string> &notes, const std::vector<std::int64_t> &inputShape);

// How the probabilities shown were made from the outputs, as one sentence (softmax, sigmoid, exp of
// log-probabilities, the outputs as they are, or none): said with every result.
std::string probabilityRule(const PredictionResult &result);

// The same as lines of text: `warnings` (the architecture's, about what the result may get wrong)
// first, then per sample the top classes with their probabilities and the logits, then the
// probability rule.
std::string predictionToText(const PredictionResult &result, const std::vector<std::string> &warnings = {});

} // namespace ckpt
