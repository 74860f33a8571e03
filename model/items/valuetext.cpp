#include "valuetext.h"

#include <charconv>

#include "computeapi.h"
#include "dtype.h"
#include "pythonrepr.h"
#include "tensorref.h"
#include "value.h"
#include "valuetree.h"

#include <QLocale>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ckpt::valuetext {

QString dtypeText(DType t)
{
    const std::string_view n = dtypeName(t);
    return QString::fromLatin1(n.data(), static_cast<qsizetype>(n.size()));
}

// The format layer's Python repr (the CLI's too): one set of rules, Python's printable table.
QString pythonStringRepr(const std::string &utf8, int maxChars)
{
    return QString::fromStdString(::ckpt::pythonStringRepr(utf8, static_cast<std::size_t>(std::max(maxChars, 0))));
}

QString pythonBytesRepr(const std::string &raw, int maxChars)
{
    const auto shown = static_cast<std::size_t>(std::max(maxChars, 0));
    QString out = QString::fromStdString(::ckpt::pythonBytesRepr(raw, shown));
    if (raw.size() > shown)
        out += QStringLiteral(" (%1 bytes)").arg(count(static_cast<qint64>(raw.size())));
    return out;
}

QString pythonComplexRepr(double re, double im)
{
    return QString::fromStdString(::ckpt::pythonComplexRepr(re, im));
}

QString count(qint64 n)
{
    return QLocale().toString(n);
}

QString bytes(qint64 n)
{
    if (n < 0)
        return QStringLiteral("?");
    return QLocale().formattedDataSize(n, 1, QLocale::DataSizeIecFormat);
}

QString items(qint64 n)
{
    return counted(n, QStringLiteral("item"), QStringLiteral("items"));
}

QString counted(qint64 n, const QString &one, const QString &many)
{
    return QStringLiteral("%1 %2").arg(count(n), n == 1 ? one : many);
}

QString tensorSummary(const TensorRef &t)
{
    return QStringLiteral("%1 %2 %3")
        .arg(QString::fromStdString(shapeText(t.shape)), dtypeText(t.dtype),
             QString::fromStdString(t.device()));
}

QString tensorProblem(const TensorRef &t)
{
    if (!t.problem.empty())
        return QString::fromStdString(t.problem);
    if (t.storage && !t.storage->problem.empty())
        return QString::fromStdString(t.storage->problem);
    return {};
}

QString typeText(const Value &v)
{
    // Objects by their class's own name ("Linear"); the value column carries the qualified name.
    if (v.kind() == Value::Kind::Object) {
        const std::string cls = className(v);
        if (!cls.empty())
            return QString::fromStdString(cls.substr(cls.rfind('.') + 1));
    }
    return QString::fromStdString(v.typeName());
}

QString preview(const Value &v, int maxChars)
{
    using K = Value::Kind;
    switch (v.kind()) {
    case K::None: return QStringLiteral("None");
    case K::Bool: return v.asBool() ? QStringLiteral("True") : QStringLiteral("False");
    case K::Int: return QString::number(v.asInt());
    case K::BigInt: return QString::fromStdString(v.text());
    case K::Float: return QString::fromStdString(formatFloat(v.asFloat()));
    case K::Complex: return pythonComplexRepr(v.asFloat(), v.imag());
    case K::String: return pythonStringRepr(v.text(), maxChars);  // the file's bytes: a lone surrogate stays \ud800
    case K::Bytes: return pythonBytesRepr(v.text(), maxChars);
    case K::Global: return QString::fromStdString(v.qualifiedName());
    case K::Tuple:
    case K::List:
    case K::Set:
    case K::FrozenSet: return items(static_cast<qint64>(v.items().size()));
    case K::Dict: return items(static_cast<qint64>(v.entries().size()));
    case K::Object: {
        const std::string cls = className(v);
        return cls.empty() ? QStringLiteral("object") : QString::fromStdString(cls);
    }
    case K::Tensor:
        if (!v.tensorRef())
            return QStringLiteral("Tensor");
        // A number kept as a tensor (best_acc1, a loss): its value is what matters, as torch prints it.
        if (v.tensorRef()->shape.empty() && !v.tensorRef()->isParameter)
            if (const std::string text = ::ckpt::pythonRepr(v); text.starts_with("tensor("))
                return QString::fromStdString(text);
        return tensorSummary(*v.tensorRef());
    case K::Storage:
        if (const auto &s = v.storageRef())
            return QStringLiteral("storage %1 (%2, %3)")
                .arg(QString::fromStdString(s->key), dtypeText(s->dtype),
                     QString::fromStdString(s->location));
        return QStringLiteral("storage");
    }
    return {};
}

QString percent(double fraction)
{
    if (std::isnan(fraction))
        return QStringLiteral("\u2013");
    if (fraction > 0 && fraction < 0.0005)
        return QStringLiteral("< 0.1 %");
    return QStringLiteral("%1 %").arg(QLocale().toString(fraction * 100.0, 'f', 1));
}

namespace {

int significantDigits(DType t)
{
    switch (t) {
    // Enough to tell neighbouring values apart: float16's are 2^-10 apart near 1 (1.0205, 1.0215,
    // as torch prints them), bfloat16's 2^-7.
    case DType::Float16: return 5;
    case DType::BFloat16: return 4;
    case DType::Float64:
    case DType::Complex128: return 10;
    default: return 6;
    }
}

} // namespace

QString elementText(double v, DType t)
{
    if (std::isnan(v))
        return QStringLiteral("nan");
    if (std::isinf(v))
        return v > 0 ? QStringLiteral("inf") : QStringLiteral("-inf");
    if (t == DType::Bool)
        return v != 0 ? QStringLiteral("True") : QStringLiteral("False");
    if (dtypeIsIntegral(t) && std::abs(v) < 0x1p63)
        return QString::number(static_cast<qlonglong>(v));
    return QString::number(v, 'g', significantDigits(t));
}

QString fullPrecisionText(double v)
{
    if (std::isnan(v))
        return QStringLiteral("nan");
    if (std::isinf(v))
        return v > 0 ? QStringLiteral("inf") : QStringLiteral("-inf");
    return QString::number(v, 'g', QLocale::FloatingPointShortest);
}

QString copyText(double v, DType t)
{
    if (!std::isfinite(v) || !dtypeIsFloating(t))
        return elementText(v, t);
    if (t == DType::Float64)
        return fullPrecisionText(v);
    // float32, and the 16-bit floats (every one of them is a float32 exactly): the shortest
    // decimal that reads back as that float32.
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<float>(v));
    return ec == std::errc() ? QString::fromLatin1(buf, static_cast<qsizetype>(end - buf)) : fullPrecisionText(v);
}

QString statisticText(double v, const TensorStats &s, int digits)
{
    if (std::isnan(v))
        return s.count - s.nanCount <= 0 ? QStringLiteral("\u2013") : QStringLiteral("nan");
    if (std::isinf(v))
        return v > 0 ? QStringLiteral("inf") : QStringLiteral("-inf");
    return QString::number(v, 'g', digits);
}

QString torchStatisticText(double v, const TensorStats &s, int digits)
{
    if (std::isnan(v))
        return s.count <= 0 ? QStringLiteral("\u2013") : QStringLiteral("nan");
    return statisticText(v, s, digits);
}

QString withoutNanText(const TensorStats &s, int digits)
{
    if (s.nanCount <= 0)
        return {};
    const StatFigures f = s.withoutNan();
    auto figure = [&](double v) { return statisticText(v, s, digits); };
    const QString head = s.nanCount == 1 ? QStringLiteral("Without the NaN value:")
                                         : QStringLiteral("Without the %1 NaN values:").arg(count(s.nanCount));
    return head + QStringLiteral(" min %1  max %2  mean %3  std %4  L2 %5")
                      .arg(figure(f.min), figure(f.max), figure(f.mean), figure(f.std), figure(f.l2));
}

QString integerText(std::int64_t v, DType t)
{
    if (t == DType::Bool)
        return v != 0 ? QStringLiteral("True") : QStringLiteral("False");
    if (t == DType::UInt64)
        return QString::number(static_cast<qulonglong>(v));
    return QString::number(static_cast<qlonglong>(v));
}

QString widestIntegerText(DType t)
{
    switch (t) {
    case DType::Int8: return integerText(std::numeric_limits<std::int8_t>::min(), t);
    case DType::Int16: return integerText(std::numeric_limits<std::int16_t>::min(), t);
    case DType::Int32: return integerText(std::numeric_limits<std::int32_t>::min(), t);
    case DType::Int64: return integerText(std::numeric_limits<std::int64_t>::min(), t);
    case DType::UInt8: return integerText(std::numeric_limits<std::uint8_t>::max(), t);
    case DType::UInt16: return integerText(std::numeric_limits<std::uint16_t>::max(), t);
    case DType::UInt32: return integerText(std::numeric_limits<std::uint32_t>::max(), t);
    case DType::UInt64: return integerText(-1, t);  // all bits set
    default: return integerText(0, t);
    }
}

QString exactExtremeText(const TensorStats &s, bool max)
{
    if (!s.exact)
        return {};
    const std::int64_t v = max ? s.exactMax : s.exactMin;
    return s.exactUnsigned ? QString::number(static_cast<qulonglong>(v)) : QString::number(static_cast<qlonglong>(v));
}

QString complexElementText(double re, double im, DType t)
{
    const QString imag = elementText(im, t);
    const QString sign = imag.startsWith(QLatin1Char('-')) ? QString() : QStringLiteral("+");
    return QLatin1Char('(') + elementText(re, t) + sign + imag + QStringLiteral("j)");
}

QColor nonFiniteBackground() { return QColor(0xfd, 0xe3, 0xe1); }

QColor nonFiniteForeground() { return QColor(0x8c, 0x1d, 0x18); }

} // namespace ckpt::valuetext
