#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pilimage.h"

namespace ckpt {

// Numbers for a prediction: a batch of rows, or an array with its shape (batch first).
struct InputTable {
    std::vector<std::int64_t> shape;   // [rows, columns] for text; the array's shape for .npy
    std::vector<double> values;        // row-major
    std::vector<std::string> header;   // column names when the CSV block had a header row
    std::string note;                  // what was done to the input on the way (an image resized)
    std::string resampled;             // an image resized: PIL's filter that did it ("bicubic"); else empty
    bool integer = false;              // a .npy of integers (or bools): the values are whole numbers
};

// One row of numbers separated by commas, semicolons, tabs or spaces ("0.5, 1, -2e-3").
// Throws FormatError naming the value that is not a number (`where` says which row).
std::vector<double> parseRow(const std::string &text, const std::string &where = "input");

// A CSV block: one sample per line, blank lines skipped, an optional header row of names.
// Every row must have as many values as the first. Throws FormatError naming the row and value.
InputTable parseCsv(const std::string &text, const std::string &where = "input");

// A .npy file's array (little- or big-endian float16/32/64, int8-64, uint8-64, bool; C or
// Fortran order) as doubles. Throws FormatError saying what is wrong with the file.
InputTable parseNpy(const std::string &bytes, const std::string &where);

// An image file (PNG, JPEG, BMP, GIF's first frame, …) as one sample for a convolutional model,
// bit for bit the tensor PIL and torchvision give: decoded as PIL decodes it (JPEG by libjpeg with
// PIL's settings), converted to `channels` channels as PIL's convert('L'/'RGB'/'RGBA') does,
// resized to `height` × `width` when it has another size by PIL's bilinear resize (torchvision's
// Resize((h, w)) on a PIL image; `note` says so; the ImageSteps form takes another filter), or kept at its own size when both are 0 (a model
// that takes any size); scaled to [0, 1] as ToTensor; shape [1, channels, height, width].
// Throws FormatError for what is not an image, or one wider or taller than kMaxImageSide.
inline constexpr int kMaxImageSide = 8192;
InputTable parseImage(const std::string &bytes, const std::string &where, int channels, int height, int width);

// What is done to a picture between decoding and ToTensor, in torchvision's order: `resize`
// ([n]: Resize(n), the shorter side to n, the longer to int(n · long / short); [h, w]:
// Resize((h, w))), then `crop` ([h, w]: CenterCrop, zero-padded where the picture is smaller, as
// torchvision pads), then, when `height` and `width` are not 0 and the picture has another size,
// straight to that size (a model of one size). Every resize is PIL's Image.resize with `filter`
// (torchvision's Resize(interpolation=...) on a PIL image). `resizeKey`, `cropKey` and
// `filterKey` say where the file states the steps, for the note.
struct ImageSteps {
    std::vector<std::int64_t> resize;
    std::vector<std::int64_t> crop;
    int height = 0, width = 0;
    std::string resizeKey, cropKey;
    ResampleFilter filter = ResampleFilter::Bilinear;
    std::string filterKey;
};
InputTable parseImage(const std::string &bytes, const std::string &where, int channels, const ImageSteps &steps);

struct ImagePreprocessing;
// The resize and crop a package states (inferencemeta's imagePreprocessingOf) as steps for parseImage.
ImageSteps statedImageSteps(const ImagePreprocessing &p);

struct Architecture;
// The steps for a picture going to a model whose samples have shape `sample` ([C, H, W], -1 where
// any size goes), after the file's own resize and crop (`stated`, whose height and width are
// ignored): the model's size last when it has one size or the file states it; nothing more when
// its layers take any size (an adaptive pool before the head) and they take the picture as the
// file's steps leave it, at the picture's own size when there are none.
ImageSteps imageSteps(const std::string &bytes, const Architecture &arch, const std::vector<std::int64_t> &sample,
                      const ImageSteps &stated);

struct Document;
// The sample shape a prediction proposes for `arch` over `doc` — the CLI's rows and the prediction
// pane's Sample shape field alike: the architecture's input shape, except where its layers take any
// picture size (Architecture::inputSizeChosen, the 224 being one size picked among those that run)
// and the package states its picture steps: then CenterCrop's size, else a Resize to both sides
// (Resize(n) alone leaves the longer side to each picture), where the layers take that size.
std::vector<std::int64_t> proposedSampleShape(const Document &doc, const Architecture &arch);

// The [C, H, W] a picture becomes for a model whose samples have shape `sample`: `sample` itself
// when it is [C, H, W] of 1, 3 or 4 channels; for samples of N features (a Linear first, or a
// Flatten and then a Linear), [C, H, W] with C·H·W = N, where the file states the picture's size
// (image_size, input_size or input_shape at the root, in model_config or preprocessing: one number
// a square, [H, W] or [C, H, W]) or its channel count (a normalisation of 1 or 3 means, or
// model_config's in_channels) and N fixes the other: an MNIST MLP's 784 features a 1×28×28 picture.
// Nullopt when the model takes no pictures. `how`, when given, says where the shape came from.
std::optional<std::vector<std::int64_t>> pictureShape(const Document &doc, const Architecture &arch,
                                                      const std::vector<std::int64_t> &sample,
                                                      std::string *how = nullptr);

// The batch shape for `rows` samples of `columns` values each: [rows, ...sample] when the model's
// sample shape is fully known (its product must equal `columns`); when only its channels are
// ([C, any] or [C, any, any]), [rows, C, L] or a square [rows, C, S, S] where the count allows;
// else [rows, columns]. Throws FormatError when the counts disagree with a known shape.
std::vector<std::int64_t> batchShape(std::int64_t rows, std::int64_t columns, const std::vector<std::int64_t> &sample,
                                     bool guessed = false);

} // namespace ckpt
