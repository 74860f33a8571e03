#include "tensordetailview.h"

#include "dialogfolders.h"
#include "jobpool.h"
#include "histogramchart.h"

#include "atomicwrite.h"
#include "computeloader.h"
#include "document.h"
#include "mappedfile.h"
#include "tensorref.h"
#include "tensortablemodel.h"
#include "valuetext.h"

#include <QAreaSeries>
#include <QChart>
#include <QChartView>
#include <QCheckBox>
#include <QDir>
#include <QEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QPromise>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QPushButton>
#include <QRegularExpression>
#include <QSettings>
#include <QSpinBox>
#include <QStringList>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>
#include <QValueAxis>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <climits>
#include <cmath>
#include <span>

namespace ckpt {

namespace {


QString number(double v)
{
    if (std::isnan(v))
        return QStringLiteral("\u2013");
    return valuetext::elementText(v, DType::Float64);
}

QString layoutText(const TensorRef &t)
{
    switch (t.layout) {
    case TensorRef::Layout::SparseCoo:
        return QStringLiteral("sparse COO");
    case TensorRef::Layout::SparseCsr:
        return QStringLiteral("sparse CSR");
    case TensorRef::Layout::Meta:
        return QStringLiteral("meta (shape only)");
    case TensorRef::Layout::Strided:
        break;
    }
    return t.isContiguous() ? QStringLiteral("strided, contiguous") : QStringLiteral("strided, not contiguous");
}

// The other tensors of the document that read the same storage record (`self` excluded, under
// whatever name it is listed).
QStringList sharers(const Document &doc, const TensorRef *self)
{
    QStringList out;
    if (!self->storage)
        return out;
    for (const auto &nt : doc.tensors) {
        if (!nt.value || !nt.value->tensorRef() || nt.value->tensorRef().get() == self)
            continue;
        if (nt.ref().storage == self->storage)
            out << QString::fromStdString(nt.name);
    }
    out.removeDuplicates();
    return out;
}

} // namespace

// What the background job found for one tensor.
struct TensorDetailView::Summary {
    std::uint64_t generation = 0;
    std::optional<TensorStats> stats;
    QString statsError;
    std::optional<Histogram> histogram;
    QString histogramError;
};

TensorDetailView::TensorDetailView(QWidget *parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("tensorDetail"));
    m_provider = []() -> ComputeApi & { return ComputeLoader::api(); };
    m_values = new TensorValuesModel(this);
    m_values->setComputeProvider(m_provider);
    connect(m_values, &TensorValuesModel::fetchFailed, this, [this] { updateMessage(); });

    m_title = new QLabel(this);
    m_title->setObjectName(QStringLiteral("detailTitle"));
    QFont tf = m_title->font();
    tf.setBold(true);
    m_title->setFont(tf);
    m_title->setTextFormat(Qt::PlainText);  // a tensor name from the file is never markup
    m_title->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_info = new QLabel(this);
    m_info->setObjectName(QStringLiteral("detailInfo"));
    m_info->setTextFormat(Qt::RichText);  // names and keys from the file in it are escaped
    m_info->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_info->setWordWrap(true);
    m_info->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_exportNpy = new QPushButton(tr("Export .npy\u2026"), this);
    m_exportNpy->setObjectName(QStringLiteral("exportNpy"));
    m_exportCsv = new QPushButton(tr("Export .csv\u2026"), this);
    m_exportCsv->setObjectName(QStringLiteral("exportCsv"));
    connect(m_exportNpy, &QPushButton::clicked, this, [this] { askExport(ComputeApi::ExportFormat::Npy); });
    connect(m_exportCsv, &QPushButton::clicked, this, [this] { askExport(ComputeApi::ExportFormat::Csv); });
    m_message = new QLabel(this);
    m_message->setObjectName(QStringLiteral("detailMessage"));
    m_message->setWordWrap(true);
    m_message->setTextFormat(Qt::PlainText);  // errors quote names and text from the file
    m_message->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_message->hide();

    // Values: the slice bar above the grid.
    auto *valuesPane = new QWidget(this);
    m_sliceBar = new QWidget(valuesPane);
    m_sliceLayout = new QHBoxLayout(m_sliceBar);
    m_sliceLayout->setContentsMargins(0, 0, 0, 0);
    m_rawBox = new QCheckBox(tr("Stored integers"), valuesPane);
    m_rawBox->setObjectName(QStringLiteral("rawValues"));
    m_rawBox->setToolTip(tr("Quantized tensors: show the stored integers instead of the real values"));
    connect(m_rawBox, &QCheckBox::toggled, m_values, &TensorValuesModel::setRawValues);
    m_grid = new QTableView(valuesPane);
    m_grid->setObjectName(QStringLiteral("valuesGrid"));
    m_grid->setModel(m_values);
    m_grid->setWordWrap(false);
    m_grid->setSelectionMode(QAbstractItemView::ContiguousSelection);
    // Fixed sizes: a 100M-row grid must not measure its rows or columns.
    m_grid->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    m_grid->verticalHeader()->setDefaultSectionSize(m_grid->fontMetrics().height() + 6);
    m_grid->horizontalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    m_grid->horizontalHeader()->setDefaultSectionSize(
        m_grid->fontMetrics().horizontalAdvance(QStringLiteral("-0.0000000e-00")) + 4);
    auto *valuesLayout = new QVBoxLayout(valuesPane);
    valuesLayout->setContentsMargins(0, 0, 0, 0);
    auto *valuesBar = new QHBoxLayout;
    valuesBar->addWidget(m_sliceBar);
    valuesBar->addStretch(1);
    valuesBar->addWidget(m_rawBox);
    valuesLayout->addLayout(valuesBar);
    valuesLayout->addWidget(m_grid, 1);

    // Statistics and histogram.
    auto *chartPane = new QWidget(this);
    m_statsLabel = new QLabel(chartPane);
    m_statsLabel->setObjectName(QStringLiteral("detailStatistics"));
    m_statsLabel->setTextFormat(Qt::RichText);  // a table; every figure in it is escaped
    m_statsLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_statsLabel->setWordWrap(true);
    m_chartView = new HistogramChart(chartPane);
    m_chartView->setObjectName(QStringLiteral("histogram"));
    m_logCounts = new QCheckBox(tr("Log counts"), chartPane);
    m_logCounts->setObjectName(QStringLiteral("logCounts"));
    m_logCounts->setChecked(QSettings().value(QStringLiteral("tensorDetail/logCounts"), false).toBool());
    connect(m_logCounts, &QCheckBox::toggled, this, [this](bool on) {
        QSettings().setValue(QStringLiteral("tensorDetail/logCounts"), on);
        showHistogram();
    });
    auto *chartLayout = new QVBoxLayout(chartPane);
    chartLayout->setContentsMargins(0, 0, 0, 0);
    chartLayout->addWidget(m_statsLabel);
    auto *chartBar = new QHBoxLayout;
    auto *histCaption = new QLabel(tr("Histogram (%1 bins, finite values)").arg(kHistogramBins), chartPane);
    chartBar->addWidget(histCaption);
    chartBar->addStretch(1);
    chartBar->addWidget(m_logCounts);
    chartLayout->addLayout(chartBar);
    chartLayout->addWidget(m_chartView, 1);

    m_splitter = new QSplitter(Qt::Horizontal, this);
    m_splitter->setObjectName(QStringLiteral("detailSplitter"));
    m_splitter->setChildrenCollapsible(false);
    m_splitter->addWidget(valuesPane);
    m_splitter->addWidget(chartPane);
    m_splitter->setStretchFactor(0, 3);
    m_splitter->setStretchFactor(1, 2);

    m_body = new QWidget(this);
    auto *header = new QHBoxLayout;
    header->addWidget(m_title);
    header->addStretch(1);
    header->addWidget(m_exportNpy);
    header->addWidget(m_exportCsv);
    auto *bodyLayout = new QVBoxLayout(m_body);
    bodyLayout->setContentsMargins(0, 0, 0, 0);
    bodyLayout->setSpacing(3);
    bodyLayout->addLayout(header);
    bodyLayout->addWidget(m_info);
    bodyLayout->addWidget(m_message);
    bodyLayout->addWidget(m_splitter, 1);

    m_empty = new QLabel(tr("Select a tensor in the table or the tree to see its values and histogram."), this);
    m_empty->setObjectName(QStringLiteral("detailEmpty"));
    m_empty->setAlignment(Qt::AlignCenter);
    QPalette pal = m_empty->palette();
    pal.setColor(QPalette::WindowText, pal.color(QPalette::PlaceholderText));
    m_empty->setPalette(pal);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 4, 6, 4);
    layout->addWidget(m_empty, 1);
    layout->addWidget(m_body, 1);
    m_body->hide();
}

TensorDetailView::~TensorDetailView()
{
    abandonJob(m_summaryJob);  // its figures are for nobody now
}

void TensorDetailView::setComputeProvider(TensorValuesModel::ComputeProvider provider)
{
    m_provider = std::move(provider);
    m_values->setComputeProvider(m_provider);
}

void TensorDetailView::setTensor(std::shared_ptr<const Document> doc, const QString &name, const TensorRef *tensor,
                                 const TensorStats *known)
{
    ++m_generation; // whatever is still being computed is for another tensor
    abandonJob(m_summaryJob);  // and stops, queued or within a chunk of its tensor
    m_summaryJob = nullptr;
    m_doc = tensor ? std::move(doc) : nullptr;
    m_tensor = m_doc ? std::make_shared<const TensorRef>(*tensor) : nullptr;
    m_source = m_doc ? tensor : nullptr;
    m_name = m_doc ? name : QString();
    m_stats.reset();
    m_statsError.clear();
    m_histogram.reset();
    m_histogramError.clear();
    m_exportMessage.clear();
    m_values->setTensor(m_doc, m_tensor.get());
    m_rawBox->blockSignals(true);
    m_rawBox->setChecked(false);
    m_rawBox->blockSignals(false);
    m_empty->setVisible(!m_tensor);
    m_body->setVisible(m_tensor != nullptr);
    if (!m_tensor) {
        showHistogram();
        return;
    }
    if (known)
        m_stats = *known;
    m_rawBox->setVisible(m_tensor->quantization != nullptr);
    // Columns as wide as the widest text this dtype gives (fixed: a huge grid is never measured).
    const QString widest =
        dtypeIsIntegral(m_tensor->dtype)
            ? valuetext::widestIntegerText(m_tensor->dtype)
            : valuetext::elementText(-1.23456789012345e-100,
                                     m_tensor->dtype == DType::Complex128 ? DType::Float64 : m_tensor->dtype);
    const QString sample = m_tensor->dtype == DType::Complex64 || m_tensor->dtype == DType::Complex128
                               ? QStringLiteral("(%1%1j)").arg(widest)
                               : widest;
    m_grid->horizontalHeader()->setDefaultSectionSize(
        std::max(m_grid->fontMetrics().horizontalAdvance(sample),
                 m_grid->fontMetrics().horizontalAdvance(QStringLiteral("-0.0000"))) +
        14);
    const bool hasValues = m_values->noValuesReason().isEmpty();
    m_exportNpy->setEnabled(hasValues);
    m_exportCsv->setEnabled(hasValues);
    showHeader();
    rebuildSliceBar();
    m_jobRunning = false;
    if (hasValues) {
        startSummaryJob(!known);
    } else {
        m_statsError = m_values->noValuesReason();
        m_histogramError = m_statsError;
    }
    showStatistics();
    showHistogram();
    updateMessage();
}

void TensorDetailView::setStatistics(const TensorStats &stats)
{
    if (!m_tensor)
        return;
    m_stats = stats;
    m_statsError.clear();
    showStatistics();
}

void TensorDetailView::showHeader()
{
    const TensorRef &t = *m_tensor;
    m_title->setText(m_name);
    QStringList lines;
    QString dtype = valuetext::dtypeText(t.dtype);
    QStringList first{tr("<b>%1</b>").arg(dtype.toHtmlEscaped()),
                      tr("shape %1").arg(QString::fromStdString(shapeText(t.shape))),
                      t.numel() < 0 ? tr("overflowing elements") : valuetext::counted(t.numel(), tr("element"), tr("elements")),
                      tr("%1 (%2 bytes)").arg(valuetext::bytes(t.nbytes()), valuetext::count(t.nbytes())),
                      tr("device %1").arg(QString::fromStdString(t.device()).toHtmlEscaped())};
    if (t.requiresGrad)
        first << tr("requires grad");
    if (t.isParameter)
        first << tr("Parameter");
    lines << first.join(QStringLiteral(" \u00b7 "));
    QStringList second{tr("layout %1").arg(layoutText(t)),
                       tr("strides %1").arg(QString::fromStdString(shapeText(t.strides))),
                       tr("offset %1").arg(t.storageOffset)};
    if (t.storage) {
        QString s = tr("storage record %1").arg(QString::fromStdString(t.storage->key).toHtmlEscaped());
        if (t.storage->resolved)
            s += tr(" (%1)").arg(valuetext::bytes(static_cast<qint64>(t.storage->byteSize)));
        second << s;
    }
    if (t.quantization) {
        const auto &q = *t.quantization;
        QString s = tr("quantized %1").arg(QString::fromStdString(q.scheme).toHtmlEscaped());
        if (!q.scales)
            s += tr(", scale %1, zero point %2").arg(number(q.scale)).arg(q.zeroPoint);
        else
            s += tr(", axis %1").arg(q.axis);
        second << s;
    }
    lines << second.join(QStringLiteral(" \u00b7 "));
    if (m_doc) {
        const QStringList others = sharers(*m_doc, m_source);
        if (!others.isEmpty()) {
            QStringList shown = others.mid(0, 6);
            for (QString &o : shown)
                o = o.toHtmlEscaped();
            QString s = tr("shares its storage with %1").arg(shown.join(QStringLiteral(", ")));
            if (others.size() > shown.size())
                s += tr(" and %1 more").arg(others.size() - shown.size());
            lines << s;
        }
    }
    if (const QString problem = valuetext::tensorProblem(t); !problem.isEmpty())
        lines << QStringLiteral("<span style='color:#b3261e'>%1</span>")
                     .arg(tr("Problem: %1").arg(problem).toHtmlEscaped());
    m_info->setText(lines.join(QStringLiteral("<br>")));
}

QStringList TensorDetailView::statisticsNotes(const TensorStats &s, DType dtype)
{
    QStringList notes;
    if (s.nanCount > 0)
        notes << (s.nanCount == 1 ? tr("torch gives nan: the tensor holds a NaN value")
                                  : tr("torch gives nan: the tensor holds %1 NaN values").arg(valuetext::count(s.nanCount)));
    if (dtypeIsComplex(dtype))
        notes << tr("complex: over real and imaginary parts together");
    return notes;
}

void TensorDetailView::showStatistics()
{
    if (!m_tensor) {
        m_statsLabel->clear();
        return;
    }
    if (!m_statsError.isEmpty()) {
        m_statsLabel->setText(tr("No statistics: %1").arg(m_statsError.toHtmlEscaped()));
        return;
    }
    if (!m_stats) {
        m_statsLabel->setText(tr("Computing statistics\u2026"));
        return;
    }
    const TensorStats &s = *m_stats;
    const double zeros = s.count > 0 ? static_cast<double>(s.zeroCount) / static_cast<double>(s.count) : std::nan("");
    // Figures are plain text ("< 0.1 %" starts with a '<'), escaped here; `avHtml` is markup already.
    auto row = [](const QString &a, const QString &avHtml, const QString &b, const QString &bv) {
        return QStringLiteral("<tr><td>%1</td><td align=right>&nbsp;%2</td><td>&nbsp;&nbsp;&nbsp;%3</td>"
                              "<td align=right>&nbsp;%4</td></tr>")
            .arg(a.toHtmlEscaped(), avHtml, b.toHtmlEscaped(), bv.toHtmlEscaped());
    };
    auto html = [](const QString &plain) { return plain.toHtmlEscaped(); };
    // torch's figures first (TensorStats::torch: nan where the tensor holds a NaN, as `ckpt show`
    // writes them); a dash only for a tensor without elements; infinities "inf", "-inf".
    const StatFigures torch = s.torch();
    auto figure = [&s](double v) { return valuetext::torchStatisticText(v, s, 10); };
    auto extreme = [&s, &figure](double v, bool max) {  // an integer tensor's exactly
        const QString exact = valuetext::exactExtremeText(s, max);
        return exact.isEmpty() ? figure(v) : exact;
    };
    QString nonFinite = tr("%1 / %2").arg(valuetext::count(s.nanCount), valuetext::count(s.infCount)).toHtmlEscaped();
    if (s.nanCount > 0 || s.infCount > 0)
        nonFinite = QStringLiteral("<span style='color:#b3261e'><b>%1</b></span>").arg(nonFinite);
    QString text = QStringLiteral("<table cellspacing=0 cellpadding=0>") +
                   row(tr("min"), html(extreme(torch.min, false)), tr("max"), extreme(torch.max, true)) +
                   row(tr("mean"), html(figure(torch.mean)), tr("std"), figure(torch.std)) +
                   row(tr("L2"), html(figure(torch.l2)), tr("zeros"), valuetext::percent(zeros)) +
                   row(tr("NaN / Inf"), nonFinite, QString(), QString()) + QStringLiteral("</table>");
    // Where torch's are nan for a NaN, the figures over the other values, labelled apart (as `ckpt
    // show` writes them "without the NaN values"): a dash where no value is left.
    if (s.nanCount > 0) {
        const StatFigures w = s.withoutNan();
        auto other = [&s](double v) { return valuetext::statisticText(v, s, 10); };
        text += QStringLiteral("<br><b>%1</b>").arg(
                    (s.nanCount == 1 ? tr("Without the NaN value:")
                                     : tr("Without the %1 NaN values:").arg(valuetext::count(s.nanCount)))
                        .toHtmlEscaped()) +
                QStringLiteral("<table cellspacing=0 cellpadding=0 class='withoutNan'>") +
                row(tr("min"), html(other(w.min)), tr("max"), other(w.max)) +
                row(tr("mean"), html(other(w.mean)), tr("std"), other(w.std)) +
                row(tr("L2"), html(other(w.l2)), QString(), QString()) + QStringLiteral("</table>");
    }
    // What else the figures are over: torch's min/max of a complex tensor is an error, so say what
    // these are.
    for (const QString &note : statisticsNotes(s, m_tensor->dtype))
        text += QStringLiteral("<br><i>%1</i>").arg(note.toHtmlEscaped());
    m_statsLabel->setToolTip(TensorTableModel::statisticsNote());
    m_statsLabel->setText(text);
}

void TensorDetailView::startSummaryJob(bool needStats)
{
    m_jobRunning = true;
    auto *watcher = new QFutureWatcher<Summary>(this);
    m_summaryJob = watcher;
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher] {
        watcher->deleteLater();
        if (m_summaryJob == watcher)
            m_summaryJob = nullptr;
        if (watcher->future().resultCount() == 0)
            return; // cancelled
        const Summary s = watcher->result();
        if (s.generation != m_generation)
            return; // stale: another tensor is shown now
        m_jobRunning = false;
        if (!m_stats) {
            m_stats = s.stats;
            m_statsError = s.statsError;
        }
        m_histogram = s.histogram;
        m_histogramError = s.histogramError;
        showStatistics();
        showHistogram();
        Q_EMIT statisticsReady();
        Q_EMIT histogramReady();
    });
    watcher->setFuture(QtConcurrent::run(jobPool(),
        [provider = m_provider, doc = m_doc, tensor = m_tensor, generation = m_generation,
         needStats](QPromise<Summary> &promise) {
            // Asked between chunks: a job for a tensor no longer shown stops within one.
            const CancelCheck cancelled = [&promise] { return promise.isCanceled(); };
            Summary out;
            out.generation = generation;
            ComputeApi *api = nullptr;
            try {
                api = &provider();
            } catch (const std::exception &e) {
                out.statsError = out.histogramError = QString::fromStdString(e.what());
                promise.addResult(std::move(out));
                return;
            }
            if (needStats) {
                try {
                    out.stats = api->statistics(*tensor, cancelled);
                } catch (const std::exception &e) {
                    out.statsError = QString::fromStdString(e.what());
                }
            }
            if (promise.isCanceled())
                return;
            try {
                out.histogram = api->histogram(*tensor, kHistogramBins, cancelled);
            } catch (const std::exception &e) {
                out.histogramError = QString::fromStdString(e.what());
            }
            if (promise.isCanceled())
                return;
            (void)doc; // keeps the mapped bytes alive while the job reads them
            promise.addResult(std::move(out));
        }));
}

void TensorDetailView::showHistogram()
{
    m_chartView->setLogCounts(m_logCounts->isChecked());
    if (!m_tensor)
        m_chartView->setMessage({});
    else if (!m_histogram)
        m_chartView->setMessage(m_histogramError.isEmpty() ? tr("Computing\u2026") : tr("No histogram"));
    else
        m_chartView->setCurves({{QStringLiteral("counts"), *m_histogram, QColor()}});  // the highlight colour
}

void TensorDetailView::changeEvent(QEvent *event)
{
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange && m_chartView)
        showHistogram();
}

void TensorDetailView::rebuildSliceBar()
{
    qDeleteAll(m_sliceSpins);
    m_sliceSpins.clear();
    while (QLayoutItem *item = m_sliceLayout->takeAt(0)) {
        delete item->widget();
        delete item;
    }
    const int lead = m_values->leadingDimensions();
    const auto &shape = m_values->shape();
    if (lead == 0) {
        QString what;
        if (shape.empty())
            what = tr("A scalar");
        else if (shape.size() == 1 && m_values->rowsPerLine() > 1)
            what = tr("%1, %2 per line").arg(valuetext::counted(shape[0], tr("value"), tr("values"))).arg(m_values->rowsPerLine());
        else if (shape.size() == 1)
            what = shape[0] == 1 ? tr("1 value") : tr("%1 values, one per row").arg(valuetext::count(shape[0]));
        else if (m_values->rowsPerLine() > 1)
            what = tr("Rows: dim 0 (%1 to a line), columns: dim 1").arg(m_values->rowsPerLine());
        else
            what = tr("Rows: dim 0, columns: dim 1");
        m_sliceLayout->addWidget(new QLabel(what, m_sliceBar));
        return;
    }
    m_sliceLayout->addWidget(new QLabel(tr("Slice"), m_sliceBar));
    for (int d = 0; d < lead; ++d) {
        auto *label = new QLabel(tr("dim %1").arg(d), m_sliceBar);
        auto *spin = new QSpinBox(m_sliceBar);
        spin->setObjectName(QStringLiteral("slice%1").arg(d));
        spin->setRange(0,
                       static_cast<int>(std::clamp<std::int64_t>(shape[static_cast<std::size_t>(d)] - 1, 0, INT_MAX)));
        spin->setToolTip(tr("Index in dimension %1 (size %2)").arg(d).arg(shape[static_cast<std::size_t>(d)]));
        connect(spin, &QSpinBox::valueChanged, m_values, [this, d](int v) { m_values->setSliceIndex(d, v); });
        m_sliceLayout->addWidget(label);
        m_sliceLayout->addWidget(spin);
        m_sliceSpins << spin;
    }
    m_sliceLayout->addWidget(
        new QLabel(tr("\u2192 rows: dim %1, columns: dim %2").arg(lead).arg(lead + 1), m_sliceBar));
}

void TensorDetailView::askExport(ComputeApi::ExportFormat format)
{
    if (!m_tensor)
        return;
    const bool npy = format == ComputeApi::ExportFormat::Npy;
    QString base = m_name;
    base.replace(QRegularExpression(QStringLiteral("[^A-Za-z0-9._-]")), QStringLiteral("_"));
    // The last folder written to, else the file's own: never the process's working folder.
    const QString dir = dialogfolders::outputStart(m_doc ? QString::fromStdString(m_doc->path) : QString());
    const QString suggested = QDir(dir).filePath(base + (npy ? QStringLiteral(".npy") : QStringLiteral(".csv")));
    const QString path =
        QFileDialog::getSaveFileName(this, npy ? tr("Export as .npy") : tr("Export as .csv"), suggested,
                                     npy ? tr("NumPy arrays (*.npy)") : tr("Comma-separated values (*.csv)"));
    if (path.isEmpty())
        return;
    dialogfolders::rememberOutput(QFileInfo(path).absolutePath());
    exportTo(path, format);
}

void TensorDetailView::exportTo(const QString &path, ComputeApi::ExportFormat format)
{
    if (!m_tensor)
        return;
    m_exportNpy->setEnabled(false);
    m_exportCsv->setEnabled(false);
    setMessage(tr("Writing %1\u2026").arg(QFileInfo(path).fileName()), false);
    using Result = std::pair<bool, QString>;
    auto *watcher = new QFutureWatcher<Result>(this);
    const std::uint64_t generation = m_generation;
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, generation] {
        watcher->deleteLater();
        const Result r = watcher->result();
        if (generation == m_generation) {
            m_exportNpy->setEnabled(true);
            m_exportCsv->setEnabled(true);
            setMessage(r.second, !r.first);
        }
        Q_EMIT exportFinished(r.first, r.second);
    });
    std::vector<std::string> inputs;
    inputs.push_back(m_doc->path);
    for (const auto &f : m_doc->extraFiles)
        if (f)
            inputs.push_back(f->path());
    if (!m_doc->sidecarPath.empty())
        inputs.push_back(m_doc->sidecarPath);
    watcher->setFuture(QtConcurrent::run(jobPool(), [provider = m_provider, doc = m_doc, tensor = m_tensor, format, path, inputs,
                                          name = m_name]() -> Result {
        try {
            const std::string bytes = provider().exportBytes(*tensor, format);
            WriteOptions options;
            options.allowOverwrite(true); // the save dialog asked before replacing a file
            for (const auto &in : inputs)
                options.protect(in);
            writeFileAtomically(QFile::encodeName(path).toStdString(),
                                std::span(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()), options);
            (void)doc;
            return {true, QObject::tr("%1 written to %2 (%3)")
                              .arg(name, QDir::toNativeSeparators(path),
                                   valuetext::bytes(static_cast<qint64>(bytes.size())))};
        } catch (const std::exception &e) {
            return {false, QObject::tr("Export failed: %1").arg(QString::fromStdString(e.what()))};
        }
    }));
}

void TensorDetailView::setMessage(const QString &text, bool error)
{
    m_exportMessage = text;
    m_exportError = error;
    updateMessage();
}

void TensorDetailView::updateMessage()
{
    QStringList errors;
    if (!m_values->noValuesReason().isEmpty())
        errors << m_values->noValuesReason();
    else if (!m_values->errorText().isEmpty())
        errors << tr("Values cannot be read: %1").arg(m_values->errorText());
    if (!m_exportMessage.isEmpty() && m_exportError)
        errors << m_exportMessage;
    QString text = errors.join(QLatin1Char('\n'));
    if (!m_exportMessage.isEmpty() && !m_exportError)
        text = text.isEmpty() ? m_exportMessage : text + QLatin1Char('\n') + m_exportMessage;
    m_message->setStyleSheet(errors.isEmpty() ? QStringLiteral("QLabel { color: #1b6e20; }")
                                              : QStringLiteral("QLabel { color: #b3261e; }"));
    m_message->setText(text);
    m_message->setVisible(!text.isEmpty());
    m_grid->setVisible(m_values->noValuesReason().isEmpty());
}

QString TensorDetailView::messageText() const
{
    return m_message->text();
}

} // namespace ckpt
