#include "pilimage.h"

#include "error.h"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <numbers>
#include <cstdio> // jpeglib.h needs FILE and size_t declared first

#include <jerror.h>
#include <jpeglib.h>

namespace ckpt {

namespace {

// More scans than any real progressive JPEG has (libjpeg-turbo's own tools stop at 500): a file of
// thousands of tiny scans would take minutes to decode, so it is refused instead.
constexpr int kMaxJpegScans = 1000;

// libjpeg reports a fatal error through error_exit, whose default calls exit(). Here it jumps back
// to the setjmp in runJpeg with the message. Only libjpeg's C frames and objects without
// destructors lie between the two, so the jump skips no C++ destructor.
struct JpegErrors {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpegFail(j_common_ptr cinfo)
{
    auto *e = reinterpret_cast<JpegErrors *>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    std::longjmp(e->jump, 1);
}

// Warnings (level -1) are corrupt data libjpeg gets past, which Pillow ignores too; except a file
// that ends before its image: libjpeg would fill the rest with grey, Pillow says "image file is
// truncated". Trace messages (level > 0) are dropped.
void jpegMessage(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        auto *e = reinterpret_cast<JpegErrors *>(cinfo->err);
        std::snprintf(e->message, sizeof e->message, "the file ends before the image does (truncated)");
        std::longjmp(e->jump, 1);
    }
}

void jpegProgress(j_common_ptr cinfo)
{
    if (!cinfo->is_decompressor)
        return;
    if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxJpegScans) {
        auto *e = reinterpret_cast<JpegErrors *>(cinfo->err);
        std::snprintf(e->message, sizeof e->message, "more than %d progressive scans", kMaxJpegScans);
        std::longjmp(e->jump, 1);
    }
}

// Pillow's MULDIV255, for its RGBA <-> RGBa (premultiplied) and CMYK -> RGB conversions.
std::uint8_t mulDiv255(unsigned a, unsigned b)
{
    const unsigned tmp = a * b + 128;
    return static_cast<std::uint8_t>(((tmp >> 8) + tmp) >> 8);
}

// A CMYK JPEG's samples as Pillow opens and converts them: inverted on reading (rawmode
// "CMYK;I"), then convert('RGB')'s cmyk2rgb, R = nk - MULDIV255(C, nk) with nk = 255 - K (never
// below 0). In place: 4 channels become 3.
void cmykToRgb(Pixels8 &p)
{
    const std::size_t n = static_cast<std::size_t>(p.width) * static_cast<std::size_t>(p.height);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t *in = &p.data[i * 4];
        const unsigned nk = in[3]; // 255 - K, K being the inverted sample
        std::uint8_t rgb[3];
        for (int b = 0; b < 3; ++b) {
            const unsigned c = 255u - in[b];
            rgb[b] = static_cast<std::uint8_t>(nk - mulDiv255(c, nk)); // MULDIV255(c, nk) <= nk
        }
        std::copy_n(rgb, 3, &p.data[i * 3]);
    }
    p.data.resize(n * 3);
    p.channels = 3;
}

// Reads the header and, unless `headerOnly`, the pixels into `out`. Returns libjpeg's message on
// failure, empty on success. `out` and `refusal` are the caller's, so nothing here needs a
// destructor run when libjpeg jumps back.
std::string runJpeg(const std::string &bytes, bool headerOnly, int maxSide, Pixels8 &out)
{
    jpeg_decompress_struct cinfo{};
    JpegErrors errors{};
    jpeg_progress_mgr progress{};
    const char *refusal = nullptr;
    cinfo.err = jpeg_std_error(&errors.mgr);
    errors.mgr.error_exit = jpegFail;
    errors.mgr.emit_message = jpegMessage;
    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return errors.message;
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = jpegProgress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char *>(bytes.data()),
                 static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&cinfo, TRUE);
    out.width = static_cast<int>(cinfo.image_width);
    out.height = static_cast<int>(cinfo.image_height);
    if (headerOnly || out.width < 1 || out.height < 1 || out.width > maxSide || out.height > maxSide) {
        jpeg_destroy_decompress(&cinfo);
        return {}; // the caller says what is wrong with the size
    }
    // Pillow's modes: a greyscale file is L, a colour one (YCbCr or Adobe RGB) RGB.
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo.out_color_space = JCS_GRAYSCALE;
        out.channels = 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        out.channels = 3;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        // Pillow's mode CMYK, read as rawmode "CMYK;I" (Adobe's inverted polarity, which it
        // assumes for every 4-channel JPEG); libjpeg turns YCCK into CMYK. Made RGB below.
        cinfo.out_color_space = JCS_CMYK;
        out.channels = 4;
        break;
    default:
        refusal = "a JPEG of an unknown colour space is not read: save it as RGB first";
        break;
    }
    if (refusal) {
        jpeg_destroy_decompress(&cinfo);
        return refusal;
    }
    // Pillow's settings (its draft mode, which changes them, is not used by open/convert/resize).
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = cinfo.scale_denom = 1;
    try {
        out.data.assign(static_cast<std::size_t>(out.width) * static_cast<std::size_t>(out.height) *
                            static_cast<std::size_t>(out.channels),
                        0);
    } catch (...) {
        jpeg_destroy_decompress(&cinfo);
        throw;
    }
    jpeg_start_decompress(&cinfo);
    if (static_cast<int>(cinfo.output_width) != out.width || static_cast<int>(cinfo.output_height) != out.height ||
        cinfo.output_components != out.channels) {
        jpeg_destroy_decompress(&cinfo);
        return "libjpeg decodes it to another size than its header gives";
    }
    const std::size_t stride = static_cast<std::size_t>(out.width) * static_cast<std::size_t>(out.channels);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out.data.data() + static_cast<std::size_t>(cinfo.output_scanline) * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (out.channels == 4)
        cmykToRgb(out);
    return {};
}

// Pillow's filters (Resample.c), exactly as it writes them: the sign of x matters to BOX, and
// HAMMING's window constants are floats there.
double boxFilter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

double bilinearFilter(double x)
{
    x = std::fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

double hammingFilter(double x)
{
    x = std::fabs(x);
    if (x == 0.0)
        return 1.0;
    if (x >= 1.0)
        return 0.0;
    x = x * std::numbers::pi;
    return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}

double bicubicFilter(double x)
{
    constexpr double a = -0.5; // Pillow's (and PIL's torchvision users') bicubic
    x = std::fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

double sincFilter(double x)
{
    if (x == 0.0)
        return 1.0;
    x = x * std::numbers::pi;
    return std::sin(x) / x;
}

double lanczosFilter(double x) { return -3.0 <= x && x < 3.0 ? sincFilter(x) * sincFilter(x / 3) : 0.0; }

struct Filter {
    double (*fn)(double);
    double support;
};

Filter filterOf(ResampleFilter f)
{
    switch (f) {
    case ResampleFilter::Box:
        return {boxFilter, 0.5};
    case ResampleFilter::Hamming:
        return {hammingFilter, 1.0};
    case ResampleFilter::Bicubic:
        return {bicubicFilter, 2.0};
    case ResampleFilter::Lanczos:
        return {lanczosFilter, 3.0};
    case ResampleFilter::Nearest: // not a convolution: resized by nearest8/nearestSamples
    case ResampleFilter::Bilinear:
        break;
    }
    return {bilinearFilter, 1.0};
}

// Pillow's precompute_coeffs (Resample.c): for each output sample, the first input sample it
// reads, how many, and their normalised weights (ksize each).
struct Taps {
    int ksize = 0;
    std::vector<int> first, count;
    std::vector<double> weights;
};

Taps makeTaps(int inSize, int outSize, ResampleFilter which)
{
    const Filter filter = filterOf(which);
    Taps t;
    const double scale = static_cast<double>(inSize) / outSize;
    const double filterscale = std::max(scale, 1.0); // widened when shrinking: the antialiasing
    const double support = filter.support * filterscale;
    t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    t.first.resize(static_cast<std::size_t>(outSize));
    t.count.resize(static_cast<std::size_t>(outSize));
    t.weights.assign(static_cast<std::size_t>(outSize) * static_cast<std::size_t>(t.ksize), 0.0);
    for (int xx = 0; xx < outSize; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        // Pillow rounds with (int)(v + 0.5), truncation toward zero, then clamps.
        int xmin = static_cast<int>(center - support + 0.5);
        xmin = std::max(xmin, 0);
        int xmax = static_cast<int>(center + support + 0.5);
        xmax = std::min(xmax, inSize) - xmin;
        double *k = &t.weights[static_cast<std::size_t>(xx) * static_cast<std::size_t>(t.ksize)];
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            const double w = filter.fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; ++x)
            if (ww != 0.0)
                k[x] /= ww;
        t.first[static_cast<std::size_t>(xx)] = xmin;
        t.count[static_cast<std::size_t>(xx)] = xmax;
    }
    return t;
}

// Pillow's NEAREST resize (ImagingScaleAffine, Geometry.c): the source column of output column x
// is int(position) where the position starts at half a step and grows by the step
// (in / out) one addition at a time, as Pillow's loop does (the sum's rounding decides ties).
// Positions outside the picture (none in practice) stay 0, as Pillow fills them.
std::vector<int> nearestIndex(int inSize, int outSize)
{
    std::vector<int> index(static_cast<std::size_t>(outSize), -1);
    const double step = static_cast<double>(inSize) / outSize;
    double pos = step * 0.5;
    for (int x = 0; x < outSize; ++x) {
        const int i = pos < 0.0 ? -1 : static_cast<int>(pos);
        if (i >= 0 && i < inSize)
            index[static_cast<std::size_t>(x)] = i;
        pos += step;
    }
    return index;
}

template <class T>
std::vector<T> nearestSamples(const std::vector<T> &in, int width, int height, int channels, int outWidth,
                              int outHeight)
{
    const auto xs = nearestIndex(width, outWidth), ys = nearestIndex(height, outHeight);
    const auto c = static_cast<std::size_t>(channels);
    std::vector<T> out(static_cast<std::size_t>(outWidth) * static_cast<std::size_t>(outHeight) * c, T{});
    for (int y = 0; y < outHeight; ++y) {
        const int sy = ys[static_cast<std::size_t>(y)];
        if (sy < 0)
            continue;
        for (int x = 0; x < outWidth; ++x) {
            const int sx = xs[static_cast<std::size_t>(x)];
            if (sx < 0)
                continue;
            const std::size_t from = (static_cast<std::size_t>(sy) * static_cast<std::size_t>(width) +
                                      static_cast<std::size_t>(sx)) * c;
            const std::size_t to = (static_cast<std::size_t>(y) * static_cast<std::size_t>(outWidth) +
                                    static_cast<std::size_t>(x)) * c;
            std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(from), c, out.begin() + static_cast<std::ptrdiff_t>(to));
        }
    }
    return out;
}

constexpr int kPrecisionBits = 32 - 8 - 2; // Pillow's PRECISION_BITS

std::vector<std::int32_t> fixedPoint(const std::vector<double> &weights)
{
    std::vector<std::int32_t> out(weights.size());
    for (std::size_t i = 0; i < weights.size(); ++i)
        out[i] = weights[i] < 0 ? static_cast<std::int32_t>(-0.5 + weights[i] * (1 << kPrecisionBits))
                                : static_cast<std::int32_t>(0.5 + weights[i] * (1 << kPrecisionBits));
    return out;
}

std::uint8_t clip8(std::int32_t v)
{
    if (v >= (1 << kPrecisionBits << 8))
        return 255;
    if (v <= 0)
        return 0;
    return static_cast<std::uint8_t>(v >> kPrecisionBits);
}

// Pillow's ImagingResampleInner for 8-bit bands: horizontal pass (only over the rows the vertical
// pass reads), then vertical; each pass skipped when that side keeps its size.
Pixels8 resample8(const Pixels8 &in, int width, int height, ResampleFilter filter)
{
    const int c = in.channels;
    const Taps horiz = makeTaps(in.width, width, filter), vert = makeTaps(in.height, height, filter);
    const bool needH = width != in.width, needV = height != in.height;
    const int yFirst = vert.first.front();
    const int yLast = vert.first.back() + vert.count.back();
    Pixels8 cur = in;
    int rowOffset = 0; // the input row that cur's row 0 is
    if (needH) {
        const auto kk = fixedPoint(horiz.weights);
        Pixels8 tmp;
        tmp.width = width;
        tmp.height = yLast - yFirst;
        tmp.channels = c;
        tmp.data.resize(static_cast<std::size_t>(tmp.width) * static_cast<std::size_t>(tmp.height) *
                        static_cast<std::size_t>(c));
        for (int y = 0; y < tmp.height; ++y) {
            const std::uint8_t *src = &in.data[static_cast<std::size_t>(y + yFirst) *
                                               static_cast<std::size_t>(in.width) * static_cast<std::size_t>(c)];
            std::uint8_t *dst =
                &tmp.data[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) * static_cast<std::size_t>(c)];
            for (int xx = 0; xx < width; ++xx) {
                const int xmin = horiz.first[static_cast<std::size_t>(xx)],
                          n = horiz.count[static_cast<std::size_t>(xx)];
                const std::int32_t *k = &kk[static_cast<std::size_t>(xx) * static_cast<std::size_t>(horiz.ksize)];
                for (int b = 0; b < c; ++b) {
                    std::int32_t ss = 1 << (kPrecisionBits - 1);
                    for (int x = 0; x < n; ++x)
                        ss += src[static_cast<std::size_t>(x + xmin) * static_cast<std::size_t>(c) +
                                  static_cast<std::size_t>(b)] *
                              k[x];
                    dst[static_cast<std::size_t>(xx) * static_cast<std::size_t>(c) + static_cast<std::size_t>(b)] =
                        clip8(ss);
                }
            }
        }
        cur = std::move(tmp);
        rowOffset = yFirst;
    }
    if (needV) {
        const auto kk = fixedPoint(vert.weights);
        Pixels8 out;
        out.width = cur.width;
        out.height = height;
        out.channels = c;
        const std::size_t stride = static_cast<std::size_t>(cur.width) * static_cast<std::size_t>(c);
        out.data.resize(stride * static_cast<std::size_t>(height));
        for (int yy = 0; yy < height; ++yy) {
            const int ymin = vert.first[static_cast<std::size_t>(yy)] - rowOffset,
                      n = vert.count[static_cast<std::size_t>(yy)];
            const std::int32_t *k = &kk[static_cast<std::size_t>(yy) * static_cast<std::size_t>(vert.ksize)];
            for (std::size_t i = 0; i < stride; ++i) {
                std::int32_t ss = 1 << (kPrecisionBits - 1);
                for (int y = 0; y < n; ++y)
                    ss += cur.data[static_cast<std::size_t>(y + ymin) * stride + i] * k[y];
                out.data[static_cast<std::size_t>(yy) * stride + i] = clip8(ss);
            }
        }
        cur = std::move(out);
    }
    return cur;
}


} // namespace

bool isJpeg(const std::string &bytes)
{
    return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
           static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF;
}

void jpegSize(const std::string &bytes, const std::string &where, int &width, int &height)
{
    Pixels8 p;
    const std::string error = runJpeg(bytes, true, 0, p);
    if (!error.empty())
        throw FormatError(where + ": the JPEG cannot be read (" + error + ")");
    width = p.width;
    height = p.height;
}

Pixels8 decodeJpeg(const std::string &bytes, const std::string &where, int maxSide)
{
    Pixels8 p;
    const std::string error = runJpeg(bytes, false, maxSide, p);
    if (!error.empty())
        throw FormatError(where + ": the JPEG cannot be decoded (" + error + ")");
    if (p.width < 1 || p.height < 1 || p.width > maxSide || p.height > maxSide)
        throw FormatError(where + ": the image is " + std::to_string(p.width) + "x" + std::to_string(p.height) +
                          ", more than " + std::to_string(maxSide) + " pixels a side");
    return p;
}

const char *filterName(ResampleFilter filter)
{
    switch (filter) {
    case ResampleFilter::Nearest:
        return "nearest";
    case ResampleFilter::Lanczos:
        return "lanczos";
    case ResampleFilter::Bilinear:
        return "bilinear";
    case ResampleFilter::Bicubic:
        return "bicubic";
    case ResampleFilter::Box:
        return "box";
    case ResampleFilter::Hamming:
        return "hamming";
    }
    return "bilinear";
}

Pixels8 pilResize(const Pixels8 &in, int width, int height, ResampleFilter filter)
{
    if (in.width == width && in.height == height)
        return in;
    if (filter == ResampleFilter::Nearest) {
        // Pillow picks pixels as they are, RGBA too (no premultiplying for NEAREST).
        Pixels8 out;
        out.width = width;
        out.height = height;
        out.channels = in.channels;
        out.data = nearestSamples(in.data, in.width, in.height, in.channels, width, height);
        return out;
    }
    if (in.channels != 4)
        return resample8(in, width, height, filter);
    // Pillow resizes RGBA as RGBa (colour premultiplied by alpha), then converts back.
    Pixels8 pre = in;
    for (std::size_t i = 0; i + 3 < pre.data.size(); i += 4)
        for (int b = 0; b < 3; ++b)
            pre.data[i + static_cast<std::size_t>(b)] =
                mulDiv255(pre.data[i + static_cast<std::size_t>(b)], pre.data[i + 3]);
    Pixels8 out = resample8(pre, width, height, filter);
    for (std::size_t i = 0; i + 3 < out.data.size(); i += 4) {
        const unsigned alpha = out.data[i + 3];
        if (alpha == 255 || alpha == 0)
            continue;
        for (int b = 0; b < 3; ++b)
            out.data[i + static_cast<std::size_t>(b)] =
                static_cast<std::uint8_t>(std::min(255u, 255u * out.data[i + static_cast<std::size_t>(b)] / alpha));
    }
    return out;
}

std::vector<double> resizeSamples(const std::vector<double> &in, int width, int height, int channels, int outWidth,
                                  int outHeight, ResampleFilter filter)
{
    if (filter == ResampleFilter::Nearest)
        return nearestSamples(in, width, height, channels, outWidth, outHeight);
    const auto c = static_cast<std::size_t>(channels);
    // Pillow's 32-bit (mode F) passes: sums in double, each pass skipped where that side keeps
    // its size.
    std::vector<double> tmp = in;
    if (outWidth != width) {
        const Taps horiz = makeTaps(width, outWidth, filter);
        tmp.assign(static_cast<std::size_t>(outWidth) * static_cast<std::size_t>(height) * c, 0.0);
        for (int y = 0; y < height; ++y)
            for (int xx = 0; xx < outWidth; ++xx) {
                const double *k = &horiz.weights[static_cast<std::size_t>(xx) * static_cast<std::size_t>(horiz.ksize)];
                for (std::size_t b = 0; b < c; ++b) {
                    double s = 0;
                    for (int x = 0; x < horiz.count[static_cast<std::size_t>(xx)]; ++x)
                        s += in[(static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                                 static_cast<std::size_t>(x + horiz.first[static_cast<std::size_t>(xx)])) *
                                    c +
                                b] *
                             k[x];
                    tmp[(static_cast<std::size_t>(y) * static_cast<std::size_t>(outWidth) +
                         static_cast<std::size_t>(xx)) *
                            c +
                        b] = s;
                }
            }
    }
    if (outHeight == height)
        return tmp;
    const Taps vert = makeTaps(height, outHeight, filter);
    std::vector<double> out(static_cast<std::size_t>(outWidth) * static_cast<std::size_t>(outHeight) * c, 0.0);
    for (int yy = 0; yy < outHeight; ++yy) {
        const double *k = &vert.weights[static_cast<std::size_t>(yy) * static_cast<std::size_t>(vert.ksize)];
        for (std::size_t i = 0; i < static_cast<std::size_t>(outWidth) * c; ++i) {
            double s = 0;
            for (int y = 0; y < vert.count[static_cast<std::size_t>(yy)]; ++y)
                s += tmp[static_cast<std::size_t>(y + vert.first[static_cast<std::size_t>(yy)]) *
                             static_cast<std::size_t>(outWidth) * c +
                         i] *
                     k[y];
            out[static_cast<std::size_t>(yy) * static_cast<std::size_t>(outWidth) * c + i] = s;
        }
    }
    return out;
}

} // namespace ckpt
