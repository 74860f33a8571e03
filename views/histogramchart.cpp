#include "histogramchart.h"

#include <QChart>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QValueAxis>

#include <algorithm>

namespace ckpt {

HistogramChart::HistogramChart(QWidget *parent) : QChartView(parent)
{
    setRenderHint(QPainter::Antialiasing);
    setMinimumHeight(160);
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

void HistogramChart::rebuild()
{
    auto *chart = new QChart;
    chart->setMargins(QMargins(4, 4, 4, 4));
    chart->legend()->setVisible(m_curves.size() > 1);
    chart->legend()->setAlignment(Qt::AlignTop);
    chart->setTitle(m_message.isEmpty() ? m_title : m_message);
    chart->setBackgroundBrush(palette().base());
    chart->setTitleBrush(palette().text());
    chart->legend()->setLabelBrush(palette().text());

    double lo = 0, hi = 0, top = 1;
    bool any = false;
    for (const auto &c : m_curves) {
        if (c.histogram.counts.empty())
            continue;
        lo = any ? std::min(lo, c.histogram.low) : c.histogram.low;
        hi = any ? std::max(hi, c.histogram.high) : c.histogram.high;
        top = std::max<double>(top, static_cast<double>(*std::max_element(c.histogram.counts.begin(), c.histogram.counts.end())));
        any = true;
    }
    if (hi <= lo)
        hi = lo + 1;  // one value: give the axis a width

    auto *x = new QValueAxis;
    x->setRange(lo, hi);
    x->setLabelFormat(QStringLiteral("%.3g"));
    x->setLabelsBrush(palette().text());
    QAbstractAxis *y = nullptr;
    if (m_log) {
        auto *ly = new QLogValueAxis;
        ly->setBase(10);
        ly->setRange(0.8, top * 1.5);
        ly->setLabelFormat(QStringLiteral("%g"));
        ly->setLabelsBrush(palette().text());
        y = ly;
    } else {
        auto *vy = new QValueAxis;
        vy->setRange(0, top * 1.05);
        vy->setLabelFormat(QStringLiteral("%d"));
        vy->setLabelsBrush(palette().text());
        y = vy;
    }
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);

    for (const auto &c : m_curves) {
        const auto &h = c.histogram;
        if (h.counts.empty())
            continue;
        auto *s = new QLineSeries;
        s->setName(c.name);
        const double width = h.high > h.low ? (h.high - h.low) / static_cast<double>(h.counts.size()) : 1.0;
        // Steps: each bin's count held across its width; zero counts drop to the axis (log: its floor).
        for (std::size_t b = 0; b < h.counts.size(); ++b) {
            const double v = static_cast<double>(h.counts[b]);
            const double shown = m_log ? std::max(v, 0.8) : v;
            s->append(h.low + width * static_cast<double>(b), shown);
            s->append(h.low + width * static_cast<double>(b + 1), shown);
        }
        QPen pen(c.colour);
        pen.setWidthF(1.6);
        s->setPen(pen);
        chart->addSeries(s);
        s->attachAxis(x);
        s->attachAxis(y);
    }
    QChart *old = this->chart();
    setChart(chart);
    delete old;
}

} // namespace ckpt
