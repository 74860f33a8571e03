#pragma once

#include "computeapi.h"

#include <QChartView>
#include <QColor>
#include <QString>

#include <vector>

class QValueAxis;

namespace ckpt {

// Histograms drawn as step lines over one value axis, with linear or logarithmic counts; several
// may be overlaid (a tensor in two files), each with its name and colour.
class HistogramChart : public QChartView {
    Q_OBJECT
public:
    struct Curve {
        QString name;
        Histogram histogram;
        QColor colour;  // invalid: the palette's highlight colour, followed when the theme changes
    };
    explicit HistogramChart(QWidget *parent = nullptr);

    void setCurves(const std::vector<Curve> &curves, const QString &title = {});
    void setLogCounts(bool log);
    bool logCounts() const { return m_log; }
    const std::vector<Curve> &curves() const { return m_curves; }
    // A line in place of the curves ("computing…", an error, what selecting a row shows).
    void setMessage(const QString &text);
    QString message() const { return m_message; }
    // The colour a curve is drawn in: its own (or the highlight colour), lightened or darkened
    // until it stands out from the chart's background in the current palette.
    QColor drawnColour(const Curve &curve) const;

protected:
    // A new palette (the theme changed) redraws the chart in its colours.
    void changeEvent(QEvent *event) override;

private:
    void rebuild();
    // On a linear count axis: as many ticks, at round whole counts, as the plot's height has room
    // for with each label readable (Qt Charts elides a label taller than its share of the axis).
    void fitCountTicks();
    std::vector<Curve> m_curves;
    QString m_title;
    QString m_message;
    bool m_log = false;
    QValueAxis *m_countAxis = nullptr;  // the linear count axis shown, if any
    qint64 m_top = 0;                         // the largest count drawn
    double m_fittedHeight = -1;               // the plot height the ticks were chosen for
    bool m_fitPending = false;
};

} // namespace ckpt
