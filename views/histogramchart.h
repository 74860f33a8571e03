#pragma once

#include "computeapi.h"

#include <QChartView>
#include <QColor>
#include <QString>

#include <vector>

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
    std::vector<Curve> m_curves;
    QString m_title;
    QString m_message;
    bool m_log = false;
};

} // namespace ckpt
