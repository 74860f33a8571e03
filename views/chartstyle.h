#pragma once

#include <QChart>
#include <QPalette>

namespace ckpt {

// A chart in the window's colours (dark themes included), with its legend on the right: what every
// chart of the views starts from before its axes and series.
inline QChart *newThemedChart(const QPalette &palette)
{
    auto *chart = new QChart;
    chart->setMargins(QMargins(4, 4, 4, 4));
    chart->setBackgroundBrush(palette.base());
    chart->setTitleBrush(palette.text());
    chart->legend()->setLabelBrush(palette.text());
    chart->legend()->setAlignment(Qt::AlignRight);
    return chart;
}

} // namespace ckpt
