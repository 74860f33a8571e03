#pragma once

#include "document.h"

#include <string>
#include <vector>

namespace ckpt {

// Input normalisation an inference package carries: x' = (x - mean) / std, per feature (the last
// dimension of a feature vector) or per channel (dimension 1 of an image batch).
struct Preprocessing {
    std::vector<double> mean;
    std::vector<double> std;
    std::string source;  // where it was found: "input_mean/input_std", "preprocessing", "sidecar preprocessing"
    bool present() const { return !mean.empty() && mean.size() == std.size(); }
};

// The package's normalisation: input_mean/input_std, or preprocessing/normalization {mean, std}
// (in the file, else in its metadata sidecar). Absent (empty) when there is none or it is malformed.
Preprocessing preprocessingOf(const Document &doc);

// Output names: class_names, classes, labels or names (a list), idx_to_class ({index: name}) or
// class_to_idx ({name: index}, inverted). Empty when the file names none.
std::vector<std::string> classNamesOf(const Document &doc);

// Input feature names: feature_names, features, input_names or columns (a list of strings).
std::vector<std::string> featureNamesOf(const Document &doc);

} // namespace ckpt
