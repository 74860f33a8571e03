#pragma once

// A prediction as the JSON `ckpt predict --json` prints and the prediction pane copies; built on
// the compute interface alone (no LibTorch).
#include "computeapi.h"

#include <nlohmann/json.hpp>

namespace ckpt {

struct Architecture;

// {"device", "architecture": {"source", "exact", "assumptions"}, "normalized", "half", "input_shape",
//  "output_shape", "outputs": [{"logits", "probabilities", "argmax", "top": [{"index", "class",
//  "probability"}]}], "probabilities_from": "softmax|sigmoid|exp|as is", "latency_ms", "notes"}.
nlohmann::ordered_json predictionToJson(const PredictionResult &result, const Architecture &arch,
                                        const std::vector<std::string> &notes, const std::vector<std::int64_t> &inputShape);

// The same as lines of text: per sample the top classes with their probabilities and the logits.
std::string predictionToText(const PredictionResult &result);

} // namespace ckpt
