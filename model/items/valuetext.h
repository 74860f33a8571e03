#pragma once

#include <QColor>
#include <QString>

#include <cstdint>

namespace ckpt {

enum class DType;
class Value;
struct TensorRef;
struct TensorStats;

// Display text for values, shared by the item models so that every view says the same thing.
namespace valuetext {

// Python's repr of a str ('abc', "it's"), its content cut at `maxChars` with an ellipsis.
QString pythonStringRepr(const std::string &utf8, int maxChars = 80);
// Python's repr of bytes (b'\x00ab'), cut at `maxChars` characters of content.
QString pythonBytesRepr(const std::string &raw, int maxChars = 80);
// A complex number as Python prints it ("(1+2j)", "2j").
QString pythonComplexRepr(double re, double im);

// One-line preview: scalars as Python prints them, containers "N items", tensors "[2, 3] float32 cpu",
// opaque objects their class name.
QString preview(const Value &v, int maxChars = 80);
// The type column: "int", "OrderedDict", "Tensor", "Linear" (an object's class without its module).
QString typeText(const Value &v);
// "float32", "bfloat16".
QString dtypeText(DType t);
// "[50, 10] float32 cpu".
QString tensorSummary(const TensorRef &t);
// Why a tensor cannot be trusted (extent past its storage, unresolved record); empty when fine.
QString tensorProblem(const TensorRef &t);
// "1,234,567" in the user's locale.
QString count(qint64 n);
// "2.0 KiB" (IEC units, one decimal).
QString bytes(qint64 n);
// "N items" with the singular for one.
QString items(qint64 n);
// "1 tensor" / "4 tensors": English plurals without a translator loaded.
QString counted(qint64 n, const QString &one, const QString &many);

// "12.5 %" (one decimal; "< 0.1 %" for small non-zero fractions).
QString percent(double fraction);
// One element as the values grid shows it: integers whole, bools True/False, floats to the
// precision of `t` ("nan", "inf", "-inf" as PyTorch prints them).
QString elementText(double v, DType t);
// An integer or bool element exactly (what ComputeApi::integers gives): a uint64 tensor's bits as
// the unsigned number they are, bools True/False.
QString integerText(std::int64_t v, DType t);
// The longest text an element of integer type `t` has: its minimum ("-128"), or an unsigned
// type's maximum ("18446744073709551615").
QString widestIntegerText(DType t);
// An integer or bool tensor's min (or `max`) exactly; empty for other tensors, whose extremes are
// doubles the caller writes its own way.
QString exactExtremeText(const TensorStats &s, bool max);
// A float at full precision: the shortest text that reads back as the same double (as Python's
// repr), "nan", "inf", "-inf".
QString fullPrecisionText(double v);
// An element as copied to the clipboard: the shortest text that reads back as the same value of
// its dtype ("-0.030074818" for a float32, "0.296875" for a bfloat16, 17 digits only for a
// float64), integers and bools as elementText.
QString copyText(double v, DType t);
// A statistic of `s` (its min, mean, std, ...) to `digits` significant digits: a dash where the
// tensor has no values to measure (empty, or NaNs only, which are left out), "nan" where the figure
// is NaN over some values (the mean of inf and -inf, the std of one value), as torch gives it.
QString statisticText(double v, const TensorStats &s, int digits);
// One of torch's figures of `s` (TensorStats::torch) to `digits` significant digits, as `ckpt
// tensors --stats` writes it: "nan" where torch gives nan (any NaN in the tensor), "inf", "-inf";
// a dash for a figure a tensor without elements has none of (its L2 norm is 0, as torch's).
QString torchStatisticText(double v, const TensorStats &s, int digits);
// Where the tensor holds NaN values, its figures over the other values, labelled as such:
// "Without the 2 NaN values: min -2  max inf  mean inf  std nan  L2 inf"; empty without NaN.
QString withoutNanText(const TensorStats &s, int digits);
// A complex element "(1.5+2j)" with its parts to the precision of `t`.
QString complexElementText(double re, double im, DType t);
// Colours that mark NaN and Inf (rows of the tensor table, cells of the values grid); readable
// with light and dark palettes because both are set together.
QColor nonFiniteBackground();
QColor nonFiniteForeground();

} // namespace valuetext
} // namespace ckpt
