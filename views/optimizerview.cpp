#include "optimizerview.h"

#include "jobpool.h"
#include "checkpointfolder.h"
#include "document.h"
#include "metadata.h"
#include "optimizermap.h"
#include "optimizerstatemodel.h"
#include "statisticsjob.h"
#include "valueitems.h"
#include "valuetext.h"

#include <QComboBox>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTableView>
#include <QToolButton>
#include <QTreeView>
#include <QVBoxLayout>

#include <algorithm>
#include <QtConcurrent/QtConcurrentRun>

namespace ckpt {

namespace {

QLabel *heading(const QString &text, QWidget *parent)
{
    auto *l = new QLabel(text, parent);
    QFont f = l->font();
    f.setBold(true);
    l->setFont(f);
    return l;
}

QWidget *titled(const QString &title, QWidget *body, QWidget *parent, QWidget *extra = nullptr)
{
    auto *box = new QWidget(parent);
    auto *bar = new QHBoxLayout;
    bar->addWidget(heading(title, box));
    if (extra)
        bar->addWidget(extra);
    bar->addStretch(1);
    auto *l = new QVBoxLayout(box);
    l->setContentsMargins(0, 4, 0, 0);
    l->addLayout(bar);
    l->addWidget(body, 1);
    return box;
}

// Hyperparameters as Python prints them: small tuples of numbers inline ("(0.9, 0.999)").
QString hyperparameterText(const Value &v)
{
    if (v.isSequence() && !v.items().empty() && v.items().size() <= 8 &&
        std::all_of(v.items().begin(), v.items().end(), [](const ValuePtr &i) { return i && !i->isContainer(); })) {
        QStringList parts;
        for (const auto &i : v.items())
            parts << valuetext::preview(*i);
        const bool tuple = v.kind() == Value::Kind::Tuple;
        return (tuple ? QStringLiteral("(") : QStringLiteral("[")) + parts.join(QStringLiteral(", ")) +
               (tuple && parts.size() == 1 ? QStringLiteral(",)") : tuple ? QStringLiteral(")") : QStringLiteral("]"));
    }
    return valuetext::preview(v);
}

// What the file says about schedulers, scalers and RNG when it keeps none of their states.
QString noTrainingStateText(const Document &doc)
{
    QString text = OptimizerView::tr("This file keeps no learning-rate scheduler, gradient scaler or random-number "
                                     "generator state.");
    // A folder keeps them in files of their own beside the weights (a Trainer's scheduler.pt, scaler.pt).
    if (doc.folder)
        for (const auto &p : doc.folder->parts)
            if (p.role == "learning-rate scheduler state" || p.role == "mixed-precision gradient scaler state" ||
                p.role == "random number generator state")
                text += OptimizerView::tr(" The folder's %1 holds the %2 (its line in the Metadata view sums it up).")
                            .arg(QString::fromStdString(p.name), QString::fromStdString(p.role));
    const ValuePtr &root = doc.root;
    if (!root || !root->isDict())
        return text;
    for (const char *key : {"lr_schedulers", "lr_scheduler", "scheduler", "schedulers"}) {
        const auto v = root->get(key);
        if (!v)
            continue;
        if (v->isSequence() && v->items().empty())
            text += OptimizerView::tr(" Its '%1' is an empty list: the run configured no learning-rate scheduler "
                                      "(Lightning saves one entry per scheduler).")
                        .arg(QString::fromLatin1(key));
        else if (v->isNone())
            text += OptimizerView::tr(" Its '%1' is None: the run used no learning-rate scheduler.")
                        .arg(QString::fromLatin1(key));
        else if (v->isDict() && v->entries().empty())
            text += OptimizerView::tr(" Its '%1' is an empty dict.").arg(QString::fromLatin1(key));
    }
    return text;
}

} // namespace

OptimizerView::OptimizerView(QWidget *parent) : QWidget(parent)
{
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("optimizerSummary"));
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_summary->setWordWrap(true);  // a long reason or DeepSpeed sentence must not widen the window
    m_mapping = new QLabel(this);
    m_mapping->setObjectName(QStringLiteral("optimizerMapping"));
    m_mapping->setWordWrap(true);
    m_mapping->setTextFormat(Qt::PlainText);  // names parameters from the file
    m_mapping->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_groups = new QStandardItemModel(this);
    m_groupsView = new QTableView(this);
    m_groupsView->setObjectName(QStringLiteral("paramGroups"));
    m_groupsView->setModel(m_groups);
    m_groupsView->verticalHeader()->hide();
    m_groupsView->verticalHeader()->setDefaultSectionSize(m_groupsView->fontMetrics().height() + 6);
    m_groupsView->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_groupsView->horizontalHeader()->setStretchLastSection(true);

    m_state = new OptimizerStateModel(this);
    m_stateProxy = new QSortFilterProxyModel(this);
    m_stateProxy->setSourceModel(m_state);
    m_stateProxy->setSortRole(OptimizerStateModel::SortRole);
    m_stateView = new QTableView(this);
    m_stateView->setObjectName(QStringLiteral("optimizerState"));
    m_stateView->setModel(m_stateProxy);
    m_stateView->verticalHeader()->hide();
    m_stateView->verticalHeader()->setDefaultSectionSize(m_stateView->fontMetrics().height() + 6);
    m_stateView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_stateView->setAlternatingRowColors(true);
    m_stateView->setSortingEnabled(true);
    m_stateView->horizontalHeader()->setSortIndicatorClearable(true);
    m_stateView->sortByColumn(-1, Qt::AscendingOrder);
    m_stateView->horizontalHeader()->setStretchLastSection(true);
    m_progress = new QProgressBar(this);
    m_progress->setObjectName(QStringLiteral("optimizerStatisticsProgress"));
    m_progress->setMaximumWidth(140);
    m_progress->setFormat(tr("norms %v/%m"));
    m_progress->hide();
    m_cancel = new QToolButton(this);
    m_cancel->setObjectName(QStringLiteral("optimizerStatisticsCancel"));
    m_cancel->setText(tr("Cancel"));
    m_cancel->hide();
    connect(m_cancel, &QToolButton::clicked, this, &OptimizerView::cancelStatistics);
    auto *stateExtra = new QWidget(this);
    auto *stateExtraLayout = new QHBoxLayout(stateExtra);
    stateExtraLayout->setContentsMargins(0, 0, 0, 0);
    stateExtraLayout->addWidget(m_progress);
    stateExtraLayout->addWidget(m_cancel);

    m_training = new QStandardItemModel(this);
    m_trainingView = new QTreeView(this);
    m_trainingView->setObjectName(QStringLiteral("trainingStates"));
    m_trainingView->setModel(m_training);
    m_trainingView->setUniformRowHeights(true);
    m_trainingView->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_trainingNote = new QLabel(this);
    m_trainingNote->setObjectName(QStringLiteral("trainingStatesNote"));
    m_trainingNote->setWordWrap(true);
    m_trainingNote->setTextFormat(Qt::PlainText);
    m_trainingNote->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto *trainingBox = new QWidget(this);
    auto *trainingLayout = new QVBoxLayout(trainingBox);
    trainingLayout->setContentsMargins(0, 0, 0, 0);
    trainingLayout->addWidget(m_trainingNote);
    trainingLayout->addWidget(m_trainingView, 1);

    auto *split = new QSplitter(Qt::Vertical, this);
    split->setObjectName(QStringLiteral("optimizerSplitter"));
    split->setChildrenCollapsible(false);
    split->addWidget(titled(tr("Parameter groups"), m_groupsView, split));
    split->addWidget(titled(tr("Per-parameter state"), m_stateView, split, stateExtra));
    split->addWidget(titled(tr("Schedulers, scalers and RNG"), trainingBox, split));
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 4);
    split->setStretchFactor(2, 1);
    m_content = split;

    m_choiceRow = new QWidget(this);
    auto *choiceLayout = new QHBoxLayout(m_choiceRow);
    choiceLayout->setContentsMargins(0, 0, 0, 0);
    m_choice = new QComboBox(m_choiceRow);
    m_choice->setObjectName(QStringLiteral("optimizerChoice"));
    m_choice->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    choiceLayout->addWidget(heading(tr("Optimizer"), m_choiceRow));
    choiceLayout->addWidget(m_choice);
    m_choiceCut = new QLabel(m_choiceRow);
    m_choiceCut->setObjectName(QStringLiteral("optimizerChoiceCut"));
    m_choiceCut->hide();
    choiceLayout->addWidget(m_choiceCut);
    choiceLayout->addStretch(1);
    m_choiceRow->hide();
    connect(m_choice, &QComboBox::currentIndexChanged, this, &OptimizerView::showOptimizer);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 0);
    layout->addWidget(m_choiceRow);
    layout->addWidget(m_summary);
    layout->addWidget(m_mapping);
    layout->addWidget(split, 1);
}

OptimizerView::~OptimizerView()
{
    if (m_watcher)
        m_watcher->cancel();
}

void OptimizerView::setDocument(const std::shared_ptr<const Document> &doc, const QString &source,
                                const QString &sourceError)
{
    stopStatistics();
    m_document = doc;
    m_source = doc ? source : QString();
    m_sourceError = doc ? sourceError : QString();
    m_training->clear();
    m_training->setHorizontalHeaderLabels({tr("Key"), tr("Type"), tr("Value")});

    // Training states are shown with or without an optimizer.
    ValueItemsBudget budget;
    if (doc)
        for (const auto &s : trainingStates(*doc)) {
            auto row = valueRow(QString::fromStdString(s.key), s.value, budget);
            row[1]->setText(QString::fromStdString(trainingStateName(s.kind)));
            m_training->appendRow(row);
        }
    m_trainingView->expandToDepth(0);
    m_trainingView->resizeColumnToContents(0);
    // An empty table would read as something not loaded yet: say that the file holds none, and
    // what an empty list of Lightning's means.
    const bool noTrainingState = doc && m_training->rowCount() == 0;
    m_trainingView->setVisible(!noTrainingState);
    m_trainingNote->setVisible(noTrainingState);
    if (noTrainingState)
        m_trainingNote->setText(noTrainingStateText(*doc));

    // Several optimizers (a GAN's): each one is a document of its own with that optimizer, chosen
    // above the summary; the model's (the one paired with its weights) first.
    const QSignalBlocker blocker(m_choice);
    m_choice->clear();
    m_optimizerDocuments.clear();
    m_updates.clear();
    bool more = false;
    auto summaries = doc ? optimizerEntries(*doc, &more) : std::vector<OptimizerEntry>{};
    std::stable_partition(summaries.begin(), summaries.end(), [](const OptimizerEntry &s) { return s.primary; });
    if (summaries.size() >= 2)
        for (const auto &s : summaries) {
            std::shared_ptr<const Document> shown = doc;
            if (!s.primary) {
                auto other = std::make_shared<Document>(*doc);
                other->optimizer = s.state;
                other->optimizerPath = s.path;
                shown = std::move(other);
            }
            m_optimizerDocuments.push_back(std::move(shown));
            m_updates.push_back(s.updates);
            const QString where = s.path.empty() ? tr("the whole file") : QString::fromStdString(pathText(s.path));
            m_choice->addItem(tr("%1 \u2014 %2").arg(where, QString::fromStdString(s.className)));
            m_choice->setItemData(m_choice->count() - 1, QString::fromStdString(s.updates), Qt::ToolTipRole);
        }
    // Only the first kMaxOptimizers are read (each is mapped in turn): the others are not offered, and
    // the chooser says so rather than passing for the whole file.
    m_choiceCut->setVisible(more && m_choice->count() > 1);
    m_choiceCut->setText(more ? tr("The file holds more than these %1 optimizers; the others are not read.")
                                    .arg(m_choice->count())
                              : QString());
    m_choiceRow->setVisible(m_choice->count() > 1);
    showOptimizer(0);
}

void OptimizerView::showOptimizer(int index)
{
    stopStatistics();
    const std::shared_ptr<const Document> doc =
        index >= 0 && static_cast<std::size_t>(index) < m_optimizerDocuments.size()
            ? m_optimizerDocuments[static_cast<std::size_t>(index)]
            : m_document;
    m_state->setDocument(doc);
    m_groups->clear();
    if (!doc || !m_state->hasOptimizer()) {
        const QString notRead = doc ? QString::fromStdString(optimizerNotRead(*doc)) : QString();
        m_summary->setText(!doc                      ? QString()
                           : !m_sourceError.isEmpty() ? tr("The folder's <code>%1</code> could not be read: %2")
                                                            .arg(m_source.toHtmlEscaped(), m_sourceError.toHtmlEscaped())
                           : !notRead.isEmpty()      ? tr("No optimizer state is read: %1. Its entries are in the "
                                                                  "Structure tree.")
                                                                   .arg(notRead.toHtmlEscaped())
                                                      : tr("This file keeps no optimizer state."));
        m_mapping->clear();
        m_mapping->hide();
        return;
    }

    // Param groups: one row each, hyperparameters as columns in first-seen order.
    QStringList columns{tr("Group"), tr("Parameters")};
    std::vector<std::pair<QString, ValuePtr>> cells;
    auto groupsValue = doc->optimizer->get("param_groups");
    const std::size_t groupCount = groupsValue && groupsValue->isSequence() ? groupsValue->items().size() : 0;
    for (std::size_t g = 0; g < groupCount; ++g) {
        const auto &grp = groupsValue->items()[g];
        if (!grp || !grp->isDict())
            continue;
        for (const auto &e : grp->entries())
            if (e.key) {
                const QString k = QString::fromStdString(keyText(*e.key));
                if (k != QLatin1String("params") && !columns.contains(k))
                    columns << k;
            }
    }
    m_groups->setHorizontalHeaderLabels(columns);
    for (std::size_t g = 0; g < groupCount; ++g) {
        const auto &grp = groupsValue->items()[g];
        QList<QStandardItem *> row;
        row << new QStandardItem(QString::number(g));
        auto params = grp && grp->isDict() ? grp->get("params") : nullptr;
        row << new QStandardItem(params && params->isSequence() ? QString::number(params->items().size()) : QString());
        for (int c = 2; c < columns.size(); ++c) {
            auto v = grp && grp->isDict() ? grp->get(columns[c].toStdString()) : nullptr;
            auto *item = new QStandardItem(v ? hyperparameterText(*v) : QString());
            item->setToolTip(v ? valuetext::preview(*v, 2000) : QString());
            row << item;
        }
        m_groups->appendRow(row);
    }
    m_groupsView->resizeColumnsToContents();

    // Every parameter the groups list has a row; only those that took a step have state (a frozen
    // layer's have none): both counts are said, as torch's param_groups and state give them.
    const qsizetype params = m_state->rowCount();
    const qsizetype withState = m_state->parametersWithState();
    const QString counts = withState == params
                               ? tr("%1 with state").arg(valuetext::counted(params, tr("parameter"), tr("parameters")))
                               : tr("%1, %2 with state")
                                     .arg(valuetext::counted(params, tr("parameter"), tr("parameters")))
                                     .arg(withState);
    const QString type = m_state->optimizerClass().isEmpty()
                             ? tr("<b>%1</b>").arg(m_state->optimizerType().toHtmlEscaped())
                             : tr("<b>%1</b> (as its param groups' keys tell)")
                                   .arg(m_state->optimizerType().toHtmlEscaped());
    // An optimizer saved alone (torch.save(optimizer.state_dict())) is the whole file.
    QString where = doc->optimizerPath.empty()
                        ? tr("the whole file")
                        : tr("under <code>%1</code>").arg(QString::fromStdString(pathText(doc->optimizerPath)).toHtmlEscaped());
    // A folder's optimizer.pt, read beside its weights: named, so the counts are not taken for the weights file's.
    if (!m_source.isEmpty())
        where = doc->optimizerPath.empty()
                    ? tr("from the folder's <code>%1</code>").arg(m_source.toHtmlEscaped())
                    : tr("from the folder's <code>%1</code>, %2").arg(m_source.toHtmlEscaped(), where);
    m_summary->setText(tr("%1 \u00b7 %2 \u00b7 %3 \u00b7 %4")
                           .arg(type, counts,
                                valuetext::counted(static_cast<qint64>(groupCount), tr("param group"), tr("param groups")),
                                where));
    // Without the model's weights in the file there are no names to be unsure of: the note says
    // what the ids are (DeepSpeed's flat groups, or parameters known by id only).
    const bool nothingToName = !doc->hasStateDict;
    // Of several optimizers, which weights this one updates (or why the shapes cannot tell).
    QString updates = index >= 0 && static_cast<std::size_t>(index) < m_updates.size()
                          ? QString::fromStdString(m_updates[static_cast<std::size_t>(index)])
                          : QString();
    // Where the names are uncertain, that sentence ends with the mapping's note, said below: once.
    const QString repeated = QStringLiteral(": ") + m_state->mappingNote();
    if (!m_state->mappingNote().isEmpty() && updates.size() > repeated.size() && updates.endsWith(repeated))
        updates.chop(repeated.size());
    if (!updates.isEmpty())
        updates = updates.front().toUpper() + updates.mid(1) + QLatin1Char('.');
    m_mapping->setText((updates.isEmpty() ? QString() : updates + QLatin1Char('\n')) +
                       (m_state->mappingCertain() ? tr("Parameter names: ")
                        : nothingToName          ? tr("Parameter ids: ")
                                                 : tr("\u26a0 The mapping of optimizer ids to names is uncertain: ")) +
                       m_state->mappingNote());
    m_mapping->setStyleSheet(m_state->mappingCertain() || nothingToName ? QString()
                                                                        : QStringLiteral("QLabel { color: #8a5a00; }"));
    m_mapping->show();
    m_stateView->resizeColumnsToContents();

    if (m_state->stateTensors().empty())
        return;
    auto *watcher = new QFutureWatcher<RowStatistics>(this);
    m_watcher = watcher;
    m_progress->setRange(0, static_cast<int>(m_state->stateTensors().size()));
    m_progress->setValue(0);
    m_progress->show();
    m_cancel->show();
    connect(watcher, &QFutureWatcherBase::progressValueChanged, m_progress, &QProgressBar::setValue);
    connect(watcher, &QFutureWatcherBase::resultReadyAt, this, [this, watcher](int i) {
        const RowStatistics r = watcher->resultAt(i);
        if (r.error.isEmpty())
            m_state->setStatistics(r.row, r.stats);
        else
            m_state->setStatisticsError(r.row, r.error);
    });
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher] {
        // Only the current job is connected here: a cancelled one was disconnected by stopStatistics().
        const bool complete = !watcher->isCanceled();
        m_watcher = nullptr;
        watcher->deleteLater();
        m_progress->hide();
        m_cancel->hide();
        m_stateView->resizeColumnsToContents();
        Q_EMIT statisticsFinished(complete);
    });
    // The job owns its copy of the list: a new document may replace the model's while it runs.
    auto tensors = std::make_shared<const std::vector<NamedTensor>>(m_state->stateTensors());
    watcher->setFuture(QtConcurrent::run(jobPool(), [doc, tensors](QPromise<RowStatistics> &promise) {
        computeStatistics(promise, doc, tensors.get());
    }));
}

void OptimizerView::stopStatistics()
{
    if (!m_watcher)
        return;
    abandonJob(m_watcher);  // the job stops before its next tensor
    m_watcher = nullptr;
    m_progress->hide();
    m_cancel->hide();
    Q_EMIT statisticsFinished(false);
}

void OptimizerView::cancelStatistics() { stopStatistics(); }

} // namespace ckpt
