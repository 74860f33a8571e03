#pragma once

// Pictures as PIL (Pillow) reads and resizes them, so that a prediction's input is the tensor a
// PyTorch pipeline built on PIL (`Image.open(f).convert('RGB')`, torchvision's Resize on a PIL
// image) gives, to the bit. Plain C++ over libjpeg: no Qt, no LibTorch.

#include <cstdint>
#include <string>
#include <vector>

namespace ckpt {

// 8-bit pixels, interleaved (height rows of width × channels bytes).
struct Pixels8 {
    int width = 0, height = 0, channels = 0;
    std::vector<std::uint8_t> data;
};

// Whether the bytes start as a JPEG file does (SOI marker then another marker).
bool isJpeg(const std::string &bytes);

// A JPEG's width and height from its header, without decoding. Throws FormatError naming `where`.
void jpegSize(const std::string &bytes, const std::string &where, int &width, int &height);

// A JPEG decoded by libjpeg(-turbo) with Pillow's settings (the integer "islow" DCT, fancy
// upsampling, RGB output for colour files): 1 channel for a greyscale file, 3 for colour, CMYK
// (and YCCK) files too, converted as Pillow's convert('RGB') does (Adobe's inverted CMYK). A file
// larger than `maxSide` a side is refused from its header, before any pixel is allocated; so is a
// file that ends before its image does (Pillow refuses it too). Throws FormatError naming `where`
// and what libjpeg found wrong.
Pixels8 decodeJpeg(const std::string &bytes, const std::string &where, int maxSide);

// Pillow's resampling filters, numbered as PIL numbers them (Image.Resampling, and the ints
// torchvision's Resize accepts for its interpolation).
enum class ResampleFilter { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };

// The filter's name as PIL spells it in lower case: "bilinear", "bicubic", "nearest", "box", "hamming",
// "lanczos".
const char *filterName(ResampleFilter filter);

// PIL's Image.resize(size, filter) of an L, RGB or RGBA image, to the bit. NEAREST picks one source
// pixel per output pixel (Pillow's affine scale, not a convolution). The others are Pillow's
// separable convolutions (Resample.c): the filter widened by the scale when shrinking
// (antialiased), horizontal pass then vertical, each rounded to 8 bits with Pillow's 22-bit
// fixed-point coefficients; RGBA premultiplied by alpha on the way, as Pillow does. What
// torchvision's Resize does to a PIL image with that interpolation.
Pixels8 pilResize(const Pixels8 &in, int width, int height, ResampleFilter filter);

// The same filter on floating-point samples (interleaved `channels`), without 8-bit rounding, as
// Pillow resizes a mode F image: for 16-bit pictures, which Pillow 9 does not resize with a
// filter at all (mode I;16 takes NEAREST only).
std::vector<double> resizeSamples(const std::vector<double> &in, int width, int height, int channels, int outWidth,
                                  int outHeight, ResampleFilter filter);

} // namespace ckpt
