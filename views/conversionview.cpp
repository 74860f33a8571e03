#include "conversionview.h"

#include "architecturewording.h"
#include "atomicwrite.h"
#include "computeloader.h"
#include "conversionplanmodel.h"
#include "dialogfolders.h"
#include "document.h"
#include "error.h"
#include "jobpool.h"
#include "keyalign.h"
#include "scriptarchitecturecache.h"
#include "scriptexport.h"
#include "valuetext.h"

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDesktopServices>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QFutureWatcher>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMouseEvent>

#include <array>
#include <functional>
#include <QMessageBox>
#include <QMimeData>
#include <QPromise>
#include <QPushButton>
#include <QScrollArea>
#include <QSplitter>
#include <QStyle>
#include <QStyleOptionProgressBar>
#include <QStyledItemDelegate>
#include <QPainter>
#include <QTableView>
#include <QTimer>
#include <QToolButton>
#include <QUrl>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

namespace ckpt {

// What writing one file produced, handed back to the GUI thread.
struct ConversionRun {
    quint64 id = 0;
    ConversionResult result;
    QStringList notes;  // TorchScript: what building the module noticed
    QString error;
    bool ok = false;
    bool cancelled = false;
};

namespace {

// The settings a file's own values fill (text fields, unset until edited) and those a check box
// edits, by the name of their field; for a const or an editable ConversionSettings.
template <class Settings> auto valueFields(Settings &s)
{
    using V = decltype(&s.config);
    return std::array<std::pair<QLatin1String, V>, 6>{{{QLatin1String("config"), &s.config},
                                                        {QLatin1String("classNames"), &s.classNames},
                                                        {QLatin1String("preprocessing"), &s.preprocessing},
                                                        {QLatin1String("epoch"), &s.epoch},
                                                        {QLatin1String("trainLoss"), &s.trainLoss},
                                                        {QLatin1String("valLoss"), &s.valLoss}}};
}

template <class Settings> auto checkFields(Settings &s)
{
    using B = decltype(&s.ema);
    return std::array<std::pair<QLatin1String, B>, 5>{{{QLatin1String("ema"), &s.ema},
                                                       {QLatin1String("dropOptimizer"), &s.dropOptimizer},
                                                       {QLatin1String("keepDevice"), &s.keepDevice},
                                                       {QLatin1String("applyPruning"), &s.applyPruning},
                                                       {QLatin1String("sidecar"), &s.sidecar}}};
}

// What planning one file produced: its document (read once), the plan, or why it cannot be done.
struct PlanOutcome {
    std::shared_ptr<const Document> document;
    std::shared_ptr<const ConversionPlan> plan;
    std::shared_ptr<const ScriptExport> scriptExport;
    QMap<QString, QString> sourceValues;
    QStringList prefixes;
    QString output;
    QString error;
    QString computeError;  // TorchScript: why the compute module cannot be loaded
    QStringList notes;     // TorchScript: what loading the weights into a given architecture noticed
};

// Why the compute module (LibTorch) cannot be loaded, as the pane says it; empty when it can.
QString probeFailure(const ConversionView::ComputeProbe &probe)
{
    try {
        if (probe)
            probe();
        else
            ComputeLoader::api();
        return {};
    } catch (const std::exception &e) {
        return QString::fromStdString(e.what());
    }
}

// The options with what makes a LoRA merge's numbers, when an adapter is given: the compute module,
// loaded on first use (a plan's merged weights are computed as they are written).
ConvertOptions withLoraCompute(ConvertOptions o)
{
    if (o.lora && !o.loraCompute)
        o.loraCompute = [](const LoraMergeStep &step) { return ComputeLoader::api().loraMergedWeight(step); };
    return o;
}

QString computeUnavailableText(const QString &why)
{
    return ConversionView::tr("TorchScript export needs the compute module (LibTorch), which cannot be loaded: %1").arg(why);
}

// The weights a TorchScript architecture is loaded with, as far as loading them can tell: the
// names, dtypes and shapes.
std::string weightsKey(const ScriptExport &e)
{
    std::string key;
    auto add = [&key](const std::vector<NamedTensor> &tensors) {
        for (const auto &t : tensors) {
            key += t.name;
            key += '\x1f';
            key += std::to_string(static_cast<int>(t.ref().dtype));
            for (const auto d : t.ref().shape)
                key += ',' + std::to_string(d);
            key += '\x1e';
        }
        key += '\x1d';
    };
    add(e.source->stateDict);
    add(e.architecture.weights);
    return key;
}

PlanOutcome planFile(const QString &input, std::shared_ptr<const Document> doc, PaneTarget target,
                     const ConversionSettings &settings, const ConversionView::ComputeProbe &probe,
                     const std::shared_ptr<ScriptArchitectureCache> &architectures)
{
    PlanOutcome out;
    try {
        if (!doc)
            doc = std::make_shared<const Document>(readDocument(input.toStdString()));
        out.document = doc;
        out.sourceValues = sourceValueTexts(*doc);
        std::vector<std::string> names;
        names.reserve(doc->stateDict.size());
        for (const auto &t : doc->stateDict)
            names.push_back(t.name);
        if (const std::string p = commonWrapperPrefix(names); !p.empty())
            out.prefixes << QString::fromStdString(p);
        out.output = outputPathFor(input, settings, target);
        const ConvertOptions options = withLoraCompute(toConvertOptions(settings, target));
        std::shared_ptr<const ConversionPlan> plan;
        if (!engineTarget(target)) {
            // Planning itself needs no LibTorch, writing does: a file that cannot be written is
            // said so now, on its row, not when Convert All is pressed.
            out.computeError = probeFailure(probe);
            if (!out.computeError.isEmpty())
                throw FormatError(computeUnavailableText(out.computeError).toStdString());
            auto e = std::make_shared<const ScriptExport>(
                planScriptExport(*doc, out.output.toStdString(), options, architectureRequestFor(settings, target)));
            if (e->architecture.source == Architecture::Source::ScriptArchitecture) {
                // Never written over: `ckpt convert` refuses an output that is one of its inputs
                // before any work (an existing output is the overwrite question's, when run).
                checkWriteTarget(out.output.toStdString(),
                                 WriteOptions().allowOverwrite(true).protect(e->architecture.scriptPath));
                // The TorchScript file given is loaded with the weights now, as writing will load
                // it: a file that is missing, is not TorchScript, or does not take these weights is
                // said so on the row, in the words `ckpt convert --arch` uses, before Convert All.
                // Loaded once per state of that file and these weights: replans reuse what it found.
                const auto notes = architectures->notesFor(e->architecture.scriptPath, weightsKey(*e), [&e] {
                    return ComputeLoader::api().predictor(*e->source, e->architecture)->notes();
                });
                for (const auto &n : notes)
                    out.notes << QString::fromStdString(n);
            }
            plan = std::shared_ptr<const ConversionPlan>(e, &e->plan);
            out.scriptExport = std::move(e);
        } else {
            // Sharding checks the files it would write; one that exists is the overwrite question's
            // when Convert All runs (its answer gives the writer force), not a plan that fails.
            plan = std::make_shared<const ConversionPlan>(
                planConversion(*doc, out.output.toStdString(), ConvertOptions(options).force(true)));
            if (!plan->shards.empty())  // a sharded checkpoint is opened by its index
                out.output = QString::fromStdString(plan->indexPath);
        }
        for (const auto &p : plan->detectedPrefixes)
            if (!out.prefixes.contains(QString::fromStdString(p)))
                out.prefixes << QString::fromStdString(p);
        out.plan = std::move(plan);
    } catch (const std::exception &e) {
        out.error = panelWording(e.what(), target);
    }
    return out;
}

QStringList localFiles(const QMimeData *mime)
{
    QStringList out;
    if (!mime || !mime->hasUrls())
        return out;
    for (const QUrl &url : mime->urls())
        if (url.isLocalFile() && QFileInfo(url.toLocalFile()).isFile())
            out << url.toLocalFile();
    return out;
}

// The status column as a bar while a file is written (the progress column's figure in it), its
// word otherwise: one column for both, so that the plan and the verification fit a small window.
class ProgressDelegate : public QStyledItemDelegate {
public:
    using QStyledItemDelegate::QStyledItemDelegate;
    void paint(QPainter *painter, const QStyleOptionViewItem &option, const QModelIndex &index) const override
    {
        using S = ConversionQueueItem::Status;
        const auto status = static_cast<S>(index.data(ConversionQueueModel::StatusRole).toInt());
        if (status != S::Running) {
            QStyledItemDelegate::paint(painter, option, index);
            return;
        }
        QStyleOptionProgressBar bar;
        bar.rect = option.rect.adjusted(2, 3, -2, -3);
        const double progress = index.data(ConversionQueueModel::ProgressRole).toDouble();
        const QModelIndex percent = index.siblingAtColumn(ConversionQueueModel::ProgressColumn);
        // A negative progress is work that reports none (building a TorchScript module): a busy bar.
        bar.minimum = 0;
        bar.maximum = progress < 0 ? 0 : 100;
        bar.progress = progress < 0 ? 0 : qRound(progress * 100);
        bar.text = progress < 0 ? QString() : percent.data().toString();
        bar.textVisible = progress >= 0;
        bar.state = option.state | QStyle::State_Horizontal;
        bar.palette = option.palette;
        const QWidget *w = option.widget;
        (w ? w->style() : QApplication::style())->drawControl(QStyle::CE_ProgressBar, &bar, painter, w);
    }
};

const QString kFileFilter = QStringLiteral(
    "PyTorch checkpoints (*.pth *.pt *.ckpt *.bin *.tar *.th *.safetensors);;All files (*)");

} // namespace

// ---------------------------------------------------------------------------------------------

ConversionDropTarget::ConversionDropTarget(PaneTarget target, const QString &title, const QString &description,
                                           QWidget *parent)
    : QFrame(parent), m_target(target)
{
    setObjectName(QStringLiteral("target-") + paneTargetName(target));
    setAcceptDrops(true);
    setFrameShape(QFrame::StyledPanel);
    setCursor(Qt::PointingHandCursor);
    m_title = title;
    m_description = description;
    setSelectionCount(0);
    setMinimumHeight(56);  // compact: the queue below needs the height in a small window
    auto *t = new QLabel(QStringLiteral("<b>%1</b>").arg(title.toHtmlEscaped()), this);
    t->setAlignment(Qt::AlignCenter);
    m_descriptionLabel = new QLabel(description, this);
    m_descriptionLabel->setObjectName(QStringLiteral("description"));
    m_descriptionLabel->setAlignment(Qt::AlignCenter);
    m_descriptionLabel->setWordWrap(true);
    QPalette pal = m_descriptionLabel->palette();
    pal.setColor(QPalette::WindowText, pal.color(QPalette::PlaceholderText));
    m_descriptionLabel->setPalette(pal);
    auto *l = new QVBoxLayout(this);
    l->setContentsMargins(6, 4, 6, 4);
    l->setSpacing(2);
    l->addWidget(t);
    l->addWidget(m_descriptionLabel);
    setHighlighted(false);
}

QString ConversionDropTarget::description() const { return m_descriptionLabel->text(); }

void ConversionDropTarget::setSelectionCount(int selected)
{
    m_selected = selected;
    QString tip = selected > 0
                      ? tr("Click to convert the %1 to: %2 instead.\nDrop files here to queue them for it.")
                            .arg(selected == 1 ? tr("selected file") : tr("%1 selected files").arg(selected), m_title)
                      : tr("Drop files here, or click to choose files, to convert them to: %1").arg(m_title);
    if (!m_unavailable.isEmpty())
        tip = tr("%1 cannot be written here: %2").arg(m_title, m_unavailable);
    setToolTip(tip);
}

void ConversionDropTarget::setUnavailable(const QString &reason)
{
    m_unavailable = reason;
    m_descriptionLabel->setText(reason.isEmpty() ? m_description : tr("unavailable: LibTorch cannot be loaded"));
    // The reason in the error colour the queue uses, not the hint's grey.
    QPalette pal = m_descriptionLabel->palette();
    pal.setColor(QPalette::WindowText, reason.isEmpty() ? palette().color(QPalette::PlaceholderText) : QColor(0xc0, 0x30, 0x30));
    m_descriptionLabel->setPalette(pal);
    setSelectionCount(m_selected);
}

void ConversionDropTarget::setHighlighted(bool on)
{
    // A dashed outline says "drop here"; it turns to the highlight colour while files hover.
    setStyleSheet(QStringLiteral("QFrame#%1 { border: 2px dashed %2; border-radius: 6px; background: %3; }")
                      .arg(objectName(), on ? QStringLiteral("palette(highlight)") : QStringLiteral("palette(mid)"),
                           on ? QStringLiteral("palette(alternate-base)") : QStringLiteral("palette(base)")));
}

void ConversionDropTarget::dragEnterEvent(QDragEnterEvent *event)
{
    if (!localFiles(event->mimeData()).isEmpty()) {
        event->acceptProposedAction();
        setHighlighted(true);
    }
}

void ConversionDropTarget::dragLeaveEvent(QDragLeaveEvent *event)
{
    setHighlighted(false);
    QFrame::dragLeaveEvent(event);
}

void ConversionDropTarget::dropEvent(QDropEvent *event)
{
    setHighlighted(false);
    const QStringList files = localFiles(event->mimeData());
    if (files.isEmpty())
        return;
    event->acceptProposedAction();
    Q_EMIT filesDropped(files, m_target);
}

void ConversionDropTarget::mouseReleaseEvent(QMouseEvent *event)
{
    QFrame::mouseReleaseEvent(event);
    if (event->button() == Qt::LeftButton && rect().contains(event->position().toPoint()))
        Q_EMIT clicked(m_target);
}

// ---------------------------------------------------------------------------------------------

ConversionView::ConversionView(QWidget *parent) : QWidget(parent)
{
    m_queue = new ConversionQueueModel(this);
    m_plan = new ConversionPlanModel(this);
    m_replan = new QTimer(this);
    m_replan->setSingleShot(true);
    m_replan->setInterval(250);
    connect(m_replan, &QTimer::timeout, this, &ConversionView::replanSelection);
    m_overwrite = [this](const QString &, const QString &question) {
        return QMessageBox::question(this, tr("Replace Existing File?"), question, QMessageBox::Yes | QMessageBox::No,
                                     QMessageBox::No) == QMessageBox::Yes;
    };
    m_architectures = std::make_shared<ScriptArchitectureCache>();
    buildUi();
    updateButtons();
}

int ConversionView::architectureLoads() const { return m_architectures->loads(); }

ConversionView::~ConversionView()
{
    if (m_cancel)
        m_cancel->store(true);
    if (m_runWatcher)
        m_runWatcher->waitForFinished();
}

void ConversionView::buildUi()
{
    auto *targets = new QHBoxLayout;
    const std::tuple<PaneTarget, QString, QString> defs[] = {
        {PaneTarget::StateDict, tr("State dict"), tr("model.state_dict() only")},
        {PaneTarget::Checkpoint, tr("Checkpoint"), tr("epoch, losses, optimizer, config")},
        {PaneTarget::Inference, tr("Inference package"), tr("weights, config, class names, preprocessing")},
        {PaneTarget::FullModel, tr("Full model"), tr("a pickled nn.Module: re-saved, or built from weights")},
        {PaneTarget::Safetensors, tr("Safetensors"), tr("tensors only, no pickle")},
        {PaneTarget::TorchScript, tr("TorchScript"), tr("the module and its weights, for torch.jit.load")},
    };
    for (const auto &[target, title, description] : defs) {
        auto *t = new ConversionDropTarget(target, title, description, this);
        connect(t, &ConversionDropTarget::filesDropped, this,
                [this](const QStringList &paths, PaneTarget to) { addFiles(paths, to); });
        connect(t, &ConversionDropTarget::clicked, this, &ConversionView::activateTarget);
        m_targets[target] = t;
        targets->addWidget(t);
    }

    m_queueView = new QTableView(this);
    m_queueView->setObjectName(QStringLiteral("queue"));
    m_queueView->setModel(m_queue);
    m_queueView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_queueView->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_queueView->verticalHeader()->hide();
    m_queueView->horizontalHeader()->setStretchLastSection(true);
    m_queueView->setAlternatingRowColors(true);
    m_queueView->setWordWrap(false);
    m_queueView->setTextElideMode(Qt::ElideMiddle);
    m_queueView->setItemDelegateForColumn(ConversionQueueModel::StatusColumn, new ProgressDelegate(m_queueView));  // a long name keeps its ending (_fp16.pth)
    // The progress shows in the status column (a bar while running): the columns that say what
    // each file becomes (file, target, status, plan, verification) fit beside the options at
    // 1024 pixels, and the output's name follows (it is also the plan's first line below).
    m_queueView->setColumnHidden(ConversionQueueModel::ProgressColumn, true);
    m_queueView->verticalHeader()->setDefaultSectionSize(m_queueView->fontMetrics().height() + 8);
    fitQueueColumns();
    connect(m_queueView->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
        showSelected();
        updateButtons();
    });
    connect(m_queue, &QAbstractItemModel::dataChanged, this, [this](const QModelIndex &tl) {
        if (tl.row() == currentRow())
            showSelected();
        updateButtons();
    });
    connect(m_queueView, &QTableView::doubleClicked, this, [this] { openSelected(); });

    m_runButton = new QPushButton(style()->standardIcon(QStyle::SP_MediaPlay), tr("Convert All"), this);
    m_runButton->setObjectName(QStringLiteral("run"));
    connect(m_runButton, &QPushButton::clicked, this, &ConversionView::runQueue);
    m_cancelButton = new QPushButton(style()->standardIcon(QStyle::SP_MediaStop), tr("Cancel"), this);
    m_cancelButton->setObjectName(QStringLiteral("cancel"));
    connect(m_cancelButton, &QPushButton::clicked, this, &ConversionView::cancel);
    m_removeButton = new QPushButton(tr("Remove"), this);
    connect(m_removeButton, &QPushButton::clicked, this, &ConversionView::removeSelected);
    m_openButton = new QPushButton(tr("Open"), this);
    m_openButton->setObjectName(QStringLiteral("open"));
    m_openButton->setToolTip(tr("Open the converted file in a new tab"));
    connect(m_openButton, &QPushButton::clicked, this, &ConversionView::openSelected);
    m_revealButton = new QPushButton(tr("Reveal"), this);
    m_revealButton->setToolTip(tr("Show the converted file's folder"));
    connect(m_revealButton, &QPushButton::clicked, this, &ConversionView::revealSelected);
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(m_runButton);
    buttons->addWidget(m_cancelButton);
    buttons->addStretch(1);
    buttons->addWidget(m_removeButton);
    buttons->addWidget(m_openButton);
    buttons->addWidget(m_revealButton);

    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("planSummary"));
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_planView = new QTableView(this);
    m_planView->setObjectName(QStringLiteral("plan"));
    m_planView->setModel(m_plan);
    m_planView->verticalHeader()->hide();
    m_planView->horizontalHeader()->setStretchLastSection(true);
    m_planView->setColumnWidth(ConversionPlanModel::ChangeColumn, 90);
    m_planView->setColumnWidth(ConversionPlanModel::EntryColumn, 260);
    m_planView->setWordWrap(false);
    m_planView->setSelectionBehavior(QAbstractItemView::SelectRows);

    auto *queueBox = new QWidget(this);
    auto *ql = new QVBoxLayout(queueBox);
    ql->setContentsMargins(0, 0, 0, 0);
    auto *queueTitle = new QLabel(tr("<b>Queue</b>"), queueBox);
    ql->addWidget(queueTitle);
    ql->addWidget(m_queueView, 1);
    // Five files in view at least, however the splitter is dragged.
    m_queueView->setMinimumHeight(m_queueView->horizontalHeader()->sizeHint().height() +
                                  5 * m_queueView->verticalHeader()->defaultSectionSize() + 2 * m_queueView->frameWidth() +
                                  m_queueView->style()->pixelMetric(QStyle::PM_ScrollBarExtent));
    ql->addLayout(buttons);
    auto *planBox = new QWidget(this);
    auto *pl = new QVBoxLayout(planBox);
    pl->setContentsMargins(0, 0, 0, 0);
    pl->addWidget(new QLabel(tr("<b>Plan of the selected file</b>"), planBox));
    pl->addWidget(m_summary);
    pl->addWidget(m_planView);

    auto *scroll = new QScrollArea(this);
    scroll->setWidget(buildOptions());
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setMinimumWidth(340);

    // The queue the whole pane wide, so that its columns (file, target, status, plan,
    // verification, output) fit a 1024-pixel window unelided; under it the selected file's plan
    // beside its options. The splitters keep the queue five rows high at least.
    auto *bottom = new QSplitter(Qt::Horizontal, this);
    bottom->setObjectName(QStringLiteral("planAndOptions"));
    bottom->setChildrenCollapsible(false);
    bottom->addWidget(planBox);
    bottom->addWidget(scroll);
    bottom->setStretchFactor(0, 3);
    bottom->setStretchFactor(1, 2);

    auto *split = new QSplitter(Qt::Vertical, this);
    split->setObjectName(QStringLiteral("queueAndPlan"));
    split->setChildrenCollapsible(false);
    split->addWidget(queueBox);
    split->addWidget(bottom);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);

    auto *hint = new QLabel(tr("Drop one or many checkpoints on a target to queue them; click a target to convert the "
                               "selected files to it instead (with none selected, to choose files). Nothing is written "
                               "until you press Convert All; every output is read back and verified."),
                            this);
    hint->setWordWrap(true);
    auto *l = new QVBoxLayout(this);
    l->setContentsMargins(8, 6, 8, 6);
    l->setSpacing(4);
    l->addWidget(hint);
    l->addLayout(targets);
    l->addWidget(split, 1);
}

void ConversionView::fitQueueColumns()
{
    // Widths for the words each column usually holds, measured in the view's font: at 1024 pixels
    // all six fit side by side, longer texts elided (whole in their tooltips), the output's name
    // taking what is left.
    const QFontMetrics fm = m_queueView->fontMetrics();
    const int pad = 2 * m_queueView->style()->pixelMetric(QStyle::PM_FocusFrameHMargin, nullptr, m_queueView) + 12;
    auto fit = [&](int column, const QString &sample) {
        const int header = fm.horizontalAdvance(m_queue->headerData(column, Qt::Horizontal).toString()) + pad + 8;
        m_queueView->setColumnWidth(column, std::max(header, fm.horizontalAdvance(sample) + pad));
    };
    fit(ConversionQueueModel::FileColumn, QStringLiteral("predict_cnn_package.pth"));
    fit(ConversionQueueModel::TargetColumn, convertTargetLabel(PaneTarget::Inference));
    fit(ConversionQueueModel::StatusColumn, ConversionQueueModel::statusText(ConversionQueueItem::Status::Invalid));
    fit(ConversionQueueModel::PlanColumn, QStringLiteral("will write 16 tensors \u00b7 5 values"));
    fit(ConversionQueueModel::ResultColumn, QStringLiteral("verified (16 tensors read back)"));
    fit(ConversionQueueModel::OutputColumn, QStringLiteral("state_dict_full_model.pth"));
    // The plan ("will write 16 tensors · 5 values not written") takes the width left over, so a
    // wider window shows more of it; the others keep theirs (and can be dragged).
    m_queueView->horizontalHeader()->setStretchLastSection(false);
    m_queueView->horizontalHeader()->setSectionResizeMode(ConversionQueueModel::PlanColumn, QHeaderView::Stretch);
}

QWidget *ConversionView::buildOptions()
{
    auto *page = new QWidget(this);
    auto *form = new QFormLayout;
    auto add = [this](const QString &name, QWidget *w) {
        w->setObjectName(name);
        m_fields[name] = w;
        return w;
    };
    auto line = [this, add](const QString &name, const QString &placeholder) {
        auto *e = new QLineEdit(this);
        e->setPlaceholderText(placeholder);
        add(name, e);
        connect(e, &QLineEdit::textEdited, this, [this, name] { applyPanel(name); });
        return e;
    };
    auto check = [this, add](const QString &name, const QString &text) {
        auto *c = new QCheckBox(text, this);
        add(name, c);
        connect(c, &QCheckBox::toggled, this, [this, name] { applyPanel(name); });
        return c;
    };
    // A path field and its browse button ("…") as one row, enabled and disabled together: `choose`
    // is given the field's text and returns the path picked (empty: cancelled), shown with its name
    // in view rather than its folders.
    auto browsedRow = [this](QWidget *parent, const QString &name, QLineEdit *field, const QString &buttonName,
                             const QString &rowTip, std::function<QString(const QString &)> choose) {
        auto *row = new QWidget(parent);
        auto *layout = new QHBoxLayout(row);
        layout->setContentsMargins(0, 0, 0, 0);
        auto *browse = new QToolButton(row);
        browse->setText(QStringLiteral("\u2026"));
        browse->setObjectName(buttonName);
        connect(browse, &QToolButton::clicked, this, [this, name, field, choose = std::move(choose)] {
            const QString picked = choose(field->text().trimmed());
            if (picked.isEmpty())
                return;
            field->setText(picked);
            field->setCursorPosition(field->text().size());
            applyPanel(name);
        });
        layout->addWidget(field, 1);
        layout->addWidget(browse);
        row->setToolTip(rowTip);  // what the button beside the field does
        return row;
    };

    auto *editsBox = new QGroupBox(tr("Edits"), page);
    auto *edits = new QFormLayout(editsBox);
    m_target = new QComboBox(this);
    for (PaneTarget t : {PaneTarget::StateDict, PaneTarget::Checkpoint, PaneTarget::Inference, PaneTarget::FullModel,
                         PaneTarget::Safetensors, PaneTarget::TorchScript})
        m_target->addItem(convertTargetLabel(t), static_cast<int>(t));
    add(QStringLiteral("target"), m_target);
    connect(m_target, &QComboBox::currentIndexChanged, this, [this] {
        enableFieldsFor(static_cast<PaneTarget>(m_target->currentData().toInt()));
        applyPanel(QStringLiteral("target"));
    });
    edits->addRow(tr("Convert to:"), m_target);
    m_dtype = new QComboBox(this);
    m_dtype->addItem(tr("keep as stored"), QString());
    for (const char *d : {"float16", "bfloat16", "float32"})
        m_dtype->addItem(QString::fromLatin1(d), QString::fromLatin1(d));
    add(QStringLiteral("dtype"), m_dtype);
    connect(m_dtype, &QComboBox::currentIndexChanged, this, [this] { applyPanel(QStringLiteral("dtype")); });
    edits->addRow(tr("Data type:"), m_dtype);
    m_strip = new QComboBox(this);
    m_strip->setEditable(true);
    m_strip->setInsertPolicy(QComboBox::NoInsert);
    add(QStringLiteral("stripPrefix"), m_strip);
    m_strip->lineEdit()->setPlaceholderText(tr("none"));
    connect(m_strip, &QComboBox::currentTextChanged, this, [this] { applyPanel(QStringLiteral("stripPrefix")); });
    edits->addRow(tr("Strip prefix:"), m_strip);
    edits->addRow(tr("Add prefix:"), line(QStringLiteral("addPrefix"), tr("none")));
    edits->addRow(tr("Drop keys:"), line(QStringLiteral("drops"), tr("glob patterns, comma-separated")));
    edits->addRow(check(QStringLiteral("ema"), tr("Use the EMA weights as the model's")));
    edits->addRow(check(QStringLiteral("dropOptimizer"), tr("Drop optimizer, scheduler and RNG state")));
    edits->addRow(check(QStringLiteral("keepDevice"), tr("Keep saved device tags")));
    edits->addRow(check(QStringLiteral("applyPruning"), tr("Apply the pruning (prune.remove: weight = weight_orig × weight_mask)")));
    // A PEFT LoRA adapter merged into the weights (`ckpt convert --merge-lora`): its folder, typed
    // or chosen with the button beside it.
    auto *lora = line(QStringLiteral("loraAdapter"), tr("none (a PEFT adapter folder)"));
    lora->setToolTip(tr("A PEFT LoRA adapter (the folder save_pretrained wrote, or its adapter_model file with "
                        "adapter_config.json beside it), merged into the weights as PEFT's merge_and_unload does: "
                        "each weight it targets becomes W + scaling × B·A"));
    auto *loraRow = browsedRow(editsBox, QStringLiteral("loraAdapter"), lora, QStringLiteral("browseLoraAdapter"),
                               tr("Choose a PEFT adapter folder"), [this](const QString &text) {
                                   return QFileDialog::getExistingDirectory(this, tr("LoRA Adapter Folder"), text);
                               });
    edits->addRow(tr("Merge LoRA adapter:"), loraRow);
    auto *arch = line(QStringLiteral("architecture"), tr("full model, TorchScript: JSON layer list"));
    arch->setToolTip(tr("The layers a full model or a TorchScript module is built of when the file holds only "
                        "weights, as a JSON list: "
                        "[{\"type\": \"Conv2d\", \"name\": \"features.0\", \"padding\": 1}, {\"type\": \"ReLU\"}, …]. "
                        "Empty: the Architecture file below (TorchScript), else the file's own module, else the "
                        "package's own architecture, else a chain of Linear layers with the activation below "
                        "between."));
    edits->addRow(tr("Architecture:"), arch);
    // A TorchScript file of the same model (`ckpt convert --arch`): the field and its browse
    // button ("…", as the output folder's) are one row, enabled and disabled together.
    auto *script = line(QStringLiteral("architectureScript"), tr("scripted model (.pt)"));
    script->setToolTip(tr("A TorchScript file of the same model (torch.jit.save of it, with any weights), for the "
                          "TorchScript target: the converted file's weights are loaded into it by name and exported "
                          "with it, exactly; for a model no list of standard layers describes. Give this or the "
                          "Architecture field, not both."));
    auto *scriptRow = browsedRow(editsBox, QStringLiteral("architectureScript"), script,
                                 QStringLiteral("browseArchitectureScript"), tr("Choose a TorchScript file of the model"),
                                 [this](const QString &text) {
                                     return QFileDialog::getOpenFileName(
                                         this, tr("TorchScript File of the Model"), QFileInfo(text).absolutePath(),
                                         tr("TorchScript (*.pt *.pth *.zip);;All files (*)"));
                                 });
    edits->addRow(tr("Architecture file:"), scriptRow);
    m_activation = new QComboBox(this);
    for (const char *a : {"relu", "tanh", "sigmoid", "gelu", "silu", "elu", "leaky_relu", "none"})
        m_activation->addItem(QString::fromLatin1(a), QString::fromLatin1(a));
    m_activation->setToolTip(tr("Between the Linear layers of a chain read from the weights (the file has no "
                                "architecture and the Architecture field is empty)"));
    add(QStringLiteral("activation"), m_activation);
    connect(m_activation, &QComboBox::currentIndexChanged, this, [this] { applyPanel(QStringLiteral("activation")); });
    edits->addRow(tr("Activation:"), m_activation);

    auto *valuesBox = new QGroupBox(tr("Values (from the file; edit to replace)"), page);
    auto *values = new QFormLayout(valuesBox);
    values->addRow(tr("Model config:"), line(QStringLiteral("config"), tr("JSON")));
    values->addRow(tr("Class names:"), line(QStringLiteral("classNames"), tr("cat, dog or a JSON list")));
    values->addRow(tr("Preprocessing:"), line(QStringLiteral("preprocessing"), tr("not in the file; JSON {\"mean\", \"std\"}")));
    values->addRow(tr("Epoch:"), line(QStringLiteral("epoch"), tr("not in the file")));
    values->addRow(tr("Training loss:"), line(QStringLiteral("trainLoss"), tr("not in the file")));
    values->addRow(tr("Validation loss:"), line(QStringLiteral("valLoss"), tr("not in the file")));

    auto *outBox = new QGroupBox(tr("Output"), page);
    auto *outs = new QFormLayout(outBox);
    auto *dir = line(QStringLiteral("outDir"), tr("beside each input"));
    auto *browse = new QToolButton(this);
    browse->setText(QStringLiteral("\u2026"));
    connect(browse, &QToolButton::clicked, this, [this, dir] {
        // The folder typed, else the last written to, else the selected file's own.
        const int row = currentRow();
        const QString typed = dir->text().trimmed();
        const QString start = !typed.isEmpty() && QFileInfo(typed).isDir()
                                  ? typed
                                  : dialogfolders::outputStart(row >= 0 ? m_queue->item(row).input : QString());
        const QString d = QFileDialog::getExistingDirectory(this, tr("Output Folder"), start);
        if (d.isEmpty())
            return;
        dialogfolders::rememberOutput(d);
        dir->setText(d);
        applyPanel(QStringLiteral("outDir"));
    });
    auto *dirRow = new QHBoxLayout;
    dirRow->addWidget(dir);
    dirRow->addWidget(browse);
    outs->addRow(tr("Folder:"), dirRow);
    // Hub shards with an index (`ckpt convert --max-shard-size`), read by the engine's own parser.
    auto *shard = line(QStringLiteral("maxShardSize"), tr("one file (or 5GB, 500MB, 2GiB)"));
    shard->setToolTip(tr("Split the output into shards of at most this many tensor bytes, named and indexed as "
                         "transformers' save_pretrained does (model-00001-of-00003.bin and model.bin.index.json): "
                         "bytes, or a whole number with KB, MB, GB (powers of 10) or KiB, MiB, GiB (powers of 2). "
                         "Empty: one file"));
    outs->addRow(tr("Max shard size:"), shard);
    outs->addRow(check(QStringLiteral("sidecar"), tr("Write the metadata JSON sidecar")));

    auto *l = new QVBoxLayout(page);
    l->addWidget(new QLabel(tr("<b>Options of the selected files</b>"), page));
    l->addWidget(editsBox);
    l->addWidget(valuesBox);
    l->addWidget(outBox);
    l->addStretch(1);
    Q_UNUSED(form);
    delete form;
    return page;
}

ConversionDropTarget *ConversionView::dropTarget(PaneTarget target) const
{
    const auto it = m_targets.find(target);
    return it == m_targets.end() ? nullptr : it->second;
}

QWidget *ConversionView::optionWidget(const QString &name) const
{
    const auto it = m_fields.find(name);
    return it == m_fields.end() ? nullptr : it->second;
}

void ConversionView::addFiles(const QStringList &paths, PaneTarget target)
{
    m_lastTarget = target;
    int first = -1;
    for (const QString &p : paths) {
        if (p.isEmpty())
            continue;
        ConversionQueueItem item;
        item.input = QFileInfo(p).absoluteFilePath();
        item.target = target;
        // The generic options as last set; the values a file carries start from its source's.
        item.settings.dtype = m_defaults.dtype;
        item.settings.addPrefix = m_defaults.addPrefix;
        item.settings.ema = m_defaults.ema;
        item.settings.dropOptimizer = m_defaults.dropOptimizer;
        item.settings.keepDevice = m_defaults.keepDevice;
        item.settings.applyPruning = m_defaults.applyPruning;
        item.settings.sidecar = m_defaults.sidecar;
        item.settings.drops = m_defaults.drops;
        item.settings.outDir = m_defaults.outDir;
        item.settings.maxShardSize = m_defaults.maxShardSize;
        item.settings.activation = m_defaults.activation;
        item.output = outputPathFor(item.input, item.settings, target);
        const int row = m_queue->append(std::move(item));
        if (first < 0)
            first = row;
        requestPlan(row);
    }
    if (first >= 0)
        selectRow(first);
}

void ConversionView::requestPlan(int row)
{
    ConversionQueueItem item = m_queue->item(row);
    if (item.status == ConversionQueueItem::Status::Running || item.status == ConversionQueueItem::Status::Queued)
        return;
    item.status = ConversionQueueItem::Status::Planning;
    item.result.clear();
    item.progress = 0;
    const int generation = ++item.planGeneration;
    m_queue->update(row, item);
    const quint64 id = item.id;
    auto *watcher = new QFutureWatcher<PlanOutcome>(this);
    connect(watcher, &QFutureWatcher<PlanOutcome>::finished, this, [this, watcher, id, generation] {
        watcher->deleteLater();
        const int r = m_queue->rowOf(id);
        if (r < 0 || m_queue->item(r).planGeneration != generation)
            return;  // removed, or replanned since: this result is stale
        const PlanOutcome out = watcher->result();
        ConversionQueueItem it = m_queue->item(r);
        if (out.document)
            it.document = out.document;
        it.sourceValues = out.sourceValues;
        it.prefixes = out.prefixes;
        if (!out.output.isEmpty())
            it.output = out.output;
        it.plan = out.plan;
        it.scriptExport = out.scriptExport;
        it.notes = out.notes;
        it.status = out.plan ? ConversionQueueItem::Status::Ready : ConversionQueueItem::Status::Invalid;
        it.result = out.error;  // the plan column says what the plan leaves out
        m_queue->update(r, it);
        if (it.target == PaneTarget::TorchScript)
            setComputeUnavailable(out.computeError);
        Q_EMIT planned(r);
    });
    watcher->setFuture(
        QtConcurrent::run(jobPool(), planFile, item.input, item.document, item.target, item.settings, m_probe,
                          m_architectures));
}

void ConversionView::showEvent(QShowEvent *event)
{
    QWidget::showEvent(event);
    probeCompute();
}

void ConversionView::probeCompute()
{
    if (m_probed)
        return;
    m_probed = true;
    auto *watcher = new QFutureWatcher<QString>(this);
    connect(watcher, &QFutureWatcher<QString>::finished, this, [this, watcher] {
        watcher->deleteLater();
        setComputeUnavailable(watcher->result());
    });
    watcher->setFuture(QtConcurrent::run(jobPool(), probeFailure, m_probe));
}

void ConversionView::setComputeUnavailable(const QString &reason)
{
    if (ConversionDropTarget *card = dropTarget(PaneTarget::TorchScript))
        card->setUnavailable(reason);
    const int index = m_target->findData(static_cast<int>(PaneTarget::TorchScript));
    m_target->setItemText(index, reason.isEmpty() ? convertTargetLabel(PaneTarget::TorchScript)
                                                  : tr("%1 (needs LibTorch)").arg(convertTargetLabel(PaneTarget::TorchScript)));
    m_target->setItemData(index, reason.isEmpty() ? QVariant() : QVariant(computeUnavailableText(reason)), Qt::ToolTipRole);
}

void ConversionView::activateTarget(PaneTarget target)
{
    if (selectedRows().isEmpty()) {
        const QStringList files =
            QFileDialog::getOpenFileNames(this, tr("Files to Convert"), dialogfolders::openStart(), kFileFilter);
        if (!files.isEmpty()) {
            dialogfolders::rememberOpened(files.first());
            addFiles(files, target);
        }
        return;
    }
    // As choosing it under "Convert to": the selected files are retargeted and planned again.
    {
        const QSignalBlocker block(m_target);
        m_target->setCurrentIndex(m_target->findData(static_cast<int>(target)));
    }
    applyPanel(QStringLiteral("target"));
    enableFieldsFor(target);
}

QList<int> ConversionView::selectedRows() const
{
    QList<int> rows;
    for (const QModelIndex &i : m_queueView->selectionModel()->selectedRows())
        rows << i.row();
    std::sort(rows.begin(), rows.end());
    return rows;
}

int ConversionView::currentRow() const
{
    const QList<int> rows = selectedRows();
    return rows.isEmpty() ? -1 : rows.first();
}

void ConversionView::selectRow(int row)
{
    m_queueView->selectionModel()->select(m_queue->index(row, 0),
                                          QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    m_queueView->setCurrentIndex(m_queue->index(row, 0));
}

void ConversionView::showSelected()
{
    const int row = currentRow();
    if (row < 0) {
        m_plan->setPlan(nullptr);
        m_summary->clear();
        return;
    }
    const ConversionQueueItem &item = m_queue->item(row);
    loadPanel(item);
    if (m_plan->plan() != item.plan)
        m_plan->setPlan(item.plan);
    using S = ConversionQueueItem::Status;
    if (!item.plan) {
        m_summary->setText(item.status == S::Planning ? tr("Reading and planning %1\u2026").arg(QFileInfo(item.input).fileName().toHtmlEscaped())
                                                      : tr("<span style=\"color:#c03030\">%1</span>").arg(item.result.toHtmlEscaped()));
        return;
    }
    const ConversionPlan &p = *item.plan;
    // The counts of the model's tensors, and apart from them the other entries a checkpoint
    // carries (EMA weights, optimizer and RNG state), so the first is not read as everything.
    QString text = tr("%1 \u2192 <b>%2</b> (%3)<br>model tensors: %4 kept, %5 dropped; other entries: %6 carried, %7 "
                      "not written; model tensors %8 \u2192 %9")
                       .arg(QFileInfo(item.input).fileName().toHtmlEscaped(),
                            QFileInfo(QString::fromStdString(p.shards.empty() ? p.output : p.indexPath)).fileName().toHtmlEscaped(),
                            convertTargetLabel(item.target))
                       .arg(p.kept.size())
                       .arg(p.dropped.size())
                       .arg(p.carried.size())
                       .arg(p.lost.size())
                       .arg(valuetext::bytes(static_cast<qint64>(p.bytesBefore)), valuetext::bytes(static_cast<qint64>(p.bytesAfter)));
    if (p.castTo)
        text += tr("<br>cast to %1: %2 values, %3 overflow to \u00b1inf, %4 become subnormal, %5 become zero")
                    .arg(QString::fromStdString(std::string(dtypeName(*p.castTo))))
                    .arg(p.cast.values)
                    .arg(p.cast.overflow)
                    .arg(p.cast.subnormal)
                    .arg(p.cast.zeroed);
    if (!p.shards.empty())
        text += tr("<br>in %1 shards (listed first below) of %2 in all, which the index above names")
                    .arg(p.shards.size())
                    .arg(valuetext::bytes(static_cast<qint64>(p.totalSize)));
    if (!p.sidecarPath.empty())
        text += tr("<br>also writes %1").arg(QFileInfo(QString::fromStdString(p.sidecarPath)).fileName().toHtmlEscaped());
    if (item.scriptExport) {
        const Architecture &a = item.scriptExport->architecture;
        text += tr("<br>architecture: %1 (%2)")
                    .arg(architectureSourceTitle(a.source), a.exact ? tr("exact") : tr("not exact"));
        for (const auto &assumption : a.assumptions)
            text += tr("<br>assumed: %1").arg(QString::fromStdString(assumption).toHtmlEscaped());
    }
    for (const QString &note : item.notes)
        text += tr("<br>note: %1").arg(note.toHtmlEscaped());
    m_summary->setText(text);
}

void ConversionView::loadPanel(const ConversionQueueItem &item)
{
    m_loadingPanel = true;
    const ConversionSettings &s = item.settings;
    m_dtype->setCurrentIndex(std::max(0, m_dtype->findData(s.dtype)));
    m_target->setCurrentIndex(std::max(0, m_target->findData(static_cast<int>(item.target))));
    // Rebuilt only when the offered prefixes change, so that typing in it keeps the cursor.
    QStringList offered{QString()};
    offered << item.prefixes;
    QStringList shown;
    for (int i = 0; i < m_strip->count(); ++i)
        shown << m_strip->itemText(i);
    if (shown != offered) {
        m_strip->clear();
        m_strip->addItems(offered);
    }
    if (m_strip->currentText() != s.stripPrefix)
        m_strip->setCurrentText(s.stripPrefix);
    auto setText = [this](const QString &name, const QString &text) {
        auto *e = static_cast<QLineEdit *>(m_fields[name]);
        if (e->text() != text) {
            e->setText(text);
            e->setCursorPosition(0);  // long JSON reads from its start
        }
    };
    setText(QStringLiteral("addPrefix"), s.addPrefix);
    setText(QStringLiteral("drops"), s.drops.join(QStringLiteral(", ")));
    setText(QStringLiteral("outDir"), s.outDir);
    setText(QStringLiteral("architecture"), s.architecture);
    setText(QStringLiteral("architectureScript"), s.architectureScript);
    setText(QStringLiteral("loraAdapter"), s.loraAdapter);
    setText(QStringLiteral("maxShardSize"), s.maxShardSize);
    if (auto *e = static_cast<QLineEdit *>(m_fields[QStringLiteral("architectureScript")]); !e->hasFocus())
        e->setCursorPosition(static_cast<int>(e->text().size()));  // a path reads from its file's name
    m_activation->setCurrentIndex(std::max(0, m_activation->findData(s.activation)));
    for (const auto &[name, v] : valueFields(s))
        setText(name, *v ? **v : item.sourceValues.value(name));
    // A box the target has no use for shows unchecked (TorchScript keeps no device tags).
    for (const auto &[name, b] : checkFields(s))
        static_cast<QCheckBox *>(m_fields[name])
            ->setChecked(*b && (name == QLatin1String("ema") || targetUsesField(item.target, QString(name))));
    auto *sidecar = static_cast<QCheckBox *>(m_fields[QStringLiteral("sidecar")]);
    sidecar->setChecked((s.sidecar || item.target == PaneTarget::Inference) && targetUsesField(item.target, u"sidecar"));
    enableFieldsFor(item.target);
    m_loadingPanel = false;
}

void ConversionView::enableFieldsFor(PaneTarget target)
{
    QStringList names{QStringLiteral("architecture"), QStringLiteral("architectureScript"),
                      QStringLiteral("loraAdapter"), QStringLiteral("maxShardSize"), QStringLiteral("activation"), QStringLiteral("sidecar"), QStringLiteral("keepDevice"),
                      QStringLiteral("dropOptimizer")};
    for (const auto &entry : valueFields(m_defaults))
        names << entry.first;
    for (const QString &name : std::as_const(names)) {
        const auto it = m_fields.find(name);
        if (it == m_fields.end())
            continue;
        QWidget *w = it->second;
        // A field with a button beside it sits in a row of its own, enabled and explained as one.
        QWidget *row = w;
        if (QWidget *p = w->parentWidget(); p && !qobject_cast<QFormLayout *>(p->layout()))
            row = p;
        // An inference package always has its sidecar: checked, and not for the user to clear.
        const bool used = targetUsesField(target, name) && !(name == QLatin1String("sidecar") && target == PaneTarget::Inference);
        for (QWidget *tipped : {w, row})
            if (!tipped->property("usedToolTip").isValid())
                tipped->setProperty("usedToolTip", tipped->toolTip());
        const bool script = name == QLatin1String("architectureScript");
        const QString tip =
            used ? w->property("usedToolTip").toString()
            : name == QLatin1String("sidecar") && target == PaneTarget::Inference
                ? tr("An inference package always has its metadata JSON sidecar")
            : name == QLatin1String("maxShardSize")
                ? tr("The %1 target writes one file: shards are for the State dict and Safetensors targets")
                      .arg(convertTargetLabel(target))
            : target == PaneTarget::TorchScript
                ? tr("A TorchScript file holds the module and its weights only")
            : script && target == PaneTarget::FullModel
                ? tr("A full model is a pickled tree of standard layers, which a TorchScript file cannot become: "
                     "give its layers in the Architecture field (a TorchScript file is for the TorchScript target)")
            : script ? tr("Not written by the %1 target: a TorchScript file of the model is for the TorchScript target")
                           .arg(convertTargetLabel(target))
                     : tr("Not written by the %1 target").arg(convertTargetLabel(target));
        row->setEnabled(used);
        w->setToolTip(tip);
        if (row != w)  // the button beside the field says why too
            row->setToolTip(used ? row->property("usedToolTip").toString() : tip);
        if (auto *form = qobject_cast<QFormLayout *>(row->parentWidget() ? row->parentWidget()->layout() : nullptr))
            if (QWidget *label = form->labelForField(row))
                label->setEnabled(used);
    }
}

void ConversionView::applyPanel(const QString &field)
{
    if (m_loadingPanel)
        return;
    const auto target = static_cast<PaneTarget>(m_target->currentData().toInt());
    if (const auto it = m_fields.find(field); it != m_fields.end() && !it->second->isEnabled())
        return;  // a field the target does not write
    auto text = [this](const QString &name) { return static_cast<QLineEdit *>(m_fields[name])->text(); };
    auto checked = [this](const QString &name) { return static_cast<QCheckBox *>(m_fields[name])->isChecked(); };
    auto apply = [&](ConversionSettings &s, bool generic) {
        if (field == QLatin1String("dtype"))
            s.dtype = m_dtype->currentData().toString();
        else if (field == QLatin1String("stripPrefix") && !generic)
            s.stripPrefix = m_strip->currentText();
        else if (field == QLatin1String("addPrefix"))
            s.addPrefix = text(field);
        else if (field == QLatin1String("drops")) {
            s.drops.clear();
            for (const QString &d : text(field).split(QLatin1Char(','), Qt::SkipEmptyParts))
                if (!d.trimmed().isEmpty())
                    s.drops << d.trimmed();
        } else if (field == QLatin1String("outDir"))
            s.outDir = text(field).trimmed();
        else if (field == QLatin1String("architecture"))
            s.architecture = text(field);
        else if (field == QLatin1String("architectureScript"))
            s.architectureScript = text(field);
        else if (field == QLatin1String("loraAdapter"))
            s.loraAdapter = text(field);
        else if (field == QLatin1String("maxShardSize"))
            s.maxShardSize = text(field);
        else if (field == QLatin1String("activation"))
            s.activation = m_activation->currentData().toString();
        for (const auto &[name, b] : checkFields(s))
            if (field == name)
                *b = checked(field);
        if (generic)
            return;  // the values a file carries are its own
        for (const auto &[name, v] : valueFields(s))
            if (field == name)
                *v = text(field);
    };
    apply(m_defaults, true);
    if (field == QLatin1String("target"))
        m_lastTarget = target;
    using S = ConversionQueueItem::Status;
    for (int row : selectedRows()) {
        ConversionQueueItem item = m_queue->item(row);
        if (item.status == S::Running || item.status == S::Queued)
            continue;
        apply(item.settings, false);
        if (field == QLatin1String("target"))
            item.target = target;
        item.output = outputPathFor(item.input, item.settings, item.target);
        ++item.planGeneration;  // a plan asked before this edit is stale
        item.status = S::Planning;
        item.plan.reset();
        m_loadingPanel = true;  // the panel already shows what was typed
        m_queue->update(row, item);
        m_loadingPanel = false;
    }
    m_replan->start();
}

void ConversionView::replanSelection()
{
    for (int row : selectedRows())
        if (m_queue->item(row).status == ConversionQueueItem::Status::Planning)
            requestPlan(row);
}

void ConversionView::removeSelected()
{
    const QList<int> rows = selectedRows();
    for (auto it = rows.rbegin(); it != rows.rend(); ++it)
        if (m_queue->item(*it).id != m_running && m_queue->item(*it).status != ConversionQueueItem::Status::Queued)
            m_queue->remove(*it);
    showSelected();
    updateButtons();
}

void ConversionView::runQueue()
{
    using S = ConversionQueueItem::Status;
    for (int row = 0; row < m_queue->rowCount(); ++row) {
        ConversionQueueItem item = m_queue->item(row);
        if (!item.plan || item.status == S::Planning || item.status == S::Running || item.status == S::Queued ||
            item.status == S::Done || item.status == S::Invalid)
            continue;
        item.status = S::Queued;
        item.progress = 0;
        item.result.clear();
        m_queue->update(row, item);
    }
    if (!m_running)
        startNext();
}

void ConversionView::startNext()
{
    using S = ConversionQueueItem::Status;
    int row = -1;
    for (int r = 0; r < m_queue->rowCount() && row < 0; ++r)
        if (m_queue->item(r).status == S::Queued)
            row = r;
    if (row < 0) {
        updateButtons();
        Q_EMIT queueFinished();
        return;
    }
    ConversionQueueItem item = m_queue->item(row);
    ConvertOptions options;
    try {
        options = withLoraCompute(toConvertOptions(item.settings, item.target));
    } catch (const std::exception &e) {
        item.status = S::Failed;
        item.result = panelWording(e.what(), item.target);
        m_queue->update(row, item);
        Q_EMIT itemFinished(row);
        startNext();
        return;
    }
    const QString sidecar = QString::fromStdString(item.plan->sidecarPath);
    // Every file the row writes: its output (a sharded one's index) and sidecar, and its shards.
    QStringList writes{item.output, sidecar};
    for (const auto &shard : item.plan->shards)
        writes << QString::fromStdString(shard.path);
    // A previous sharded output under this name, whose files the new one does not name, is replaced
    // (those files removed) only as an existing output is: when the question says yes.
    for (const auto &f : item.plan->superseded)
        writes << QString::fromStdString(f);
    // Every file of the queue is an input of this run, as all the files given to one `ckpt convert`
    // are: an output that names another row's input (x.pth -> x_state_dict.pth while
    // x_state_dict.pth waits in the queue) is refused before any question about replacing it, and
    // the writer is told of them all so that no later path can write over one either.
    for (int r = 0; r < m_queue->rowCount(); ++r) {
        if (r == row)
            continue;
        const QString other = m_queue->item(r).input;
        options.protect(other.toStdString());
        const QFileInfo otherInfo(other);
        for (const QString &target : std::as_const(writes)) {
            if (target.isEmpty() || !QFileInfo::exists(target) || !otherInfo.exists())
                continue;
            if (QFileInfo(target).canonicalFilePath() == otherInfo.canonicalFilePath()) {
                item.status = S::Failed;
                item.result = tr("%1: is the input of row %2 of the queue; it is never overwritten")
                                  .arg(QDir::toNativeSeparators(target))
                                  .arg(r + 1);
                m_queue->update(row, item);
                Q_EMIT itemFinished(row);
                startNext();
                return;
            }
        }
    }
    const auto existing = std::find_if(writes.cbegin(), writes.cend(),
                                       [](const QString &p) { return !p.isEmpty() && QFileInfo::exists(p); });
    if (existing != writes.cend()) {
        const QString which = *existing;
        QString question = overwriteQuestion(which, item.id);
        if (const auto n = static_cast<int>(item.plan->superseded.size()); n > 0)
            question += QLatin1Char('\n') +
                        tr("The previous output under this name is replaced whole: its %1 that the new one "
                           "does not name are removed once it is written.")
                            .arg(valuetext::counted(n, tr("file"), tr("files")));
        if (!m_overwrite || !m_overwrite(which, question)) {
            item.status = S::Skipped;
            item.result = tr("%1 exists; kept as it was").arg(QFileInfo(which).fileName());
            m_queue->update(row, item);
            Q_EMIT itemFinished(row);
            startNext();
            return;
        }
        options.force(true);
    }
    // The output folder (--out-dir in the panel) that is not there yet is made, as `ckpt convert
    // --out-dir` makes it: only the folders missing, and the row says which.
    QString madeFolder;
    const QString folder = QFileInfo(item.output).absolutePath();
    // (A file of that name is left to the writer, which says it cannot make its temporary file there.)
    if (!item.settings.outDir.isEmpty() && !QFileInfo::exists(folder)) {
        QString first = folder;  // the outermost folder missing
        while (!QFileInfo(QFileInfo(first).absolutePath()).exists() && QFileInfo(first).absolutePath() != first)
            first = QFileInfo(first).absolutePath();
        if (!QDir().mkpath(folder)) {
            item.status = S::Failed;
            item.result = tr("%1: cannot make the folder").arg(folder);
            m_queue->update(row, item);
            Q_EMIT itemFinished(row);
            startNext();
            return;
        }
        madeFolder = first == folder ? tr("made the folder %1, which did not exist").arg(folder)
                                     : tr("made the folders %1 down to %2, which did not exist").arg(first, folder);
        item.notes = QStringList{madeFolder};
    }
    item.status = S::Running;
    item.progress = item.scriptExport ? -1 : 0;  // building a module reports no fraction: a busy bar
    m_queue->update(row, item);
    m_running = item.id;
    m_cancel = std::make_shared<std::atomic_bool>(false);
    m_runWatcher = new QFutureWatcher<ConversionRun>(this);
    connect(m_runWatcher, &QFutureWatcher<ConversionRun>::progressValueChanged, this, [this](int value) {
        const int r = m_queue->rowOf(m_running);
        if (r < 0)
            return;
        ConversionQueueItem it = m_queue->item(r);
        it.progress = value / 1000.0;
        m_queue->update(r, it);
    });
    connect(m_runWatcher, &QFutureWatcher<ConversionRun>::finished, this, &ConversionView::finishRun);
    const auto cancelFlag = m_cancel;
    const auto isCancelled = [cancelFlag, hook = m_cancelCheckHook] {
        if (hook)
            hook();
        return cancelFlag->load();
    };
    auto doc = item.document;
    auto plan = item.plan;
    auto script = item.scriptExport;
    const quint64 id = item.id;
    const PaneTarget target = item.target;
    m_runWatcher->setFuture(QtConcurrent::run(jobPool(), [doc, plan, script, options, cancelFlag, isCancelled, id, target, madeFolder](QPromise<ConversionRun> &promise) mutable {
        promise.setProgressRange(0, 1000);
        ConversionRun run;
        run.id = id;
        if (!madeFolder.isEmpty())
            run.notes << madeFolder;
        options.onProgress([&promise, isCancelled](double f) {
            promise.setProgressValue(static_cast<int>(f * 1000));
            return !isCancelled();
        });
        try {
            if (script) {
                // LibTorch builds the module (loaded on first use), then the file is written to a
                // temporary, read back, verified and renamed; a cancel is heard before writing.
                // The TorchScript file given as the architecture is an input: never written over,
                // as `ckpt convert` refuses an output that names one of its inputs.
                WriteOptions w = protectingInputs(*doc, options.overwrite);
                if (script->architecture.source == Architecture::Source::ScriptArchitecture)
                    w.protect(script->architecture.scriptPath);
                for (const auto &other : options.protectedPaths)
                    w.protect(other);
                std::vector<std::string> notes;
                run.result =
                    executeScriptExport(*script, w, &notes, isCancelled);
                for (const auto &n : notes)
                    run.notes << QString::fromStdString(n);
            } else {
                run.result = executeConversion(*doc, *plan, options);
                for (const auto &f : run.result.removed)
                    run.notes << tr("removed %1, of the previous output").arg(QString::fromStdString(f));
                for (const auto &f : run.result.notRemoved)
                    run.notes << tr("could not remove the previous output's %1").arg(QString::fromStdString(f));
            }
            run.ok = true;
        } catch (const std::exception &e) {
            run.error = panelWording(e.what(), target);
            run.cancelled = cancelFlag->load();
        }
        promise.addResult(run);
    }));
    updateButtons();
}

void ConversionView::finishRun()
{
    const ConversionRun run = m_runWatcher->result();
    m_runWatcher->deleteLater();
    m_runWatcher = nullptr;
    m_running = 0;
    m_cancel.reset();
    const int row = m_queue->rowOf(run.id);
    if (row >= 0) {
        using S = ConversionQueueItem::Status;
        ConversionQueueItem item = m_queue->item(row);
        if (run.ok) {
            item.status = S::Done;
            item.progress = 1;
            item.output = QString::fromStdString(run.result.output);
            rememberWritten(item);
            item.notes = run.notes;
            // Safetensors and TorchScript outputs are compared tensor by tensor, torch files
            // storage by storage.
            const bool st = item.target == PaneTarget::Safetensors || item.target == PaneTarget::TorchScript;
            item.result = run.result.verified
                              ? tr("verified (%1 read back)")
                                    .arg(valuetext::counted(static_cast<qint64>(run.result.tensorsVerified),
                                                            st ? tr("tensor") : tr("storage"),
                                                            st ? tr("tensors") : tr("storages")))
                              : tr("written, not verified");
        } else if (run.cancelled) {
            item.status = S::Cancelled;
            item.result = tr("cancelled; nothing was written");
        } else {
            item.status = S::Failed;
            item.result = run.error;
        }
        m_queue->update(row, item);
        Q_EMIT itemFinished(row);
    }
    startNext();
}

void ConversionView::rememberWritten(const ConversionQueueItem &item)
{
    QStringList paths{item.output};
    if (item.plan && !item.plan->sidecarPath.empty())
        paths << QString::fromStdString(item.plan->sidecarPath);
    for (const QString &p : paths) {
        const QFileInfo file(p);
        if (file.exists())
            m_written.insert(file.absoluteFilePath(),
                             {item.id, item.input, item.output, file.size(), file.lastModified()});
    }
}

QString ConversionView::overwriteQuestion(const QString &path, quint64 asking) const
{
    QString text = tr("%1 already exists.").arg(path);
    const QFileInfo file(path);
    // Said only while the file is as the row left it (something else may have written it since).
    if (const auto it = m_written.constFind(file.absoluteFilePath());
        it != m_written.constEnd() && file.size() == it->size && file.lastModified() == it->modified) {
        const QString what =
            tr("%1 \u2192 %2").arg(QFileInfo(it->input).fileName(), QFileInfo(it->output).fileName());
        const int row = m_queue->rowOf(it->id);
        if (it->id == asking)
            text += QLatin1Char('\n') + tr("This row wrote it earlier in this session (%1).").arg(what);
        else if (row >= 0)
            text += QLatin1Char('\n') +
                    tr("It was written by row %1 of this queue (%2).").arg(QString::number(row + 1), what);
        else
            text += QLatin1Char('\n') + tr("It was written earlier in this session by a conversion since removed "
                                             "from the queue (%1).")
                                              .arg(what);
    }
    return text + QLatin1Char('\n') + tr("Replace it with the converted file?");
}

void ConversionView::cancel()
{
    using S = ConversionQueueItem::Status;
    for (int row = 0; row < m_queue->rowCount(); ++row) {
        ConversionQueueItem item = m_queue->item(row);
        if (item.status == S::Queued) {
            item.status = S::Ready;
            m_queue->update(row, item);
        }
    }
    if (m_cancel)
        m_cancel->store(true);
    updateButtons();
}

void ConversionView::openSelected()
{
    const int row = currentRow();
    if (row >= 0 && m_queue->item(row).status == ConversionQueueItem::Status::Done)
        Q_EMIT openRequested(m_queue->item(row).output);
}

void ConversionView::revealSelected()
{
    const int row = currentRow();
    if (row >= 0 && m_queue->item(row).status == ConversionQueueItem::Status::Done)
        QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(m_queue->item(row).output).absolutePath()));
}

void ConversionView::updateButtons()
{
    using S = ConversionQueueItem::Status;
    bool runnable = false;
    for (int r = 0; r < m_queue->rowCount(); ++r) {
        const S s = m_queue->item(r).status;
        runnable = runnable || (m_queue->item(r).plan && s != S::Planning && s != S::Running && s != S::Queued &&
                                s != S::Done && s != S::Invalid);
    }
    m_runButton->setEnabled(runnable);
    m_cancelButton->setEnabled(m_running != 0);
    const int row = currentRow();
    const bool done = row >= 0 && m_queue->item(row).status == S::Done;
    m_openButton->setEnabled(done);
    m_revealButton->setEnabled(done);
    m_removeButton->setEnabled(row >= 0);
    const int selected = static_cast<int>(selectedRows().size());
    for (const auto &[target, card] : m_targets)
        card->setSelectionCount(selected);
}

} // namespace ckpt
