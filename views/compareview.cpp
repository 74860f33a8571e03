#include "compareview.h"

#include "jobwatch.h"

#include "jobpool.h"
#include "comparison.h"
#include "comparisonmodel.h"
#include "computeloader.h"
#include "document.h"
#include "histogramchart.h"
#include "metadata.h"
#include "valuetext.h"

#include <QCheckBox>
#include <QDoubleValidator>
#include <QFileInfo>
#include <QFontMetrics>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPointer>
#include <QProgressBar>
#include <QSet>
#include <QStyle>
#include <QPromise>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QToolButton>
#include <QTreeView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>

namespace ckpt {

// What the background job hands back: both documents (they keep the tensor data alive for the
// histograms) and the comparison, or an error.
struct CompareJob {
    std::shared_ptr<const Document> a, b;
    std::shared_ptr<const Comparison> comparison;
    QString error;
};

namespace {

constexpr int kBins = 64;

// Rows that are changed (when asked) and whose name contains the text; modules on the way stay.
class ChangeFilter : public QSortFilterProxyModel {
public:
    using QSortFilterProxyModel::QSortFilterProxyModel;
    void setChangedOnly(bool on)
    {
        m_changedOnly = on;
        invalidateFilter();
    }
    void setText(const QString &text)
    {
        m_text = text;
        invalidateFilter();
    }

protected:
    bool filterAcceptsRow(int row, const QModelIndex &parent) const override
    {
        const QModelIndex i = sourceModel()->index(row, 0, parent);
        if (m_changedOnly && !i.data(ComparisonModel::ChangedRole).toBool())
            return false;
        return m_text.isEmpty() || i.data().toString().contains(m_text, Qt::CaseInsensitive);
    }

private:
    bool m_changedOnly = false;
    QString m_text;
};

// A tolerance as the field shows it: "0" for exact, else the shortest text that reads back the same.
QString toleranceText(double v)
{
    const QString shortText = QString::number(v, 'g', 6);
    return shortText.toDouble() == v ? shortText : QString::number(v, 'g', 17);
}

// The field's tolerance; empty is 0 (exact). False when it is not a finite number >= 0.
bool toleranceOf(const QLineEdit *edit, double &out)
{
    const QString text = edit->text().trimmed();
    if (text.isEmpty()) {
        out = 0;
        return true;
    }
    bool ok = false;
    out = QLocale::c().toDouble(text, &ok);
    return ok && std::isfinite(out) && out >= 0;
}

QString num(double v)
{
    if (std::isnan(v))
        return QStringLiteral("\u2014");
    if (std::isinf(v))
        return QStringLiteral("\u221e");
    return QString::number(v, 'g', 6);
}

// A norm as torch gives it: nan and inf where the tensor holds them.
QString normText(double v)
{
    if (std::isnan(v))
        return QStringLiteral("nan");
    if (std::isinf(v))
        return v > 0 ? QStringLiteral("inf") : QStringLiteral("-inf");
    return QString::number(v, 'g', 6);
}

} // namespace

CompareView::CompareView(QWidget *parent) : QWidget(parent)
{
    m_model = new ComparisonModel(this);
    auto *proxy = new ChangeFilter(this);
    proxy->setSourceModel(m_model);
    proxy->setRecursiveFilteringEnabled(true);
    proxy->setSortRole(ComparisonModel::SortRole);
    m_proxy = proxy;

    m_title = new QLabel(this);
    m_title->setObjectName(QStringLiteral("compareTitle"));
    m_title->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_title->setWordWrap(true);
    for (QLabel **side : {&m_sideA, &m_sideB}) {
        *side = new QLabel(this);
        (*side)->setObjectName(side == &m_sideA ? QStringLiteral("compareSideA") : QStringLiteral("compareSideB"));
        (*side)->setTextInteractionFlags(Qt::TextSelectableByMouse);
        (*side)->setWordWrap(true);
        (*side)->setFrameShape(QFrame::StyledPanel);
        (*side)->setMargin(4);
    }
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("compareSummary"));
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_progress = new QProgressBar(this);
    m_progress->setMaximumWidth(180);
    m_progress->setFormat(tr("comparing %v/%m"));
    m_progress->hide();
    m_cancel = new QToolButton(this);
    m_cancel->setObjectName(QStringLiteral("compareCancel"));
    m_cancel->setText(tr("Cancel"));
    m_cancel->hide();
    connect(m_cancel, &QToolButton::clicked, this, &CompareView::cancel);
    m_changedOnly = new QCheckBox(tr("Changed only"), this);
    m_changedOnly->setObjectName(QStringLiteral("changedOnly"));
    m_filter = new QLineEdit(this);
    m_filter->setObjectName(QStringLiteral("compareFilter"));
    m_filter->setPlaceholderText(tr("Filter names\u2026"));
    m_filter->setClearButtonEnabled(true);
    m_filter->setAcceptDrops(false);
    m_filter->setMaximumWidth(280);
    for (QLineEdit **edit : {&m_atolEdit, &m_rtolEdit}) {
        const bool abs = edit == &m_atolEdit;
        *edit = new QLineEdit(QStringLiteral("0"), this);
        (*edit)->setObjectName(abs ? QStringLiteral("compareAtol") : QStringLiteral("compareRtol"));
        (*edit)->setMaximumWidth(90);
        (*edit)->setAcceptDrops(false);
        auto *validator = new QDoubleValidator(0.0, 1e300, 17, *edit);
        validator->setNotation(QDoubleValidator::ScientificNotation);
        validator->setLocale(QLocale::c());
        (*edit)->setValidator(validator);
        (*edit)->setToolTip(tr("A tensor is within tolerance when every element has |second \u2212 first| \u2264 "
                               "absolute + relative \u00d7 |second| (as ckpt diff --atol/--rtol). 0: exact. "
                               "Press Enter to compare again."));
        connect(*edit, &QLineEdit::editingFinished, this, &CompareView::toleranceEdited);
    }
    connect(m_changedOnly, &QCheckBox::toggled, this, [this, proxy](bool on) {
        proxy->setChangedOnly(on);
        m_tree->expandToDepth(1);
    });
    connect(m_filter, &QLineEdit::textChanged, this, [this, proxy](const QString &t) {
        proxy->setText(t);
        if (!t.isEmpty())
            m_tree->expandAll();
    });

    m_tree = new QTreeView(this);
    m_tree->setObjectName(QStringLiteral("compareTree"));
    m_tree->setModel(m_proxy);
    m_tree->setUniformRowHeights(true);
    m_tree->setAllColumnsShowFocus(true);
    m_tree->setSortingEnabled(true);
    m_tree->header()->setSortIndicatorClearable(true);
    // As `ckpt diff` lists them: diverged rows first, then the most changed.
    m_tree->sortByColumn(ComparisonModel::ChangeColumn, Qt::DescendingOrder);
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex &current) { showTensor(m_proxy->mapToSource(current)); });

    m_figures = new QLabel(this);
    m_figures->setObjectName(QStringLiteral("compareFigures"));
    m_figures->setWordWrap(true);
    m_figures->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_figures->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    m_log = new QCheckBox(tr("Log counts"), this);
    m_values = new HistogramChart(this);
    m_values->setObjectName(QStringLiteral("valuesHistogram"));
    m_difference = new HistogramChart(this);
    m_difference->setObjectName(QStringLiteral("differenceHistogram"));
    m_values->setMessage(valuesHint());
    m_difference->setMessage(differenceHint());
    connect(m_log, &QCheckBox::toggled, this, [this](bool on) {
        m_values->setLogCounts(on);
        m_difference->setLogCounts(on);
    });

    auto *detail = new QWidget(this);
    auto *dl = new QVBoxLayout(detail);
    dl->setContentsMargins(4, 0, 0, 0);
    dl->addWidget(m_figures);
    dl->addWidget(m_log);
    dl->addWidget(m_values, 1);
    dl->addWidget(m_difference, 1);

    auto *split = new QSplitter(Qt::Horizontal, this);
    split->setObjectName(QStringLiteral("compareSplitter"));
    split->setChildrenCollapsible(false);
    split->addWidget(m_tree);
    split->addWidget(detail);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);

    // The summary on a line of its own: beside the fields it wrapped into a height the bar cuts off.
    auto *bar = new QHBoxLayout;
    bar->addStretch(1);
    bar->addWidget(m_progress);
    bar->addWidget(m_cancel);
    auto *atolLabel = new QLabel(tr("&abs tol"), this);
    atolLabel->setBuddy(m_atolEdit);
    auto *rtolLabel = new QLabel(tr("&rel tol"), this);
    rtolLabel->setBuddy(m_rtolEdit);
    bar->addWidget(atolLabel);
    bar->addWidget(m_atolEdit);
    bar->addWidget(rtolLabel);
    bar->addWidget(m_rtolEdit);
    bar->addWidget(m_changedOnly);
    bar->addWidget(m_filter);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 4);
    layout->addWidget(m_title);
    auto *sides = new QHBoxLayout;
    sides->addWidget(m_sideA, 1);
    sides->addWidget(m_sideB, 1);
    layout->addLayout(sides);
    layout->addWidget(m_summary);
    layout->addLayout(bar);
    layout->addWidget(split, 1);
}

CompareView::~CompareView()
{
    if (m_job)
        m_job->cancel();
    abandonJob(m_histogramJob);
}

void CompareView::compare(const QString &a, const QString &b, double atol, double rtol)
{
    cancel();
    m_a = QFileInfo(a).absoluteFilePath();
    m_b = QFileInfo(b).absoluteFilePath();
    m_atol = atol;
    m_rtol = rtol;
    m_atolEdit->setText(toleranceText(atol));
    m_rtolEdit->setText(toleranceText(rtol));
    m_model->setComparison(nullptr);
    m_docA.reset();
    m_docB.reset();
    m_figures->clear();
    m_values->setMessage(valuesHint());
    m_difference->setMessage(differenceHint());
    m_title->setText(tr("<b>%1</b> \u2192 <b>%2</b>")
                         .arg(QFileInfo(m_a).fileName().toHtmlEscaped(), QFileInfo(m_b).fileName().toHtmlEscaped()));
    m_title->setToolTip(m_a + QLatin1Char('\n') + m_b);
    m_sideA->setText(tr("<b>first</b> %1").arg(QFileInfo(m_a).fileName().toHtmlEscaped()));
    m_sideB->setText(tr("<b>second</b> %1").arg(QFileInfo(m_b).fileName().toHtmlEscaped()));
    m_summary->setText(tr("Reading and comparing\u2026"));
    const std::string pa = m_a.toStdString(), pb = m_b.toStdString();
    startViewJob(
        this, m_job, m_progress, m_cancel,
        [pa, pb, atol, rtol](CompareJob &job, QPromise<std::shared_ptr<CompareJob>> &promise) {
            ReadOptions ro;
            ro.progress = [&promise](double) { return !promise.isCanceled(); };
            job.a = std::make_shared<const Document>(readDocument(pa, ro));
            job.b = std::make_shared<const Document>(readDocument(pb, ro));
            CompareOptions co;
            // Asked within a tensor too: Cancel, or closing the tab, stops a pair of 10-GB tensors
            // between chunks rather than after them.
            co.atol(atol).rtol(rtol).progress(progressReporter(promise)).cancelled([&promise] {
                return promise.isCanceled();
            });
            job.comparison = std::make_shared<const Comparison>(compareDocuments(*job.a, *job.b, ComputeLoader::api(), co));
        },
        [this](const std::shared_ptr<CompareJob> &job) {
            m_docA = job->a;
            m_docB = job->b;
            m_model->setComparison(job->comparison);
            showResult();
            if (!m_reselect.isEmpty())
                selectPath(std::exchange(m_reselect, QString()));
            Q_EMIT finished(true);
        },
        [this](const QString &error) {
            m_reselect.clear();
            m_summary->setText(jobFailureText(error, tr("Comparison cancelled.")));
            Q_EMIT finished(false);
        });
}

void CompareView::toleranceEdited()
{
    double atol = 0, rtol = 0;
    const bool okA = toleranceOf(m_atolEdit, atol), okR = toleranceOf(m_rtolEdit, rtol);
    for (auto [edit, ok] : {std::pair{m_atolEdit, okA}, std::pair{m_rtolEdit, okR}})
        edit->setStyleSheet(ok ? QString() : QStringLiteral("color: #b3261e"));
    if (!okA || !okR || m_a.isEmpty() || (atol == m_atol && rtol == m_rtol))
        return;
    const QModelIndex current = m_proxy->mapToSource(m_tree->currentIndex());
    m_reselect = current.isValid() ? current.data(ComparisonModel::PathRole).toString() : QString();
    compare(m_a, m_b, atol, rtol);
}

void CompareView::cancel()
{
    if (!cancelViewJob(m_job, m_progress, m_cancel))
        return;
    m_summary->setText(tr("Comparison cancelled."));
    Q_EMIT finished(false);
}

namespace {
// One file's side of the comparison: what it is and holds.
QString sideText(const QString &which, const QString &path, const Document &d)
{
    QStringList parts{QString::fromStdString(formatName(d.format)), QString::fromStdString(kindName(d.kind))};
    const auto &tensors = d.hasStateDict ? d.stateDict : d.tensors;
    qint64 elements = 0, bytes = 0;
    for (const auto &t : tensors) {
        elements += t.ref().numel();
        bytes += t.ref().nbytes();
    }
    parts << valuetext::counted(static_cast<qint64>(tensors.size()), CompareView::tr("tensor"), CompareView::tr("tensors"))
          << valuetext::counted(elements, CompareView::tr("element"), CompareView::tr("elements"))
          << QLocale().formattedDataSize(bytes, 1, QLocale::DataSizeIecFormat);
    for (const auto &f : knownFields(d))
        if (f.label == "Epoch" || f.label == "Step")
            parts << QStringLiteral("%1 %2").arg(QString::fromStdString(f.label).toLower(),
                                                  f.value && f.value->isInt() ? QString::number(f.value->asInt()) : QStringLiteral("?"));
    return QStringLiteral("<b>%1</b> %2<br>%3").arg(which, QFileInfo(path).fileName().toHtmlEscaped(),
                                                    parts.join(QStringLiteral(" \u00b7 ")).toHtmlEscaped());
}
} // namespace

void CompareView::showResult()
{
    const Comparison &c = *m_model->comparison();
    m_sideA->setText(sideText(tr("first"), m_a, *m_docA));
    m_sideB->setText(sideText(tr("second"), m_b, *m_docB));
    int identical = 0, close = 0, changed = 0, shape = 0, diverged = 0;
    for (const auto &t : c.tensors) {
        diverged += t.diff.nonFinite > 0 && t.status != TensorComparison::Status::ShapeChanged &&
                    t.status != TensorComparison::Status::Unreadable;
        identical += t.status == TensorComparison::Status::Identical;
        close += t.status == TensorComparison::Status::Close;
        changed += t.status == TensorComparison::Status::Different || t.status == TensorComparison::Status::Unreadable;
        shape += t.status == TensorComparison::Status::ShapeChanged;
    }
    QString text = tr("<b>%1</b> \u00b7 %2 tensors in both: %3 identical, %4 within tolerance, %5 changed, %6 reshaped"
                      " \u00b7 %7 removed \u00b7 %8 added")
                       .arg(c.weightsEqual() ? tr("Weights equal") : tr("Weights differ"))
                       .arg(c.tensors.size())
                       .arg(identical)
                       .arg(close)
                       .arg(changed)
                       .arg(shape)
                       .arg(c.onlyA.size())
                       .arg(c.onlyB.size());
    if (diverged)
        text += QStringLiteral(" \u00b7 <b>%1</b>")
                    .arg(diverged == 1 ? tr("1 diverged (a NaN or infinity came, went or moved)")
                                       : tr("%1 diverged (a NaN or infinity came, went or moved)").arg(diverged));
    if (!c.prefixA.empty() || !c.prefixB.empty())
        text += tr(" \u00b7 prefixes set aside: %1").arg(QString::fromStdString((c.prefixA.empty() ? "" : "'" + c.prefixA + "' (first) ") +
                                                                               (c.prefixB.empty() ? "" : "'" + c.prefixB + "' (second)")).toHtmlEscaped());
    // AveragedModel's n_averaged, which the other file (the plain model) has none of: said, in
    // `ckpt diff`'s words, rather than left out unsaid.
    for (const auto *side : {&c.setAsideA, &c.setAsideB})
        for (const auto &s : *side)
            text += QStringLiteral("<br>") +
                    QString::fromStdString(setAsideText(s, side == &c.setAsideA ? "the first file" : "the second file"))
                        .toHtmlEscaped();
    // As ckpt diff says them: each metadata entry that differs with its values as Python prints
    // them (a few, each cut short: the Metadata view has them whole), and the optimizer's change.
    if (!c.metadata.empty()) {
        const auto shortText = [](const std::optional<std::string> &python) {
            QString t = python ? QString::fromStdString(*python).simplified() : tr("(absent)");
            return t.size() > 60 ? t.left(59) + QChar(0x2026) : t;
        };
        QStringList lines;
        constexpr std::size_t kShown = 8;
        for (std::size_t i = 0; i < c.metadata.size() && i < kShown; ++i) {
            const auto &m = c.metadata[i];
            lines << tr("%1: %2 → %3").arg(QString::fromStdString(m.key), shortText(m.pythonA), shortText(m.pythonB)).toHtmlEscaped();
        }
        if (c.metadata.size() > kShown)
            lines << tr("and %n more", nullptr, static_cast<int>(c.metadata.size() - kShown));
        text += tr("<br>metadata that differs: %1").arg(lines.join(QStringLiteral("; ")));
    }
    if (c.optimizerA || c.optimizerB) {
        const auto changes = optimizerChanges(c.optimizerA, c.optimizerB);
        QStringList parts;
        for (std::size_t i = 0; i < changes.size() && i < 8; ++i)
            parts << QString::fromStdString(changes[i]).toHtmlEscaped();
        if (changes.size() > 8)
            parts << tr("and %n more", nullptr, static_cast<int>(changes.size() - 8));
        text += changes.empty() ? tr("<br>optimizer: unchanged (%1)").arg(QString::fromStdString(optimizerText(c.optimizerA)).toHtmlEscaped())
                                : tr("<br>optimizer: %1 → %2: %3")
                                      .arg(QString::fromStdString(optimizerText(c.optimizerA)).toHtmlEscaped(),
                                           QString::fromStdString(optimizerText(c.optimizerB)).toHtmlEscaped(),
                                           parts.join(QStringLiteral("; ")));
    }
    m_summary->setText(text);
    m_tree->expandToDepth(0);
    for (int col = 0; col < ComparisonModel::ColumnCount; ++col)
        m_tree->resizeColumnToContents(col);
    fitChangeColumn();
}

// resizeColumnToContents measures the rows shown now; a row opened or unfiltered later ("within
// tolerance" two levels down) would be elided. The column's few words are measured on every row.
void CompareView::fitChangeColumn()
{
    QSet<QString> texts;
    std::function<void(const QModelIndex &)> walk = [&](const QModelIndex &parent) {
        for (int r = 0; r < m_model->rowCount(parent); ++r) {
            const QModelIndex i = m_model->index(r, ComparisonModel::ChangeColumn, parent);
            texts.insert(i.data().toString());
            walk(i.siblingAtColumn(0));
        }
    };
    walk({});
    const QFontMetrics fm(m_tree->font());
    // QStyledItemDelegate pads the text by the focus frame margin + 1 on each side.
    const int pad = 2 * (m_tree->style()->pixelMetric(QStyle::PM_FocusFrameHMargin, nullptr, m_tree) + 1) + 6;
    int width = m_tree->header()->sectionSize(ComparisonModel::ChangeColumn);
    for (const QString &t : std::as_const(texts))
        width = std::max(width, fm.horizontalAdvance(t) + pad);
    m_tree->header()->resizeSection(ComparisonModel::ChangeColumn, width);
}

bool CompareView::selectPath(const QString &path)
{
    const QModelIndex source = m_model->indexOfPath(path);
    const QModelIndex proxyIndex = m_proxy->mapFromSource(source);
    if (!proxyIndex.isValid())
        return false;
    m_tree->scrollTo(proxyIndex);
    m_tree->setCurrentIndex(proxyIndex);
    return true;
}

QString CompareView::valuesHint()
{
    return tr("Select a tensor to see its values in both files");
}

QString CompareView::differenceHint()
{
    return tr("Select a tensor to see the histogram of second \u2212 first");
}

void CompareView::showTensor(const QModelIndex &index)
{
    const int generation = ++m_histogramGeneration;
    abandonJob(m_histogramJob);  // another row's histograms stop, queued or within a chunk
    m_histogramJob = nullptr;
    const QString status = index.data(ComparisonModel::StatusRole).toString();
    const QString nameA = index.data(ComparisonModel::NameARole).toString();
    const QString nameB = index.data(ComparisonModel::NameBRole).toString();
    if (!index.isValid() || !m_docA || !m_docB || status == QLatin1String("module")) {
        m_figures->setText(index.isValid() ? tr("<b>%1</b>: %2 (select a tensor for its histograms)")
                                                 .arg(index.data(ComparisonModel::PathRole).toString().toHtmlEscaped(),
                                                      index.siblingAtColumn(ComparisonModel::ChangeColumn).data().toString().toHtmlEscaped())
                                           : QString());
        m_values->setMessage(valuesHint());
        m_difference->setMessage(differenceHint());
        return;
    }
    auto find = [](const Document &d, const QString &name) -> const TensorRef * {
        const auto &list = d.hasStateDict ? d.stateDict : d.tensors;
        for (const auto &t : list)
            if (t.name == name.toStdString())
                return &t.ref();
        return nullptr;
    };
    const TensorRef *ta = nameA.isEmpty() ? nullptr : find(*m_docA, nameA);
    const TensorRef *tb = nameB.isEmpty() ? nullptr : find(*m_docB, nameB);
    QString text = tr("<b>%1</b> \u2014 %2").arg(index.data(ComparisonModel::PathRole).toString().toHtmlEscaped(),
                                                  index.siblingAtColumn(ComparisonModel::ChangeColumn).data().toString().toHtmlEscaped());
    const auto &cmp = *m_model->comparison();
    for (const auto &t : cmp.tensors)
        if (QString::fromStdString(t.name) == nameA && t.status != TensorComparison::Status::ShapeChanged &&
            t.status != TensorComparison::Status::Unreadable) {
            text += tr("<br>max |\u0394| %1 \u00b7 mean |\u0394| %2 \u00b7 relative L2 %3 \u00b7 cosine %4<br>"
                       "||a|| %5 \u00b7 ||b|| %6 \u00b7 %7 of %8 elements outside tolerance")
                        .arg(num(t.diff.maxAbs), num(t.diff.meanAbs()), num(t.diff.relativeL2()), num(cosineOf(t.diff)),
                             normText(t.normA), normText(t.normB))
                        .arg(t.diff.outside)
                        .arg(t.diff.count);
            if (t.diff.nonFinite)
                text += tr("<br><b>%1</b>: positions where one file holds NaN or Inf and the other does not hold the "
                           "same value; the figures above are over the positions finite in both and leave them out")
                            .arg(t.diff.nonFinite == 1 ? tr("1 NaN/Inf mismatch")
                                                       : tr("%1 NaN/Inf mismatches").arg(t.diff.nonFinite));
            if (t.nonFinite.any())
                text += tr("<br>NaN / Inf values: first %1 / %2, second %3 / %4")
                            .arg(t.nonFinite.nanA)
                            .arg(t.nonFinite.infA)
                            .arg(t.nonFinite.nanB)
                            .arg(t.nonFinite.infB);
        }
    m_figures->setText(text);
    m_values->setMessage(tr("Computing histograms\u2026"));
    m_difference->setMessage(QString());

    // Histograms off the GUI thread; the documents ride along to keep the data mapped.
    struct Result {
        Histogram a, b, diff;
        bool hasA = false, hasB = false, hasDiff = false;
        QString error;
    };
    auto docA = m_docA, docB = m_docB;
    auto *watcher = new QFutureWatcher<Result>(this);
    m_histogramJob = watcher;
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, generation] {
        watcher->deleteLater();
        if (m_histogramJob == watcher)
            m_histogramJob = nullptr;
        if (generation != m_histogramGeneration || watcher->future().resultCount() == 0)
            return;  // another row was selected since, or cancelled
        const Result r = watcher->result();
        std::vector<HistogramChart::Curve> curves;
        if (r.hasA)
            curves.push_back({tr("first file"), r.a, QColor(0x1f, 0x77, 0xb4)});
        if (r.hasB)
            curves.push_back({tr("second file"), r.b, QColor(0xd6, 0x27, 0x28)});
        if (!r.error.isEmpty())
            m_values->setMessage(r.error);
        else
            m_values->setCurves(curves, tr("Values"));
        if (r.hasDiff)
            m_difference->setCurves({{tr("second \u2212 first"), r.diff, QColor(0x6a, 0x3d, 0x9a)}}, tr("Difference"));
        else
            m_difference->setMessage(tr("No difference: the tensor is not in both files with one shape"));
        Q_EMIT histogramsReady();
    });
    watcher->setFuture(QtConcurrent::run(jobPool(), [ta, tb, docA, docB](QPromise<Result> &promise) {
        const CancelCheck cancelled = [&promise] { return promise.isCanceled(); };
        Result r;
        try {
            const ComputeApi &api = ComputeLoader::api();
            if (ta) {
                r.a = api.histogram(*ta, kBins, cancelled);
                r.hasA = true;
            }
            if (tb) {
                r.b = api.histogram(*tb, kBins, cancelled);
                r.hasB = true;
            }
            if (ta && tb && ta->shape == tb->shape) {
                r.diff = api.differenceHistogram(*ta, *tb, kBins, cancelled);
                r.hasDiff = true;
            }
        } catch (const std::exception &e) {
            r.error = QString::fromStdString(e.what());
        }
        (void)docA;
        (void)docB;
        if (!promise.isCanceled())
            promise.addResult(std::move(r));
    }));
}

} // namespace ckpt
