#include "metadataview.h"

#include "chartstyle.h"
#include "checkpointfolder.h"
#include "document.h"
#include "metadata.h"
#include "pythonrepr.h"
#include "valueitems.h"
#include "valuetext.h"
#include "valuetree.h"

#include <QChart>
#include <QChartView>
#include <QDir>
#include <QEvent>
#include <QFontMetrics>
#include <QFileInfo>
#include <QLegend>
#include <QLegendMarker>
#include <QLineSeries>
#include <QScatterSeries>
#include <QSplitter>
#include <QValueAxis>
#include <QHeaderView>
#include <QStandardItem>
#include <QStandardItemModel>
#include <QTreeView>
#include <QVBoxLayout>

#include <algorithm>
#include <cctype>
#include <optional>
#include <cmath>

namespace ckpt {

namespace {

// How much of a value the Value column shows inline (elided) and its tooltip whole.
constexpr int kInlineChars = 160;
constexpr std::size_t kTooltipChars = 3000;

// A container or object whose items matter more than their count (class names, mean/std, a
// Namespace of arguments): shown inline as Python prints it, as `ckpt meta` does, instead of "4
// items" or "argparse.Namespace". Tensors keep their own preview (tensor(72.5000)).
bool showsAsRepr(const Value &v)
{
    if (v.isTensor())
        return false;
    return v.isContainer() || v.kind() == Value::Kind::Object;
}

// Sets the row's Value cell to the value's Python repr, elided, with the whole text as its tooltip.
void showRepr(QList<QStandardItem *> &row, const ValuePtr &value)
{
    if (!value || !showsAsRepr(*value) || row.size() < 3)
        return;
    ReprLimits limits;
    limits.maxChars = kTooltipChars;
    const QString whole = QString::fromStdString(pythonRepr(*value, limits));
    if (whole.isEmpty())
        return;
    row[2]->setText(whole.size() > kInlineChars ? whole.left(kInlineChars - 1) + QStringLiteral("\u2026") : whole);
    row[2]->setToolTip(whole.size() > kInlineChars ? whole : QString());
}

// Where the field was found, in words: the Type column of "At a glance".
QString fieldSource(const KnownField &f)
{
    const QString key = QString::fromStdString(f.key);
    if (f.fromSidecar)
        return MetadataView::tr("saved as %1 in the sidecar").arg(key);
    if (f.fromFormatMetadata)
        return MetadataView::tr("saved as %1 in __metadata__").arg(key);
    return MetadataView::tr("saved as %1").arg(key);
}

} // namespace

MetadataView::MetadataView(QWidget *parent) : QWidget(parent)
{
    m_model = new QStandardItemModel(this);
    m_view = new QTreeView(this);
    m_view->setObjectName(QStringLiteral("metadataTree"));
    m_view->setModel(m_model);
    m_view->setUniformRowHeights(true);
    m_view->setAlternatingRowColors(true);
    m_view->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_view->setAllColumnsShowFocus(true);
    m_view->header()->setStretchLastSection(true);
    m_lossChart = new QChartView(this);
    m_lossChart->setObjectName(QStringLiteral("lossChart"));
    m_lossChart->setRenderHint(QPainter::Antialiasing);
    m_lossChart->setMinimumHeight(160);
    m_lossChart->hide();
    auto *split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_view);
    split->addWidget(m_lossChart);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    split->setChildrenCollapsible(false);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 0);
    layout->addWidget(split);
}

QString MetadataView::folderTitle() { return tr("Folder"); }
QString MetadataView::trainingTitle() { return tr("Training state"); }

void MetadataView::changeEvent(QEvent *event)
{
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange && m_lossChart && m_lossChart->isVisible())
        plotLosses();
}

namespace {

// A list of losses a training script saved beside the weights (`train_losses: [2.3, 1.9, …]`):
// its numbers, by position; nothing when it is not a list of at least two numbers.
std::optional<std::vector<double>> numberList(const ValuePtr &v)
{
    constexpr std::size_t kMaxPoints = 1'000'000;  // a chart of more says nothing more
    if (!v || !v->isSequence() || v->items().size() < 2 || v->items().size() > kMaxPoints)
        return std::nullopt;
    std::vector<double> out;
    out.reserve(v->items().size());
    for (const auto &item : v->items()) {
        if (!item)
            return std::nullopt;
        if (item->kind() == Value::Kind::Float)
            out.push_back(item->asFloat());
        else if (item->isInt())
            out.push_back(static_cast<double>(item->asInt()));
        else
            return std::nullopt;
    }
    return out;
}

bool namesALoss(const std::string &key)
{
    std::string lower = key;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    return lower.find("loss") != std::string::npos;
}

} // namespace

// The loss charts' axes: whole numbers along x (steps, positions), the loss along y, in the
// window's text colour.
std::pair<QValueAxis *, QValueAxis *> MetadataView::lossAxes(QChart *chart, const QString &xTitle) const
{
    auto *x = new QValueAxis;
    auto *y = new QValueAxis;
    x->setTitleText(xTitle);
    x->setLabelFormat(QStringLiteral("%.0f"));
    y->setLabelFormat(QStringLiteral("%.3g"));
    for (auto *axis : {x, y}) {
        axis->setLabelsBrush(palette().text());
        axis->setTitleBrush(palette().text());
    }
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    return {x, y};
}

// Lists of losses at the root of the file or one dict down (`history: {train_loss: [...]}`), by
// name, at most 8 of them.
std::vector<MetadataView::LossList> MetadataView::lossLists(const Document &doc)
{
    std::vector<LossList> out;
    if (!doc.root || !doc.root->isDict())
        return out;
    const auto visit = [&out](const ValuePtr &dict, const std::string &prefix, const auto &self, int depth) -> void {
        for (const auto &e : dict->entries()) {
            if (!e.key || !e.key->isString() || out.size() >= 8)
                continue;
            const std::string name = prefix + e.key->text();
            if (namesALoss(e.key->text()))
                if (auto values = numberList(e.value))
                    out.push_back({QString::fromStdString(name), std::move(*values)});
            if (depth == 0 && e.value && e.value->isDict())
                self(e.value, name + "/", self, depth + 1);
        }
    };
    visit(doc.root, {}, visit, 0);
    return out;
}

// Training loss and evaluation loss by step, in the window's colours; or the loss lists a
// checkpoint holds, by their position in the list (one an epoch, as such scripts append them).
void MetadataView::plotLosses()
{
    const TrainerState *state = m_doc && m_doc->folder && m_doc->folder->trainerState ? &*m_doc->folder->trainerState
                                                                                       : nullptr;
    auto *chart = newThemedChart(palette());
    chart->setTitle(tr("Loss by step (trainer_state.json)"));
    if (!state && m_doc) {
        plotLossLists(chart, lossLists(*m_doc));
    } else if (state) {
        const auto [x, y] = lossAxes(chart, tr("step"));
        double lo = INFINITY, hi = -INFINITY, first = INFINITY, last = -INFINITY;
        auto *train = new QLineSeries;
        train->setName(tr("training loss"));
        auto *eval = new QLineSeries;
        eval->setName(tr("eval loss"));
        for (const auto &p : state->log) {
            const double step = static_cast<double>(p.step);
            for (const auto &[series, value] : {std::pair{train, p.loss}, std::pair{eval, p.evalLoss}})
                if (value && std::isfinite(*value)) {
                    series->append(step, *value);
                    lo = std::min(lo, *value);
                    hi = std::max(hi, *value);
                    first = std::min(first, step);
                    last = std::max(last, step);
                }
        }
        for (auto *series : {train, eval}) {
            if (series->count() == 0) {
                delete series;
                continue;
            }
            QPen pen(series == train ? QColor(0x1f, 0x77, 0xb4) : QColor(0xff, 0x7f, 0x0e));
            pen.setWidthF(2);
            series->setPen(pen);
            chart->addSeries(series);
            series->attachAxis(x);
            series->attachAxis(y);
            if (series->count() == 1) {  // a single point draws no line: mark it
                auto *dot = new QScatterSeries;
                dot->setColor(pen.color());
                dot->setMarkerSize(8);
                dot->append(series->at(0));
                chart->addSeries(dot);
                dot->attachAxis(x);
                dot->attachAxis(y);
                chart->legend()->markers(dot).value(0)->setVisible(false);
            }
        }
        if (std::isfinite(lo)) {
            const double pad = hi > lo ? (hi - lo) * 0.05 : std::max(std::abs(hi) * 0.05, 0.05);
            y->setRange(lo - pad, hi + pad);
            x->setRange(first, last > first ? last : first + 1);
        }
    }
    QChart *old = m_lossChart->chart();
    m_lossChart->setChart(chart);
    delete old;
}

void MetadataView::plotLossLists(QChart *chart, const std::vector<LossList> &lists)
{
    chart->setTitle(tr("Losses saved in the file, by position in each list"));
    const auto [x, y] = lossAxes(chart, tr("position in the list (1 = first; an epoch where one is appended per epoch)"));
    double lo = INFINITY, hi = -INFINITY;
    std::size_t longest = 0;
    static const QColor colours[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xff, 0x7f, 0x0e), QColor(0x2c, 0xa0, 0x2c),
                                     QColor(0xd6, 0x27, 0x28), QColor(0x94, 0x67, 0xbd), QColor(0x8c, 0x56, 0x4b),
                                     QColor(0xe3, 0x77, 0xc2), QColor(0x7f, 0x7f, 0x7f)};
    std::size_t k = 0;
    for (const auto &list : lists) {
        auto *series = new QLineSeries;
        series->setName(list.name);
        // A NaN or infinite loss (a diverged epoch) leaves a gap in the line: not drawn, not hidden
        // in the range.
        for (std::size_t i = 0; i < list.values.size(); ++i)
            if (std::isfinite(list.values[i])) {
                series->append(static_cast<double>(i + 1), list.values[i]);
                lo = std::min(lo, list.values[i]);
                hi = std::max(hi, list.values[i]);
            }
        longest = std::max(longest, list.values.size());
        QPen pen(colours[k++ % std::size(colours)]);
        pen.setWidthF(2);
        series->setPen(pen);
        chart->addSeries(series);
        series->attachAxis(x);
        series->attachAxis(y);
    }
    if (std::isfinite(lo)) {
        const double pad = hi > lo ? (hi - lo) * 0.05 : std::max(std::abs(hi) * 0.05, 0.05);
        y->setRange(lo - pad, hi + pad);
        const auto last = std::max<std::size_t>(longest, 2);
        x->setRange(1, static_cast<double>(last));
        // Ticks on whole positions only (five evenly spaced ticks over 1…4 read "1 2 3 3 4").
        x->setTickType(QValueAxis::TicksDynamic);
        x->setTickAnchor(1);
        x->setTickInterval(std::max(1.0, std::ceil(static_cast<double>(last - 1) / 10.0)));
    }
}

QString MetadataView::summaryTitle() { return tr("At a glance"); }
QString MetadataView::metadataTitle() { return tr("Metadata"); }
QString MetadataView::sidecarTitle() { return tr("Sidecar"); }

void MetadataView::setDocument(const std::shared_ptr<const Document> &doc)
{
    m_model->clear();
    m_model->setHorizontalHeaderLabels({tr("Key"), tr("Type"), tr("Value")});
    m_doc = doc;
    const bool losses = doc && ((doc->folder && doc->folder->trainerState && !doc->folder->trainerState->log.empty()) ||
                                ((!doc->folder || !doc->folder->trainerState) && !lossLists(*doc).empty()));
    m_lossChart->setVisible(losses);
    if (losses)
        plotLosses();
    if (!doc)
        return;
    ValueItemsBudget budget;

    if (const auto &folder = doc->folder) {
        // What the folder holds, the file read first: the rest of this view is that file's.
        const QString name = QFileInfo(QDir::cleanPath(QString::fromStdString(folder->folder))).fileName();
        auto section = sectionRow(folderTitle(), tr("%1: %2 layout").arg(name, QString::fromStdString(folder->layout)));
        section[2]->setToolTip(QString::fromStdString(folder->folder));
        const auto partRow = [this](const std::string &name, const std::string &role, const std::string &summary,
                                    const std::string &path) {
            auto row = sectionRow(QString::fromStdString(name), QString::fromStdString(summary));
            row[0]->setFont(m_view->font());
            row[1]->setText(QString::fromStdString(role));
            row[0]->setToolTip(QString::fromStdString(path));
            row[2]->setToolTip(QString::fromStdString(summary));
            return row;
        };
        section[0]->appendRow(partRow(folder->modelName, folder->modelRole, tr("read: the weights shown").toStdString(),
                                      folder->modelFile));
        for (const auto &p : folder->parts)
            section[0]->appendRow(partRow(p.name, p.role, p.summary, p.path));
        if (const auto &runs = folder->runCheckpoints; !runs.empty()) {
            // A Trainer's output_dir after save_model(): the final model is shown; its run is beside it.
            const auto n = static_cast<int>(runs.size());
            const std::string span = runs.front() + (n > 1 ? "/ … " + runs.back() : std::string()) + "/";
            const auto found = static_cast<qint64>(folder->runCheckpointsFound);
            const QString first = found > n ? tr("the first %1 of ").arg(n) : QString();
            section[0]->appendRow(partRow(span, (first + valuetext::counted(found, tr("checkpoint folder"), tr("checkpoint folders")) + tr(" the run saved")).toStdString(),
                                          tr("open one with File → Open Folder, or follow the run with: ckpt series %1")
                                              .arg(QString::fromStdString(folder->folder))
                                              .toStdString(),
                                          folder->folder));
        }
        for (const auto &n : folder->notes)
            section[0]->appendRow(partRow(tr("note").toStdString(), {}, n, {}));
        m_model->appendRow(section);
        if (const auto &t = folder->trainerState) {
            auto training = sectionRow(trainingTitle(), tr("from trainer_state.json"));
            const auto add = [&](const QString &key, const QString &value) {
                auto row = sectionRow(key, value);
                row[0]->setFont(m_view->font());
                training[0]->appendRow(row);
            };
            const auto number = [](double v) { return QString::number(v, 'g', 6); };
            if (t->globalStep)
                add(tr("Step"), t->maxSteps ? tr("%1 of %2").arg(*t->globalStep).arg(*t->maxSteps)
                                            : QString::number(*t->globalStep));
            if (t->epoch)
                add(tr("Epoch"), number(*t->epoch));
            if (const auto loss = t->lastLoss())
                add(tr("Last training loss"), number(*loss));
            if (const auto eval = t->lastEvalLoss())
                add(tr("Last eval loss"), number(*eval));
            if (t->bestMetric)
                add(tr("Best metric"), number(*t->bestMetric));
            if (!t->bestModelCheckpoint.empty())
                add(tr("Best checkpoint"), QString::fromStdString(t->bestModelCheckpoint));
            add(tr("Logged losses"), QString::number(t->log.size()));
            m_model->appendRow(training);
        }
    }

    const auto fields = knownFields(*doc);
    if (!fields.empty()) {
        auto section = sectionRow(summaryTitle());
        for (const auto &f : fields) {
            auto row = valueRow(QString::fromStdString(f.label), f.value, budget);
            row[1]->setText(fieldSource(f));
            row[1]->setToolTip(tr("The value saved under the key %1, %2")
                                   .arg(QString::fromStdString(f.key),
                                        f.value ? valuetext::typeText(*f.value) : QStringLiteral("?")));
            showRepr(row, f.value);
            section[0]->appendRow(row);
        }
        m_model->appendRow(section);
    }

    const auto entries = metadataEntries(*doc);
    auto meta = sectionRow(metadataTitle(), entries.empty() ? tr("none besides the weights") : QString());
    appendRows(meta[0], static_cast<qint64>(entries.size()), budget, [&](qint64 i) {
        const auto &e = entries[static_cast<std::size_t>(i)];
        const QString key = QString::fromStdString(e.key);
        if (e.role == MetadataEntry::Role::Plain) {
            auto row = valueRow(key, e.value, budget);
            showRepr(row, e.value);
            return row;
        }
        auto row = sectionRow(key, e.role == MetadataEntry::Role::OtherWeights
                                       ? tr("another weight set (EMA, a second network): see the structure tree")
                                       : tr("holds the weights or the optimizer state: see the other views"));
        row[0]->setFont(m_view->font());
        return row;
    });
    if (doc->root && doc->root->kind() == Value::Kind::Object)
        meta[2]->setText(tr("a pickled object of class %1").arg(QString::fromStdString(className(*doc->root))));
    m_model->appendRow(meta);

    if (doc->sidecar) {
        auto section = sectionRow(sidecarTitle(), QFileInfo(QString::fromStdString(doc->sidecarPath)).fileName());
        appendValueRows(section[0], childrenOf(*doc->sidecar), budget);
        m_model->appendRow(section);
    }
    if (doc->formatMetadata) {
        auto section = sectionRow(doc->format == ContainerFormat::Safetensors ? tr("Safetensors __metadata__")
                                                                               : tr("Index metadata"));
        appendValueRows(section[0], childrenOf(*doc->formatMetadata), budget);
        m_model->appendRow(section);
    }
    if (!doc->conventions.empty()) {
        // Each a sentence (a LoRA adapter's ranks, a prefix and how to strip it): in the Value column,
        // numbered in the Key column, which would otherwise widen to the longest and push every
        // value off screen.
        auto section = sectionRow(tr("Conventions recognised"));
        int n = 0;
        for (const auto &c : doc->conventions) {
            const QString sentence = QString::fromStdString(c);
            auto row = sectionRow(QString::number(++n), sentence);
            row[0]->setFont(m_view->font());
            row[2]->setToolTip(sentence);
            section[0]->appendRow(row);
        }
        m_model->appendRow(section);
    }
    if (!doc->sourceRecords.empty()) {
        auto section = sectionRow(tr("TorchScript code"), tr("listed, never run"));
        for (const auto &r : doc->sourceRecords) {
            auto row = sectionRow(QString::fromStdString(r));
            row[0]->setFont(m_view->font());
            section[0]->appendRow(row);
        }
        m_model->appendRow(section);
    }
    m_view->expandToDepth(0);
    // Keys and types fit their text up to a bound: a long key (a pickled object's attribute path, a
    // folder part's name) is elided there, whole in its tooltip, and the values stay on screen.
    constexpr int kMaxKeyWidth = 340;
    constexpr int kMaxTypeWidth = 260;
    m_view->resizeColumnToContents(0);
    m_view->resizeColumnToContents(1);
    m_view->setColumnWidth(0, std::min(m_view->columnWidth(0), kMaxKeyWidth));
    m_view->setColumnWidth(1, std::min(m_view->columnWidth(1), kMaxTypeWidth));
    const QFontMetrics metrics(m_view->font());
    // The rows shown at first and one level below (a deeper value is seen by expanding, with its own tooltip).
    const auto tipLong = [&](QStandardItem *item, int depth, auto &&self) -> void {
        for (int r = 0; r < item->rowCount(); ++r)
            for (int c = 0; c < 2; ++c)
                if (QStandardItem *cell = item->child(r, c)) {
                    const int width = (c == 0 ? kMaxKeyWidth : kMaxTypeWidth) - m_view->indentation() * depth;
                    if (cell->toolTip().isEmpty() && metrics.horizontalAdvance(cell->text()) + 24 > width)
                        cell->setToolTip(cell->text());
                    if (c == 0 && depth < 2)
                        self(cell, depth + 1, self);
                }
    };
    tipLong(m_model->invisibleRootItem(), 0, tipLong);
}

} // namespace ckpt
