#include "seriesview.h"

#include "chartstyle.h"
#include "jobwatch.h"

#include "jobpool.h"
#include "comparison.h"
#include "computeloader.h"
#include "document.h"

#include <QChart>
#include <QChartView>
#include <QEvent>
#include <QComboBox>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLegend>
#include <QLegendMarker>
#include <QLineSeries>

#include <limits>
#include <QProgressBar>
#include <QPromise>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTableView>
#include <QToolButton>
#include <QValueAxis>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ckpt {

struct SeriesJob {
    std::shared_ptr<const Series> series;
    QString error;
};

namespace {
constexpr int kPlotted = 8;  // tensors drawn before the user picks
constexpr int kLayerRole = Qt::UserRole + 1;  // on a row's name: its index in Series::layers (rows sort)
constexpr int kNonFiniteListed = 6;  // checkpoints named per tensor in the note under the chart
const QColor kPalette[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xd6, 0x27, 0x28), QColor(0x2c, 0xa0, 0x2c),
                           QColor(0xff, 0x7f, 0x0e), QColor(0x94, 0x67, 0xbd), QColor(0x8c, 0x56, 0x4b),
                           QColor(0xe3, 0x77, 0xc2), QColor(0x17, 0xbe, 0xcf)};
} // namespace

SeriesView::SeriesView(QWidget *parent) : QWidget(parent)
{
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("seriesSummary"));
    m_summary->setWordWrap(true);
    m_progress = new QProgressBar(this);
    m_progress->setMaximumWidth(180);
    m_progress->hide();
    m_cancel = new QToolButton(this);
    m_cancel->setText(tr("Cancel"));
    m_cancel->hide();
    connect(m_cancel, &QToolButton::clicked, this, &SeriesView::cancel);
    m_metric = new QComboBox(this);
    m_metric->setObjectName(QStringLiteral("seriesMetric"));
    m_metric->addItem(tr("L2 norm"));
    m_metric->addItem(tr("Drift from the first"));
    m_metric->addItem(tr("Drift from the previous"));
    m_metric->setCurrentIndex(1);
    connect(m_metric, &QComboBox::currentIndexChanged, this, [this] { fill(); });

    m_model = new QStandardItemModel(this);
    m_table = new QTableView(this);
    m_table->setObjectName(QStringLiteral("seriesTable"));
    m_table->setModel(m_model);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_table->verticalHeader()->hide();
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 6);
    m_table->setSortingEnabled(true);
    connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] { plot(); });

    m_chart = new QChartView(this);
    m_chart->setObjectName(QStringLiteral("seriesChart"));
    m_chart->setRenderHint(QPainter::Antialiasing);
    m_chart->setMinimumHeight(200);

    auto *bar = new QHBoxLayout;
    bar->addWidget(m_summary, 1);
    bar->addWidget(m_progress);
    bar->addWidget(m_cancel);
    bar->addWidget(new QLabel(tr("Show"), this));
    bar->addWidget(m_metric);
    auto *split = new QSplitter(Qt::Vertical, this);
    split->setChildrenCollapsible(false);
    // Selection decides what the chart draws: said in one line above the table, kept up to date.
    m_hint = new QLabel(this);
    m_hint->setObjectName(QStringLiteral("seriesHint"));
    m_hint->setWordWrap(true);
    auto *tablePane = new QWidget(this);
    auto *tableLayout = new QVBoxLayout(tablePane);
    tableLayout->setContentsMargins(0, 2, 0, 0);
    tableLayout->setSpacing(2);
    tableLayout->addWidget(m_hint);
    tableLayout->addWidget(m_table, 1);
    connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] { updateHint(); });
    // Where a drawn line breaks for NaN or Inf values, said under the chart: a gap alone reads as
    // a missing file.
    m_nonFinite = new QLabel(this);
    m_nonFinite->setObjectName(QStringLiteral("seriesNonFinite"));
    m_nonFinite->setWordWrap(true);
    m_nonFinite->setTextFormat(Qt::PlainText);  // tensor names come from the files
    m_nonFinite->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_nonFinite->setStyleSheet(QStringLiteral("QLabel { color: #b3261e; }"));
    m_nonFinite->hide();
    auto *chartPane = new QWidget(this);
    auto *chartLayout = new QVBoxLayout(chartPane);
    chartLayout->setContentsMargins(0, 0, 0, 0);
    chartLayout->setSpacing(2);
    chartLayout->addWidget(m_chart, 1);
    chartLayout->addWidget(m_nonFinite);
    split->addWidget(chartPane);
    split->addWidget(tablePane);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    split->setSizes({600, 300});
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 4);
    layout->addLayout(bar);
    layout->addWidget(split, 1);
}

SeriesView::~SeriesView()
{
    if (m_job)
        m_job->cancel();
}

void SeriesView::setFiles(const QStringList &files)
{
    cancel();
    m_series.reset();
    m_model->clear();
    updateHint();
    m_summary->setText(tr("Reading %1 checkpoints\u2026").arg(files.size()));
    std::vector<std::string> paths;
    for (const auto &f : files)
        paths.push_back(QFileInfo(f).absoluteFilePath().toStdString());
    startViewJob(
        this, m_job, m_progress, m_cancel,
        [paths](SeriesJob &job, QPromise<std::shared_ptr<SeriesJob>> &promise) {
            std::vector<std::unique_ptr<Document>> docs;
            std::vector<const Document *> ptrs;
            ReadOptions ro;
            ro.progress = [&promise](double) { return !promise.isCanceled(); };
            // A file that cannot be read is left out, named with why in the summary; the run is
            // drawn from the others. Cancelling still stops it all.
            std::vector<SeriesSkipped> skipped;
            for (const auto &p : paths) {
                try {
                    docs.push_back(std::make_unique<Document>(readDocument(p, ro)));
                    ptrs.push_back(docs.back().get());
                } catch (const std::exception &e) {
                    if (promise.isCanceled())
                        throw;
                    const std::string what = e.what();
                    skipped.push_back({p, what.find(p) != std::string::npos ? what : p + ": " + what});
                }
            }
            if (ptrs.empty() && !skipped.empty())
                throw std::runtime_error(skipped.front().reason);
            Series series = computeSeries(ptrs, ComputeLoader::api(), progressReporter(promise),
                                          [&promise] { return promise.isCanceled(); });
            series.skipped = std::move(skipped);
            job.series = std::make_shared<const Series>(std::move(series));
        },
        [this](const std::shared_ptr<SeriesJob> &job) {
            m_series = job->series;
            fill();
            Q_EMIT finished(true);
        },
        [this](const QString &error) {
            m_summary->setText(jobFailureText(error, tr("Cancelled.")));
            Q_EMIT finished(false);
        });
}

void SeriesView::cancel()
{
    if (!cancelViewJob(m_job, m_progress, m_cancel))
        return;
    m_summary->setText(tr("Cancelled."));
    Q_EMIT finished(false);
}

void SeriesView::setMetric(Metric m) { m_metric->setCurrentIndex(static_cast<int>(m)); }

SeriesView::Metric SeriesView::metric() const { return static_cast<Metric>(m_metric->currentIndex()); }

void SeriesView::fill()
{
    m_model->clear();
    if (!m_series)
        return;
    const Series &s = *m_series;
    QStringList headers{tr("Tensor")};
    for (const auto &p : s.points)
        headers << (p.epoch ? tr("epoch %1").arg(*p.epoch) : QFileInfo(QString::fromStdString(p.file)).fileName());
    m_model->setHorizontalHeaderLabels(headers);
    for (std::size_t c = 0; c < s.points.size(); ++c)
        m_model->horizontalHeaderItem(static_cast<int>(c + 1))->setToolTip(QString::fromStdString(s.points[c].file));
    int partial = 0;  // tensors some checkpoints lack
    for (const auto &l : s.layers) {
        const bool norm = metric() == Metric::Norm, fromFirst = metric() == Metric::DriftFromFirst;
        const auto &values = norm ? l.norm : fromFirst ? l.driftFromFirst : l.driftFromPrevious;
        const auto &gaps = norm ? l.normGap : fromFirst ? l.fromFirstGap : l.fromPreviousGap;
        QList<QStandardItem *> row{new QStandardItem(QString::fromStdString(l.name))};
        row.front()->setData(static_cast<int>(&l - s.layers.data()), kLayerRole);
        bool lacking = false;
        for (std::size_t k = 0; k < values.size(); ++k) {
            const double v = values[k];
            const SeriesGap g = gaps[k];
            lacking = lacking || !l.present(k);
            // A figure that cannot be given says why: the checkpoint lacks the tensor, or the two
            // checkpoints cannot be compared (the tooltip gives the reason).
            // A tensor that holds NaN or Inf has torch's figure, nan or inf, which sorts as the
            // largest (a diverged weight is the first thing to see) and is not drawn.
            const QString text = g == SeriesGap::None         ? (std::isnan(v) ? QStringLiteral("nan") : QString::number(v, 'g', 5))
                                 : g == SeriesGap::Absent     ? tr("absent")
                                 : g == SeriesGap::Unreadable ? tr("unreadable")
                                                              : tr("not comparable");
            auto *item = new QStandardItem(text);
            if (g != SeriesGap::None)
                item->setToolTip(QString::fromStdString(seriesGapText(g, fromFirst)));
            item->setData(g != SeriesGap::None ? -1.0 : std::isfinite(v) ? v : std::numeric_limits<double>::infinity(),
                          Qt::UserRole);
            item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            row << item;
        }
        partial += lacking ? 1 : 0;
        m_model->appendRow(row);
    }
    m_model->setSortRole(Qt::UserRole);
    QString summary = tr("%1 checkpoints, %2 tensors, %3%4")
                          .arg(s.points.size())
                          .arg(s.layers.size())
                          .arg(QString::fromStdString(s.ordering))
                          .arg(partial ? tr("; %n tensor(s) absent from some checkpoints", nullptr, partial) : QString());
    for (const auto &k : s.skipped)
        summary += tr("\nLeft out, cannot be read: %1").arg(QString::fromStdString(k.reason));
    m_summary->setText(summary);
    m_table->resizeColumnsToContents();
    // At first the chart draws the weights that drifted most from the first checkpoint over the
    // run (the largest drift any checkpoint has, not only the last's): floating tensors with a
    // finite drift to draw. A NaN or infinite drift has no point to draw (the table sorts it
    // first), and an integer counter (num_batches_tracked) would swamp the weights' scale.
    std::vector<int> order;
    std::vector<double> score(s.layers.size(), -1.0);
    for (std::size_t i = 0; i < s.layers.size(); ++i) {
        const SeriesLayer &l = s.layers[i];
        if (!l.floating)
            continue;
        for (std::size_t k = 0; k < l.driftFromFirst.size(); ++k)
            if (l.fromFirstGap[k] == SeriesGap::None && std::isfinite(l.driftFromFirst[k]))
                score[i] = std::max(score[i], l.driftFromFirst[k]);
        if (score[i] >= 0)
            order.push_back(static_cast<int>(i));
    }
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return score[x] > score[y]; });
    QItemSelection sel;
    for (std::size_t k = 0; k < order.size() && k < static_cast<std::size_t>(kPlotted); ++k)
        sel.select(m_model->index(order[k], 0), m_model->index(order[k], m_model->columnCount() - 1));
    m_table->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect);
    updateHint();
    plot();
}

void SeriesView::updateHint()
{
    if (!m_series || m_model->rowCount() == 0) {
        m_hint->clear();
        return;
    }
    const int selected = static_cast<int>(m_table->selectionModel()->selectedRows().size());
    m_hint->setText(tr("The chart draws the selected rows (%1 of %2; at first those that drifted most). Click a row to "
                       "draw it alone, Ctrl+click to add or remove one.")
                        .arg(selected)
                        .arg(m_model->rowCount()));
}

bool SeriesView::byEpoch() const
{
    if (!m_series || m_series->points.empty())
        return false;
    return std::all_of(m_series->points.begin(), m_series->points.end(), [](const SeriesPoint &p) { return p.epoch.has_value(); });
}

QString SeriesView::checkpointLabel(std::size_t k) const
{
    return byEpoch() ? tr("epoch %1").arg(*m_series->points[k].epoch) : tr("checkpoint %1").arg(k);
}

void SeriesView::changeEvent(QEvent *event)
{
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange && m_chart && m_nonFinite)
        plot();
}

void SeriesView::plot()
{
    auto *chart = newThemedChart(palette());
    if (m_series && !m_series->points.empty()) {
        const Series &s = *m_series;
        chart->setTitle(m_metric->currentText());
        auto *x = new QValueAxis;
        auto *y = new QValueAxis;
        const bool epochs = byEpoch();
        auto xOf = [&](std::size_t k) { return epochs ? static_cast<double>(*s.points[k].epoch) : static_cast<double>(k); };
        x->setRange(xOf(0), std::max(xOf(s.points.size() - 1), xOf(0) + 1));
        x->setTitleText(epochs ? tr("epoch") : tr("checkpoint"));
        x->setLabelFormat(QStringLiteral("%g"));
        if (s.points.size() <= 20) {  // whole epochs (or checkpoint numbers) as ticks
            x->setTickType(QValueAxis::TicksDynamic);
            x->setTickAnchor(xOf(0));
            x->setTickInterval(std::max(1.0, std::ceil((xOf(s.points.size() - 1) - xOf(0)) / 10.0)));
            x->setLabelFormat(QStringLiteral("%.0f"));
        }
        x->setLabelsBrush(palette().text());
        x->setTitleBrush(palette().text());
        y->setLabelFormat(QStringLiteral("%.3g"));
        y->setLabelsBrush(palette().text());
        chart->addAxis(x, Qt::AlignBottom);
        chart->addAxis(y, Qt::AlignLeft);
        double top = 0;
        int colour = 0;
        const QModelIndexList rows = m_table->selectionModel()->selectedRows();
        // The drift from the previous checkpoint has no figure at the first (there is no previous).
        const int firstColumn = metric() == Metric::DriftFromPrevious ? 2 : 1;
        for (const QModelIndex &r : rows) {
            // One line per tensor, broken where a figure is missing (absent, not comparable, NaN
            // or infinite) rather than drawn across the gap: a segment per run of points, all in
            // the tensor's colour, the legend naming it once. A lone point is drawn as a dot.
            QPen pen(kPalette[colour++ % std::size(kPalette)]);
            pen.setWidthF(2);
            QLineSeries *segment = nullptr;
            bool named = false;
            const auto close = [&] {
                if (!segment)
                    return;
                segment->setPen(pen);
                segment->setColor(pen.color());
                segment->setPointsVisible(segment->count() == 1);
                chart->addSeries(segment);
                segment->attachAxis(x);
                segment->attachAxis(y);
                if (named)
                    for (QLegendMarker *m : chart->legend()->markers(segment))
                        m->setVisible(false);
                named = true;
                segment = nullptr;
            };
            for (int c = firstColumn; c < m_model->columnCount(); ++c) {
                const double v = m_model->index(r.row(), c).data(Qt::UserRole).toDouble();
                if (v >= 0 && std::isfinite(v)) {
                    if (!segment) {
                        segment = new QLineSeries;
                        segment->setName(r.data().toString());
                    }
                    segment->append(xOf(static_cast<std::size_t>(c - 1)), v);
                    top = std::max(top, v);
                } else {
                    close();
                }
            }
            close();
        }
        y->setRange(0, top > 0 ? top * 1.05 : 1);

        // Each drawn tensor that holds NaN or Inf values somewhere, in the words of `ckpt series`
        // ("NaN or Inf values at checkpoint 2 (3 NaN)"), at the checkpoints as the axis names them.
        QStringList notes;
        for (const QModelIndex &r : rows) {
            const int layer = m_model->index(r.row(), 0).data(kLayerRole).toInt();
            if (layer < 0 || static_cast<std::size_t>(layer) >= s.layers.size())
                continue;
            const SeriesLayer &l = s.layers[static_cast<std::size_t>(layer)];
            QStringList at;
            int more = 0;
            for (std::size_t k = 0; k < l.nanCount.size() && k < s.points.size(); ++k) {
                if (!l.nanCount[k] && !l.infCount[k])
                    continue;
                if (at.size() == kNonFiniteListed) {
                    ++more;
                    continue;
                }
                QStringList counts;
                if (l.nanCount[k])
                    counts << tr("%1 NaN").arg(l.nanCount[k]);
                if (l.infCount[k])
                    counts << tr("%1 Inf").arg(l.infCount[k]);
                at << tr("%1 (%2)").arg(checkpointLabel(k), counts.join(QStringLiteral(", ")));
            }
            if (at.isEmpty())
                continue;
            QString line = tr("%1: NaN or Inf values at %2").arg(QString::fromStdString(l.name), at.join(QStringLiteral(", ")));
            if (more)
                line += tr(" and %n more checkpoint(s)", nullptr, more);
            notes << line;
        }
        if (!notes.isEmpty())
            notes.prepend(tr("A line breaks where its tensor holds NaN or Inf values: torch's norm and drifts are "
                             "nan or inf there, and have no point to draw."));
        m_nonFinite->setText(notes.join(QLatin1Char('\n')));
        m_nonFinite->setVisible(!notes.isEmpty());
    } else {
        m_nonFinite->clear();
        m_nonFinite->hide();
    }
    QChart *old = m_chart->chart();
    m_chart->setChart(chart);
    delete old;
}

} // namespace ckpt
