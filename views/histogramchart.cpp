#include "histogramchart.h"

#include <QAreaSeries>
#include <QChart>
#include <QEvent>
#include <QFontMetricsF>
#include <QLegend>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QStringList>
#include <QValueAxis>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

namespace ckpt {

namespace {
// The range a histogram is drawn over: its own, or where all its values are one value v, a bar
// from v of a width that is more than v's rounding (v + 1 is v itself past 2^53), leftwards where
// rightwards would pass float64's largest value.
std::pair<double, double> barSpan(double low, double high)
{
    if (high > low)
        return {low, high};
    const double d = std::max(1.0, std::abs(low) * 1e-6);
    return std::isfinite(low + d) ? std::pair{low, low + d} : std::pair{low - d, low};
}

// A histogram that can be drawn: counts over a range of finite ends. One whose ends are NaN or
// infinite (none that the compute module makes, but a Histogram is a plain struct) is left out
// rather than drawn as an axis from nan to nan.
bool drawable(const Histogram &h)
{
    return !h.counts.empty() && std::isfinite(h.low) && std::isfinite(h.high) && h.low <= h.high;
}

// "3 NaN or infinite values left out" (per curve where there are several), empty when none were.
QString leftOutText(const std::vector<HistogramChart::Curve> &curves)
{
    QStringList parts;
    for (const auto &c : curves) {
        if (c.histogram.nonFinite <= 0)
            continue;
        const QString n = c.histogram.nonFinite == 1
                              ? HistogramChart::tr("1 NaN or infinite value left out")
                              : HistogramChart::tr("%1 NaN or infinite values left out").arg(c.histogram.nonFinite);
        parts << (curves.size() > 1 && !c.name.isEmpty() ? c.name + QStringLiteral(": ") + n : n);
    }
    return parts.join(QStringLiteral("; "));
}
} // namespace

HistogramChart::HistogramChart(QWidget *parent) : QChartView(parent)
{
    setRenderHint(QPainter::Antialiasing);
    setMinimumSize(240, 160);
    auto *chart = new QChart;
    chart->setMargins(QMargins(4, 4, 4, 4));
    chart->setBackgroundRoundness(0);
    chart->legend()->setAlignment(Qt::AlignTop);
    setChart(chart);
    // The tick count follows the plot's height, which is known only once the chart is laid out.
    // Fitted after the layout, not inside it: a new range relays the chart out, which would call
    // back in while the axis is half set.
    connect(chart, &QChart::plotAreaChanged, this, [this] {
        if (m_fitPending)
            return;
        m_fitPending = true;
        QMetaObject::invokeMethod(
            this,
            [this] {
                m_fitPending = false;
                fitCountTicks();
            },
            Qt::QueuedConnection);
    });
    rebuild();
}

void HistogramChart::setCurves(const std::vector<Curve> &curves, const QString &title)
{
    m_curves = curves;
    m_title = title;
    m_message.clear();
    rebuild();
}

void HistogramChart::setLogCounts(bool log)
{
    if (m_log == log)
        return;
    m_log = log;
    rebuild();
}

void HistogramChart::setMessage(const QString &text)
{
    m_curves.clear();
    m_message = text;
    rebuild();
}

void HistogramChart::changeEvent(QEvent *event)
{
    QChartView::changeEvent(event);
    if (event->type() == QEvent::PaletteChange)
        rebuild();
}

QColor HistogramChart::drawnColour(const Curve &curve) const
{
    const QColor base = palette().color(QPalette::Base);
    QColor c = curve.colour.isValid() ? curve.colour : palette().color(QPalette::Highlight);
    // A selection blue is made to carry white text, so on a dark background it nearly vanishes:
    // step it away from the background's lightness until the bars read in either theme.
    const bool dark = base.lightness() < 128;
    for (int i = 0; i < 8 && std::abs(c.lightness() - base.lightness()) < 100; ++i)
        c = dark ? c.lighter(120) : c.darker(120);
    return c;
}

void HistogramChart::rebuild()
{
    // One chart for the view's life: callers may hold it; series and axes are replaced.
    QChart *chart = this->chart();
    chart->removeAllSeries();
    m_countAxis = nullptr;
    m_fittedHeight = -1;
    for (QAbstractAxis *axis : chart->axes()) {
        chart->removeAxis(axis);
        delete axis;  // the chart gave up its ownership
    }
    const QColor text = palette().color(QPalette::WindowText);
    const bool empty = std::none_of(m_curves.begin(), m_curves.end(), [](const Curve &c) { return drawable(c.histogram); });
    // Without curves the chart is the pane's own background, its line in the placeholder colour:
    // a hint, not a blank white panel.
    chart->setBackgroundBrush(palette().color(empty ? QPalette::Window : QPalette::Base));
    chart->setTitleBrush(empty ? palette().color(QPalette::PlaceholderText) : text);
    chart->legend()->setLabelColor(text);
    chart->legend()->setVisible(m_curves.size() > 1);

    double low = 0, high = 0;
    qint64 top = 0;
    bool any = false;
    for (const auto &c : m_curves) {
        const auto &h = c.histogram;
        if (!drawable(h))
            continue;
        low = any ? std::min(low, h.low) : h.low;
        high = any ? std::max(high, h.high) : h.high;
        for (auto n : h.counts)
            top = std::max<qint64>(top, n);
        any = true;
    }
    // The values no bin holds (NaN, infinities) are said, not silently missing from the bars.
    const QString leftOut = leftOutText(m_curves);
    if (!m_message.isEmpty() || !any || top == 0) {
        QString title = !m_message.isEmpty() ? m_message : m_curves.empty() ? QString() : tr("No finite values");
        if (m_message.isEmpty() && !leftOut.isEmpty())
            title += QStringLiteral(" (") + leftOut + QLatin1Char(')');
        chart->setTitle(title);
        return;
    }
    chart->setTitle(leftOut.isEmpty() ? m_title
                    : m_title.isEmpty() ? leftOut
                                        : m_title + QStringLiteral(" (") + leftOut + QLatin1Char(')'));
    std::tie(low, high) = barSpan(low, high);

    // Each histogram as a step outline over its bins, filled down to the axis: bars without 64
    // category labels. Log axes cannot reach zero, so empty bins sit on a floor there.
    const double floor = m_log ? 0.5 : 0.0;
    std::vector<QAreaSeries *> areas;
    for (const auto &c : m_curves) {
        const auto &h = c.histogram;
        if (!drawable(h))
            continue;
        const auto [hl, hh] = barSpan(h.low, h.high);
        // Each edge weighed between the ends, never from their difference, which is past float64
        // for a range such as [-1.7e308, 1.7e308].
        const double n = static_cast<double>(h.counts.size());
        auto edge = [hl = hl, hh = hh, n](std::size_t i) {
            const double t = static_cast<double>(i) / n;
            return i == 0 ? hl : hl * (1 - t) + hh * t;
        };
        auto *upper = new QLineSeries;
        auto *lower = new QLineSeries;
        for (std::size_t i = 0; i < h.counts.size(); ++i) {
            const double y = h.counts[i] > 0 ? static_cast<double>(h.counts[i]) : floor;
            upper->append(edge(i), y);
            upper->append(i + 1 == h.counts.size() ? hh : edge(i + 1), y);
        }
        lower->append(hl, floor);
        lower->append(hh, floor);
        auto *area = new QAreaSeries(upper, lower);
        area->setName(c.name);
        const QColor colour = drawnColour(c);
        QColor fill = colour;
        fill.setAlpha(m_curves.size() > 1 ? 110 : 200);
        area->setBrush(fill);
        const bool dark = palette().color(QPalette::Base).lightness() < 128;
        area->setPen(QPen(dark ? colour.lighter(125) : colour.darker(130), 1));
        chart->addSeries(area);
        areas.push_back(area);
    }

    auto *x = new QValueAxis;
    x->setRange(low, high);
    x->setTickCount(5);
    x->applyNiceNumbers();  // round tick labels; the bins keep their exact edges
    // Enough significant digits that the ticks read apart: differences of 0.00999999 … 0.01000001
    // all read "0.01" at three digits.
    {
        const double span = x->max() - x->min();
        const double magnitude = std::max(std::abs(x->min()), std::abs(x->max()));
        int digits = 3;
        if (span > 0 && std::isfinite(span) && magnitude > 0)
            digits = std::clamp(static_cast<int>(std::ceil(std::log10(magnitude / span))) + 2, 3, 15);
        x->setLabelFormat(QStringLiteral("%.%1g").arg(digits));
    }
    QAbstractAxis *y = nullptr;
    if (m_log) {
        auto *ly = new QLogValueAxis;
        ly->setBase(10);
        ly->setRange(floor, std::pow(10.0, std::ceil(std::log10(static_cast<double>(top)) + 0.01)));
        ly->setLabelFormat(QStringLiteral("%g"));
        y = ly;
    } else {
        auto *vy = new QValueAxis;
        vy->setLabelFormat(QStringLiteral("%d"));
        m_countAxis = vy;
        m_top = top;
        y = vy;
    }
    y->setObjectName(m_log ? QStringLiteral("logAxis") : QStringLiteral("linearAxis"));
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (auto *area : areas) {
        area->attachAxis(x);
        area->attachAxis(y);
    }
    for (QAbstractAxis *a : chart->axes()) {
        a->setLabelsColor(text);
        a->setGridLineColor(palette().color(QPalette::Mid));
    }
    fitCountTicks();
}

void HistogramChart::fitCountTicks()
{
    if (!m_countAxis || m_top <= 0)
        return;
    // Qt Charts gives each label (axis height / ticks) less 4 px of padding above and below, and
    // elides a label taller than that; a line of text and a little air per tick stays readable.
    // Before the first layout the plot has no height: the widget's own stands in for it.
    double height = chart()->plotArea().height();
    if (height <= 0)
        height = std::max(0, this->height() - 60);
    if (std::abs(height - m_fittedHeight) < 1)
        return;  // fitted to this height already (the plot moves sideways as labels widen)
    m_fittedHeight = height;
    const double perTick = QFontMetricsF(m_countAxis->labelsFont()).height() + 12;
    const int maxTicks = std::max(2, static_cast<int>(height / perTick));
    // Room above the tallest bin (a count or 5%), then whole-count steps of 1, 2, 5, 10, 20, ...:
    // the fewest that fit.
    const double want = std::max(static_cast<double>(m_top) + 1, static_cast<double>(m_top) * 1.05);
    double step = 1;
    for (int i = 0; std::ceil(want / step) + 1 > maxTicks; ++i)
        step *= (i % 3 == 1) ? 2.5 : 2;  // 1, 2, 5, 10, 20, 50, ...
    const double steps = std::ceil(want / step);
    const int ticks = static_cast<int>(steps) + 1;
    m_countAxis->setRange(0, steps * step);
    m_countAxis->setTickCount(ticks);
}

} // namespace ckpt
