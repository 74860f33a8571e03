#include "predictioninput.h"

#include "architecture.h"
#include "document.h"
#include "error.h"
#include "inferencemeta.h"

#include "pilimage.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <sstream>

namespace ckpt {

namespace {

std::vector<std::string> splitFields(const std::string &text)
{
    std::vector<std::string> out;
    // Commas (or semicolons, tabs) separate; spaces alone separate only when there is no comma.
    const bool hasDelimiter = text.find_first_of(",;\t") != std::string::npos;
    std::string cur;
    auto flush = [&] {
        auto b = cur.find_first_not_of(" \r");
        auto e = cur.find_last_not_of(" \r");
        out.push_back(b == std::string::npos ? std::string() : cur.substr(b, e - b + 1));
        cur.clear();
    };
    for (char c : text) {
        if (hasDelimiter ? (c == ',' || c == ';' || c == '\t') : (c == ' ' || c == '\r')) {
            if (hasDelimiter || !cur.empty())
                flush();
        } else {
            cur += c;
        }
    }
    if (hasDelimiter || !cur.empty())
        flush();
    if (!hasDelimiter)
        out.erase(std::remove(out.begin(), out.end(), std::string()), out.end());
    return out;
}

bool toNumber(const std::string &field, double &out)
{
    std::string f = field;
    if (f.size() >= 2 && (f.front() == '"' || f.front() == '\'') && f.back() == f.front())
        f = f.substr(1, f.size() - 2);
    if (f.empty())
        return false;
    std::string lower = f;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "nan") {
        out = std::nan("");
        return true;
    }
    if (lower == "inf" || lower == "+inf" || lower == "-inf") {
        out = lower[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    const char *b = f.data() + (f[0] == '+' ? 1 : 0);
    const char *e = f.data() + f.size();
    auto [p, ec] = std::from_chars(b, e, out);
    return ec == std::errc() && p == e;
}

} // namespace

std::vector<double> parseRow(const std::string &text, const std::string &where)
{
    std::vector<double> out;
    const auto fields = splitFields(text);
    for (std::size_t i = 0; i < fields.size(); ++i) {
        double v = 0;
        if (!toNumber(fields[i], v))
            throw FormatError(where + ", value " + std::to_string(i + 1) + ": '" + fields[i] + "' is not a number");
        out.push_back(v);
    }
    if (out.empty())
        throw FormatError(where + ": no values");
    return out;
}

InputTable parseCsv(const std::string &text, const std::string &where)
{
    InputTable t;
    std::istringstream in(text);
    std::string line;
    std::int64_t rows = 0, lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (line.find_first_not_of(" \t\r") == std::string::npos || line[line.find_first_not_of(" \t\r")] == '#')
            continue;
        if (rows == 0 && t.header.empty()) {
            // A first row with no number at all is a header of names.
            const auto fields = splitFields(line);
            double dummy = 0;
            if (!fields.empty() && std::none_of(fields.begin(), fields.end(), [&](const std::string &f) { return toNumber(f, dummy); })) {
                t.header = fields;
                continue;
            }
        }
        auto row = parseRow(line, where + ", line " + std::to_string(lineNo));
        if (rows == 0)
            t.shape = {0, static_cast<std::int64_t>(row.size())};
        else if (static_cast<std::int64_t>(row.size()) != t.shape[1])
            throw FormatError(where + ", line " + std::to_string(lineNo) + ": " + std::to_string(row.size()) +
                              " values, the first row has " + std::to_string(t.shape[1]));
        t.values.insert(t.values.end(), row.begin(), row.end());
        ++rows;
    }
    if (rows == 0)
        throw FormatError(where + ": no rows of numbers");
    if (!t.header.empty() && static_cast<std::int64_t>(t.header.size()) != t.shape[1])
        throw FormatError(where + ": the header names " + std::to_string(t.header.size()) + " columns, the rows have " +
                          std::to_string(t.shape[1]));
    t.shape[0] = rows;
    return t;
}

namespace {

// A piece of a file quoted in an error: its first 40 bytes (a header can hold 100 KB of one field).
std::string cutText(const std::string &text)
{
    return text.size() > 40 ? text.substr(0, 40) + "…" : text;
}

} // namespace

InputTable parseNpy(const std::string &bytes, const std::string &where)
{
    auto bad = [&where](const std::string &what) { return FormatError(where + ": " + what); };
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
        throw bad("not a .npy file (no \\x93NUMPY magic)");
    const auto major = static_cast<unsigned char>(bytes[6]);
    std::size_t headerLen = 0, start = 0;
    if (major == 1) {
        headerLen = static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12)
            throw bad("truncated header");
        for (int i = 0; i < 4; ++i)
            headerLen |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
        start = 12;
    } else {
        throw bad("unknown .npy version " + std::to_string(major));
    }
    if (headerLen > bytes.size() - start)
        throw bad("the header runs past the end of the file");
    const std::string header = bytes.substr(start, headerLen);
    auto field = [&](const std::string &key) {
        const auto k = header.find("'" + key + "'");
        if (k == std::string::npos)
            throw bad("the header has no '" + key + "'");
        auto p = header.find(':', k);
        if (p == std::string::npos)
            throw bad("malformed header");
        return p + 1;
    };
    std::size_t p = field("descr");
    const auto q1 = header.find('\'', p), q2 = q1 == std::string::npos ? q1 : header.find('\'', q1 + 1);
    if (q2 == std::string::npos)
        throw bad("malformed descr");
    const std::string descr = header.substr(q1 + 1, q2 - q1 - 1);
    p = field("fortran_order");
    const auto flag = header.find_first_not_of(' ', p);
    if (flag == std::string::npos)
        throw bad("malformed header (fortran_order has no value)");
    const bool fortran = header.compare(flag, 4, "True") == 0;
    p = field("shape");
    const auto open = header.find('(', p), close = header.find(')', p);
    if (open == std::string::npos || close == std::string::npos || close < open)
        throw bad("malformed shape");
    InputTable t;
    std::int64_t count = 1;
    std::stringstream shapeText(header.substr(open + 1, close - open - 1));
    std::string dim;
    while (std::getline(shapeText, dim, ',')) {
        dim.erase(std::remove(dim.begin(), dim.end(), ' '), dim.end());
        if (dim.empty())
            continue;
        std::int64_t d = 0;
        auto [e, ec] = std::from_chars(dim.data(), dim.data() + dim.size(), d);
        if (ec != std::errc() || e != dim.data() + dim.size() || d < 0)
            throw bad("malformed shape dimension '" + cutText(dim) + "'");
        if (d > 0 && count > (std::int64_t{1} << 34) / d)
            throw bad("the array is too large");
        count *= d;
        t.shape.push_back(d);
    }
    if (t.shape.empty())
        throw bad("a 0-d array (one number) is not samples: save an array of shape [N, features] or [N, C, H, W]");
    if (descr.size() < 3)
        throw bad("unsupported dtype '" + cutText(descr) + "'");
    const char order = descr[0], kind = descr[1];
    int size = 0;
    std::from_chars(descr.data() + 2, descr.data() + descr.size(), size);
    const bool swap = size > 1 && ((order == '>' && std::endian::native == std::endian::little) ||
                                   (order == '<' && std::endian::native == std::endian::big));
    if (!((kind == 'f' && (size == 2 || size == 4 || size == 8)) || ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
          (kind == 'b' && size == 1)))
        throw bad("unsupported dtype '" + cutText(descr) + "' (floats, integers and bools are)");
    t.integer = kind != 'f';
    const std::size_t dataStart = start + headerLen;
    if (bytes.size() - dataStart < static_cast<std::size_t>(count) * static_cast<std::size_t>(size))
        throw bad("the data are shorter than the shape " + std::string("needs"));
    t.values.resize(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
        unsigned char b[8];
        std::memcpy(b, bytes.data() + dataStart + static_cast<std::size_t>(i) * size, static_cast<std::size_t>(size));
        if (swap)
            std::reverse(b, b + size);
        double v = 0;
        if (kind == 'f' && size == 8) { double x; std::memcpy(&x, b, 8); v = x; }
        else if (kind == 'f' && size == 4) { float x; std::memcpy(&x, b, 4); v = x; }
        else if (kind == 'f') {
            std::uint16_t h; std::memcpy(&h, b, 2);
            const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
            v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(m + 1024, e - 25);
            if (h & 0x8000) v = -v;
        }
        else if (kind == 'b') v = b[0] ? 1 : 0;
        else if (kind == 'u') { std::uint64_t x = 0; std::memcpy(&x, b, static_cast<std::size_t>(size)); if (std::endian::native == std::endian::big) x >>= 64 - 8 * size; v = static_cast<double>(x); }
        else { std::int64_t x = 0; std::memcpy(&x, b, static_cast<std::size_t>(size)); if (std::endian::native == std::endian::big) x >>= 64 - 8 * size; else { const int sh = 64 - 8 * size; x = (x << sh) >> sh; } v = static_cast<double>(x); }
        t.values[static_cast<std::size_t>(i)] = v;
    }
    if (fortran && t.shape.size() > 1) {
        // Column-major to row-major.
        std::vector<double> c(t.values.size());
        std::vector<std::int64_t> idx(t.shape.size(), 0);
        for (std::int64_t i = 0; i < count; ++i) {
            std::int64_t f = 0, stride = 1;
            for (std::size_t d = 0; d < t.shape.size(); ++d) {
                f += idx[d] * stride;
                stride *= t.shape[d];
            }
            c[static_cast<std::size_t>(i)] = t.values[static_cast<std::size_t>(f)];
            for (std::size_t d = t.shape.size(); d-- > 0;) {
                if (++idx[d] < t.shape[d])
                    break;
                idx[d] = 0;
            }
        }
        t.values = std::move(c);
    }
    return t;
}

std::vector<std::int64_t> batchShape(std::int64_t rows, std::int64_t columns, const std::vector<std::int64_t> &sample,
                                     bool guessed)
{
    const bool known = !sample.empty() && std::none_of(sample.begin(), sample.end(), [](std::int64_t d) { return d < 0; });
    if (!known) {
        // Channels known, sizes open ([C, any] or [C, any, any], a TorchScript CNN's): a row of C·L
        // values is [C, L]; a row of C·S·S values a square S×S image. Otherwise the model says.
        const bool open = sample.size() >= 2 && sample.size() <= 3 && sample[0] > 0 &&
                          std::all_of(sample.begin() + 1, sample.end(), [](std::int64_t d) { return d < 0; });
        if (open && columns > 0 && columns % sample[0] == 0) {
            const std::int64_t per = columns / sample[0];
            if (sample.size() == 2)
                return {rows, sample[0], per};
            auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(per))));
            if (side * side == per)
                return {rows, sample[0], side, side};
        }
        return {rows, columns};
    }
    std::int64_t n = 1;
    for (auto d : sample)
        n *= d;
    if (n != columns && guessed)
        return {rows, columns};  // the guess does not fit: the model says what it takes
    if (n != columns)
        throw FormatError("each sample has " + std::to_string(columns) + " values; the model takes " + std::to_string(n) +
                          " (shape " + [&sample] {
                              std::string s = "[";
                              for (std::size_t i = 0; i < sample.size(); ++i)
                                  s += (i ? ", " : "") + std::to_string(sample[i]);
                              return s + "]";
                          }() + ")");
    std::vector<std::int64_t> out{rows};
    out.insert(out.end(), sample.begin(), sample.end());
    return out;
}

namespace {

// An image's width and height from its header: libjpeg's for a JPEG, stb's for the rest.
bool imageSize(const std::string &bytes, const std::string &where, int &w, int &h, std::string &why)
{
    if (isJpeg(bytes)) {
        try {
            jpegSize(bytes, where, w, h);
        } catch (const FormatError &e) {
            why = e.what();
            return false;
        }
        return true;
    }
    int found = 0;
    if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc *>(bytes.data()), static_cast<int>(bytes.size()), &w, &h, &found)) {
        // stb refuses a PNG past 2^30 pixel bytes in its header pass, then reports the last format
        // it tried ("unknown image type"): the PNG's own header (IHDR) says its size.
        static constexpr unsigned char kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        if (bytes.size() >= 24 && std::equal(std::begin(kPng), std::end(kPng), bytes.begin(),
                                             [](unsigned char a, char b) { return a == static_cast<unsigned char>(b); }) &&
            bytes.compare(12, 4, "IHDR") == 0) {
            auto be32 = [&bytes](std::size_t at) {
                std::uint32_t v = 0;
                for (std::size_t i = 0; i < 4; ++i)
                    v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
                return v;
            };
            const std::uint32_t pw = be32(16), ph = be32(20);
            if (pw > static_cast<std::uint32_t>(kMaxImageSide) || ph > static_cast<std::uint32_t>(kMaxImageSide)) {
                why = where + ": the image is " + std::to_string(pw) + "x" + std::to_string(ph) + ", more than " +
                      std::to_string(kMaxImageSide) + " pixels a side";
                return false;
            }
        }
        why = where + ": not an image this program can read (" + stbi_failure_reason() + ")";
        return false;
    }
    return true;
}

// PIL's convert('L') of RGB: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
std::uint8_t pilLuma(const std::uint8_t *rgb)
{
    return static_cast<std::uint8_t>((19595u * rgb[0] + 38470u * rgb[1] + 7471u * rgb[2] + 0x8000u) >> 16);
}

// Decoded 8-bit pixels (1 or 3 channels) as PIL's convert() to the model's mode gives them:
// L→RGB repeats the grey, RGB→L weighs as above, alpha is opaque.
Pixels8 toChannels(const Pixels8 &in, int channels)
{
    if (in.channels == channels)
        return in;
    Pixels8 out;
    out.width = in.width;
    out.height = in.height;
    out.channels = channels;
    const std::size_t n = static_cast<std::size_t>(in.width) * static_cast<std::size_t>(in.height);
    out.data.resize(n * static_cast<std::size_t>(channels));
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t *p = &in.data[i * static_cast<std::size_t>(in.channels)];
        std::uint8_t *q = &out.data[i * static_cast<std::size_t>(channels)];
        if (channels == 1) {
            q[0] = in.channels >= 3 ? pilLuma(p) : p[0];
        } else {
            for (int c = 0; c < 3; ++c)
                q[c] = in.channels >= 3 ? p[c] : p[0];
            if (channels == 4)
                q[3] = in.channels == 4 ? p[3] : 255;
        }
    }
    return out;
}

} // namespace

namespace {

// torchvision's CenterCrop of an interleaved picture: zero-padded first where it is smaller
// (left and top get the smaller half), then cut at top = round((h - th) / 2), left likewise,
// Python's round (halves to even).
template <class T>
std::vector<T> centreCrop(const std::vector<T> &in, int w, int h, int channels, int tw, int th)
{
    int padLeft = 0, padTop = 0;
    if (tw > w || th > h) {
        padLeft = tw > w ? (tw - w) / 2 : 0;
        padTop = th > h ? (th - h) / 2 : 0;
        const int padRight = tw > w ? (tw - w + 1) / 2 : 0, padBottom = th > h ? (th - h + 1) / 2 : 0;
        const int pw = w + padLeft + padRight, ph = h + padTop + padBottom;
        std::vector<T> padded(static_cast<std::size_t>(pw) * static_cast<std::size_t>(ph) * static_cast<std::size_t>(channels), T{});
        for (int y = 0; y < h; ++y)
            std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(y) * w * channels),
                        static_cast<std::size_t>(w) * channels,
                        padded.begin() + static_cast<std::ptrdiff_t>(
                                             (static_cast<std::size_t>(y + padTop) * pw + static_cast<std::size_t>(padLeft)) *
                                             channels));
        if (pw == tw && ph == th)
            return padded;
        return centreCrop(padded, pw, ph, channels, tw, th);
    }
    const int top = static_cast<int>(std::nearbyint((h - th) / 2.0));
    const int left = static_cast<int>(std::nearbyint((w - tw) / 2.0));
    std::vector<T> out(static_cast<std::size_t>(tw) * static_cast<std::size_t>(th) * static_cast<std::size_t>(channels));
    for (int y = 0; y < th; ++y)
        std::copy_n(in.begin() + static_cast<std::ptrdiff_t>((static_cast<std::size_t>(y + top) * w + left) * channels),
                    static_cast<std::size_t>(tw) * channels,
                    out.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(y) * tw * channels));
    return out;
}

// "300x200": width by height, as PIL's size reads.
std::string sizeText(int w, int h) { return std::to_string(w) + "x" + std::to_string(h); }

} // namespace

InputTable parseImage(const std::string &bytes, const std::string &where, int channels, int height, int width)
{
    ImageSteps steps;
    steps.height = height;
    steps.width = width;
    return parseImage(bytes, where, channels, steps);
}

InputTable parseImage(const std::string &bytes, const std::string &where, int channels, const ImageSteps &steps)
{
    if (channels != 1 && channels != 3 && channels != 4)
        throw FormatError(where + ": a model's image input has 1, 3 or 4 channels, not " + std::to_string(channels));
    int height = steps.height, width = steps.width;
    const bool ownSize = height == 0 && width == 0;
    if (!ownSize && (height < 1 || width < 1 || height > kMaxImageSide || width > kMaxImageSide))
        throw FormatError(where + ": the model's input size " + std::to_string(width) + "x" + std::to_string(height) +
                          " is not an image size (at most " + std::to_string(kMaxImageSide) + " a side)");
    auto sideOk = [](std::int64_t n) { return n >= 1 && n <= kMaxImageSide; };
    if ((!steps.resize.empty() && (steps.resize.size() > 2 || !std::all_of(steps.resize.begin(), steps.resize.end(), sideOk))) ||
        (!steps.crop.empty() && (steps.crop.size() != 2 || !std::all_of(steps.crop.begin(), steps.crop.end(), sideOk))))
        throw FormatError(where + ": the file's resize or crop size is not an image size (1 to " +
                          std::to_string(kMaxImageSide) + " a side)");
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX))
        throw FormatError(where + ": the image file is too large");
    int w = 0, h = 0;
    // The size first, from the header: a huge image is refused before any pixel is allocated.
    std::string why;
    if (!imageSize(bytes, where, w, h, why))
        throw FormatError(why);
    if (w < 1 || h < 1 || w > kMaxImageSide || h > kMaxImageSide)
        throw FormatError(where + ": the image is " + std::to_string(w) + "x" + std::to_string(h) + ", more than " +
                          std::to_string(kMaxImageSide) + " pixels a side");
    const auto *data = reinterpret_cast<const stbi_uc *>(bytes.data());
    const int size = static_cast<int>(bytes.size());
    // 16-bit PNGs keep their precision: values / 65535 (PIL itself would cut them to 8 bits).
    const bool wide = !isJpeg(bytes) && stbi_is_16_bit_from_memory(data, size) != 0;

    // The sizes along the way, and what the note says of each step.
    std::vector<std::string> said;
    int rw = w, rh = h;  // after the file's resize
    if (steps.resize.size() == 1) {
        // torchvision's Resize(n): the shorter side to n, the longer to int(n * long / short).
        const std::int64_t n = steps.resize[0], shorter = std::min(w, h), longer = std::max(w, h);
        const auto other = static_cast<std::int64_t>(static_cast<double>(n * longer) / static_cast<double>(shorter));
        if (other > kMaxImageSide)
            throw FormatError(where + ": resizing the image (" + sizeText(w, h) + ") to " + std::to_string(n) +
                              " on its shorter side, as the file says, makes it more than " +
                              std::to_string(kMaxImageSide) + " pixels a side");
        rw = static_cast<int>(w <= h ? n : other);
        rh = static_cast<int>(w <= h ? other : n);
        said.push_back("resized to " + sizeText(rw, rh) + " (its shorter side to " + std::to_string(n) + ", as " +
                       (steps.resizeKey.empty() ? std::string("the file") : steps.resizeKey) +
                       " says: torchvision's Resize(" + std::to_string(n) + "))");
    } else if (steps.resize.size() == 2) {
        rh = static_cast<int>(steps.resize[0]);
        rw = static_cast<int>(steps.resize[1]);
        said.push_back("resized to " + sizeText(rw, rh) + " (as " +
                       (steps.resizeKey.empty() ? std::string("the file") : steps.resizeKey) +
                       " says: torchvision's Resize((" + std::to_string(rh) + ", " + std::to_string(rw) + ")))");
    }
    int cw = rw, ch = rh;  // after the file's crop
    if (steps.crop.size() == 2) {
        ch = static_cast<int>(steps.crop[0]);
        cw = static_cast<int>(steps.crop[1]);
        said.push_back("centre-cropped to " + sizeText(cw, ch) + " (as " +
                       (steps.cropKey.empty() ? std::string("the file") : steps.cropKey) +
                       " says: torchvision's CenterCrop((" + std::to_string(ch) + ", " + std::to_string(cw) + "))" +
                       (cw > rw || ch > rh ? ", padded with zeros where the picture is smaller, as CenterCrop pads" : "") +
                       ")");
    }
    if (ownSize) {
        width = cw;
        height = ch;
    }
    const bool resize = cw != width || ch != height;
    if (resize)
        said.push_back("resized to the model's input size " + std::to_string(width) + "x" + std::to_string(height) +
                       " (torchvision's Resize((" + std::to_string(height) + ", " + std::to_string(width) + ")))");
    InputTable t;
    t.shape = {1, channels, height, width};
    t.values.resize(static_cast<std::size_t>(channels) * static_cast<std::size_t>(height) * static_cast<std::size_t>(width));
    if (!said.empty()) {
        t.note = "the image (" + sizeText(w, h) + ") was ";
        for (std::size_t i = 0; i < said.size(); ++i)
            t.note += (i ? ", then " : "") + said[i];
        if (rw != w || rh != h || resize) {
            const std::string name = filterName(steps.filter);
            t.resampled = name;
            t.note += ", with PIL's " + name + " filter" +
                      (steps.filter == ResampleFilter::Nearest ? std::string(" (the nearest pixel, no smoothing)")
                                                               : std::string(" (antialiased)")) +
                      (steps.filterKey.empty() ? std::string() : ", as " + steps.filterKey + " says") +
                      ", as torchvision's Resize(interpolation=" + name + ") does to a PIL image";
        }
    }
    // HWC samples to CHW values, as torchvision's ToTensor.
    auto store = [&](auto sample) {
        for (int y = 0; y < height; ++y)
            for (int x = 0; x < width; ++x)
                for (int c = 0; c < channels; ++c)
                    t.values[(static_cast<std::size_t>(c) * height + y) * width + x] =
                        sample((static_cast<std::size_t>(y) * width + x) * channels + c);
    };
    if (!wide) {
        // 8-bit pictures as PIL gives them: JPEGs decoded by libjpeg with PIL's settings, the rest
        // by stb (exact for PNG, BMP and GIF); converted to the model's mode as PIL's convert()
        // does, resized by PIL's own arithmetic for the filter, then divided by 255.
        Pixels8 px;
        if (isJpeg(bytes)) {
            px = toChannels(decodeJpeg(bytes, where, kMaxImageSide), channels);
        } else {
            int found = 0;
            // A grey model gets PIL's convert('L') of a colour picture: decoded as RGB, weighed here.
            (void)stbi_info_from_memory(data, size, &w, &h, &found);
            const int decoded = channels == 1 && found >= 3 ? 3 : channels;
            std::unique_ptr<stbi_uc, void (*)(void *)> pixels(stbi_load_from_memory(data, size, &w, &h, &found, decoded),
                                                              stbi_image_free);
            if (!pixels)
                throw FormatError(where + ": the image cannot be decoded (" + stbi_failure_reason() + ")");
            px.width = w;
            px.height = h;
            px.channels = decoded;
            px.data.assign(pixels.get(), pixels.get() + static_cast<std::size_t>(w) * static_cast<std::size_t>(h) *
                                                            static_cast<std::size_t>(decoded));
            px = toChannels(px, channels);
        }
        if (rw != px.width || rh != px.height)
            px = pilResize(px, rw, rh, steps.filter);
        if (cw != rw || ch != rh) {
            px.data = centreCrop(px.data, rw, rh, channels, cw, ch);
            px.width = cw;
            px.height = ch;
        }
        if (resize)
            px = pilResize(px, width, height, steps.filter);
        store([&](std::size_t k) { return px.data[k] / 255.0; });
        return t;
    }
    int found = 0;
    (void)stbi_info_from_memory(data, size, &w, &h, &found);
    // Said with every run: PIL-based code gives other numbers for this picture.
    t.note += (t.note.empty() ? "" : "; ") + std::string("the PNG has 16 bits a channel: its values were divided by "
                                                          "65535, keeping their precision, where PIL gives other numbers (") +
              (found >= 3 ? "it keeps only the high byte of a 16-bit colour PNG, value // 256"
                          : "it opens a 16-bit grey PNG as mode I, whose convert('L') or convert('RGB') clips every "
                            "value above 255 to 255") +
              ")";
    const bool toGrey = channels == 1 && found >= 3;
    std::unique_ptr<stbi_us, void (*)(void *)> pixels(stbi_load_16_from_memory(data, size, &w, &h, &found, toGrey ? 3 : channels),
                                                      stbi_image_free);
    if (!pixels)
        throw FormatError(where + ": the image cannot be decoded (" + stbi_failure_reason() + ")");
    const std::size_t n = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
    std::vector<double> px(n * static_cast<std::size_t>(channels));
    const stbi_us *p16 = pixels.get();
    for (std::size_t i = 0; i < n; ++i) {
        if (toGrey) {
            const std::size_t k = i * 3;
            px[i] = (0.299 * p16[k] + 0.587 * p16[k + 1] + 0.114 * p16[k + 2]) / 65535.0;
        } else {
            for (int c = 0; c < channels; ++c) {
                const std::size_t k = i * static_cast<std::size_t>(channels) + static_cast<std::size_t>(c);
                px[k] = p16[k] / 65535.0;
            }
        }
    }
    if (rw != w || rh != h)
        px = resizeSamples(px, w, h, channels, rw, rh, steps.filter);
    if (cw != rw || ch != rh)
        px = centreCrop(px, rw, rh, channels, cw, ch);
    if (resize)
        px = resizeSamples(px, cw, ch, channels, width, height, steps.filter);
    store([&](std::size_t k) { return px[k]; });
    return t;
}

ImageSteps statedImageSteps(const ImagePreprocessing &p)
{
    ImageSteps steps;
    steps.resize = p.resize;
    steps.crop = p.crop;
    steps.resizeKey = p.resizeKey;
    steps.cropKey = p.cropKey;
    steps.filter = p.filter;
    steps.filterKey = p.filterKey;
    return steps;
}

ImageSteps imageSteps(const std::string &bytes, const Architecture &arch, const std::vector<std::int64_t> &sample,
                      const ImageSteps &stated)
{
    ImageSteps steps = stated;
    steps.height = steps.width = 0;
    if (sample.size() != 3 || sample[1] <= 0 || sample[2] <= 0)
        return steps;  // any size: as the file's steps leave it
    const std::pair<int, int> model{static_cast<int>(sample[1]), static_cast<int>(sample[2])};
    steps.height = model.first;
    steps.width = model.second;
    if (!arch.inputSizeChosen || sample != arch.inputShape || bytes.size() > static_cast<std::size_t>(INT32_MAX))
        return steps;
    // The layers take other sizes and the file states none: the picture's own (after the file's
    // steps), when the layers take it.
    int w = 0, h = 0;
    std::string why;
    if (!imageSize(bytes, "image", w, h, why) || w < 1 || h < 1)
        return steps;  // parseImage says what is wrong
    if (stated.crop.size() == 2) {
        h = static_cast<int>(stated.crop[0]);
        w = static_cast<int>(stated.crop[1]);
    } else if (stated.resize.size() == 2) {
        h = static_cast<int>(stated.resize[0]);
        w = static_cast<int>(stated.resize[1]);
    } else if (stated.resize.size() == 1) {
        const std::int64_t n = stated.resize[0], shorter = std::min(w, h), longer = std::max(w, h);
        const auto other = static_cast<std::int64_t>(static_cast<double>(n * longer) / static_cast<double>(shorter));
        if (other > kMaxImageSide)
            return steps;  // parseImage says so
        const int nw = static_cast<int>(w <= h ? n : other), nh = static_cast<int>(w <= h ? other : n);
        w = nw;
        h = nh;
    }
    if (takesInput(arch, {sample[0], h, w}))
        steps.height = steps.width = 0;
    return steps;
}

std::vector<std::int64_t> proposedSampleShape(const Document &doc, const Architecture &arch)
{
    std::vector<std::int64_t> shape = arch.inputShape;
    if (!arch.inputSizeChosen || shape.size() != 3)
        return shape;
    const ImageSteps stated = statedImageSteps(imagePreprocessingOf(doc));
    const std::vector<std::int64_t> &size = stated.crop.size() == 2 ? stated.crop : stated.resize;
    if (size.size() != 2 || size[0] <= 0 || size[1] <= 0 || size[0] > kMaxImageSide || size[1] > kMaxImageSide)
        return shape;
    const std::vector<std::int64_t> stepped{shape[0], size[0], size[1]};
    return takesInput(arch, stepped) ? stepped : shape;
}

namespace {

// The picture sizes a file states, as [C, H, W] with C 0 where it does not say: image_size,
// input_size or input_shape at the root, in model_config and in preprocessing.
std::vector<std::vector<std::int64_t>> statedPictureSizes(const Document &doc)
{
    std::vector<std::vector<std::int64_t>> out;
    if (!doc.root || !doc.root->isDict())
        return out;
    auto side = [](const ValuePtr &v) { return v && v->kind() == Value::Kind::Int && v->asInt() > 0 && v->asInt() <= kMaxImageSide; };
    for (const ValuePtr &where : {doc.root, doc.root->get("model_config"), doc.root->get("preprocessing")}) {
        if (!where || !where->isDict())
            continue;
        for (const char *key : {"image_size", "input_size", "input_shape"}) {
            const ValuePtr v = where->get(key);
            if (side(v)) {
                out.push_back({0, v->asInt(), v->asInt()});
            } else if (v && v->isSequence() && (v->items().size() == 2 || v->items().size() == 3) &&
                       std::all_of(v->items().begin(), v->items().end(), side)) {
                const auto &i = v->items();
                out.push_back(i.size() == 2 ? std::vector<std::int64_t>{0, i[0]->asInt(), i[1]->asInt()}
                                            : std::vector<std::int64_t>{i[0]->asInt(), i[1]->asInt(), i[2]->asInt()});
            }
        }
    }
    return out;
}

// The channel count a file states: the normalisation's means (1 or 3), else model_config's
// in_channels or channels; 0 when it says none.
std::int64_t statedChannels(const Document &doc)
{
    const Preprocessing pre = preprocessingOf(doc);
    if (pre.present() && (pre.mean.size() == 1 || pre.mean.size() == 3))
        return static_cast<std::int64_t>(pre.mean.size());
    if (doc.root && doc.root->isDict())
        if (const ValuePtr config = doc.root->get("model_config"); config && config->isDict())
            for (const char *key : {"in_channels", "channels", "num_channels"})
                if (const ValuePtr v = config->get(key); v && v->kind() == Value::Kind::Int)
                    if (v->asInt() == 1 || v->asInt() == 3 || v->asInt() == 4)
                        return v->asInt();
    return 0;
}

} // namespace

std::optional<std::vector<std::int64_t>> pictureShape(const Document &doc, const Architecture &arch,
                                                      const std::vector<std::int64_t> &sample, std::string *how)
{
    auto channelsOk = [](std::int64_t c) { return c == 1 || c == 3 || c == 4; };
    if (sample.size() == 3 && channelsOk(sample[0]) && sample[1] != 0 && sample[2] != 0)
        return sample;
    if (sample.size() != 1 || sample[0] <= 0 || arch.integerInput)
        return std::nullopt;
    const std::int64_t n = sample[0];
    const std::int64_t channels = statedChannels(doc);
    // A size the file states, with the channels that make up the features.
    for (const auto &size : statedPictureSizes(doc)) {
        const std::int64_t area = size[1] * size[2];
        if (n % area != 0)
            continue;
        const std::int64_t c = n / area;
        if (!channelsOk(c) || (size[0] != 0 && size[0] != c) || (channels != 0 && channels != c))
            continue;
        if (how)
            *how = "the model takes " + std::to_string(n) + " features: the picture becomes " + std::to_string(c) + "x" +
                   std::to_string(size[1]) + "x" + std::to_string(size[2]) + " (channels x height x width) by the " +
                   "size the file states, flattened in that order as torch.flatten does";
        return std::vector<std::int64_t>{c, size[1], size[2]};
    }
    // The channels the file states, and a square of the rest.
    if (channels != 0 && n % channels == 0) {
        const std::int64_t per = n / channels;
        const auto s = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(per))));
        if (s * s == per && s <= kMaxImageSide) {
            if (how)
                *how = "the model takes " + std::to_string(n) + " features: the picture becomes " +
                       std::to_string(channels) + "x" + std::to_string(s) + "x" + std::to_string(s) +
                       " (channels x height x width; the file's normalisation has " + std::to_string(channels) +
                       (channels == 1 ? " channel" : " channels") + ", " + std::to_string(n) + " = " +
                       std::to_string(channels) + "·" + std::to_string(s) + "·" + std::to_string(s) +
                       "), flattened in that order as torch.flatten does";
            return std::vector<std::int64_t>{channels, s, s};
        }
    }
    return std::nullopt;
}

} // namespace ckpt
