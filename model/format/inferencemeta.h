#pragma once

#include "document.h"
#include "pilimage.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ckpt {

// Input normalisation an inference package carries: x' = (x - mean) / std, per feature (the last
// dimension of a feature vector) or per channel (dimension 1 of an image batch).
struct Preprocessing {
    std::vector<double> mean;
    std::vector<double> std;
    std::string source;  // where it was found: "input_mean/input_std", "preprocessing", "sidecar preprocessing"
    // When the file has a mean or std that cannot be used (only one of them, lengths that differ,
    // a zero std, not numbers): why, for the user; the inputs are then not normalised.
    std::string problem;
    bool present() const { return !mean.empty() && mean.size() == std.size(); }
};

// The package's normalisation: input_mean/input_std, or preprocessing/normalization {mean, std}
// (in the file, else its safetensors __metadata__, else its metadata sidecar); each a list of
// numbers, a small tensor or a numpy array. Absent (empty) when there is none or it is malformed,
// with `problem` saying what is wrong in the second case.
Preprocessing preprocessingOf(const Document &doc);

// Picture steps a package states for its inputs, as torchvision's transforms take them:
// resize / resize_size (one number: Resize(n), the shorter side to n and the longer in proportion;
// two: Resize((h, w))), then crop_size / center_crop / crop (CenterCrop; one number: a square);
// interpolation (PIL's filter for every resize: 'bilinear', 'bicubic', 'nearest', 'box', 'hamming',
// 'lanczos' in any case, PIL's ints 0 to 5, 'InterpolationMode.BICUBIC' and such; bilinear when
// unstated or unknown). Read from `preprocessing`, else the root (its sidecar, its safetensors
// metadata), else model_config. Any other entry of `preprocessing`
// that is not normalisation or an input size, and any of these that cannot be used, is listed in
// notApplied, for a note: nothing is dropped silently.
struct ImagePreprocessing {
    std::vector<std::int64_t> resize;     // [n] or [h, w]; empty: none
    std::vector<std::int64_t> crop;       // [h, w]; empty: none
    std::string resizeKey, cropKey;       // where each was found: "preprocessing.resize"
    ResampleFilter filter = ResampleFilter::Bilinear;  // torchvision's default
    std::string filterKey;                // where the interpolation was found; empty: none usable stated
    std::vector<std::string> notApplied;  // "preprocessing.interpolation 'bicubic'"
    bool present() const { return !resize.empty() || !crop.empty(); }
};
ImagePreprocessing imagePreprocessingOf(const Document &doc);

// Output names: class_names, classes, labels or names (a list), idx_to_class ({index: name}) or
// class_to_idx ({name: index}, inverted). Empty when the file names none.
std::vector<std::string> classNamesOf(const Document &doc);

// The numbers of a small tensor or numpy array whose sizes are all 1 but one ([3], [3, 1, 1]),
// read from its storage as doubles; empty for anything else (or a record that cannot be read).
std::vector<double> vectorTensorNumbers(const TensorRef &tensor);

// Input feature names: feature_names, features, input_names or columns (a list of strings).
std::vector<std::string> featureNamesOf(const Document &doc);

} // namespace ckpt
