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
// upsampling, RGB output for colour files): 1 channel for a greyscale file, 3 for colour. A file
// larger than `maxSide` a side is refused from its header, before any pixel is allocated; so are
// CMYK files and a file that ends before its image does (Pillow refuses it too). Throws
// FormatError naming `where` and what libjpeg found wrong.
Pixels8 decodeJpeg(const std::string &bytes, const std::string &where, int maxSide);

// PIL's Image.resize(size, Image.BILINEAR) of an L, RGB or RGBA image: a separable triangle filter
// widened by the scale when shrinking (antialiased), horizontal pass then vertical, each rounded to
// 8 bits with Pillow's 22-bit fixed-point coefficients; RGBA premultiplied by alpha on the way, as
// Pillow does. What torchvision's Resize does to a PIL image.
Pixels8 pilResizeBilinear(const Pixels8 &in, int width, int height);

// The same filter on floating-point samples (interleaved `channels`), without 8-bit rounding: for
// 16-bit pictures, which Pillow does not resize as such.
std::vector<double> resizeBilinear(const std::vector<double> &in, int width, int height, int channels, int outWidth,
                                   int outHeight);

} // namespace ckpt
