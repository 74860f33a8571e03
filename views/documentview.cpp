#include "documentview.h"

#include "jobpool.h"
#include "mappedfile.h"
#include "document.h"
#include "checkpointfolder.h"
#include "documentload.h"
#include "security.h"
#include "metadataview.h"
#include "moduleview.h"
#include "optimizerview.h"
#include "securityview.h"
#include "predictionview.h"
#include "statisticsjob.h"
#include "documenttreemodel.h"
#include "itemviewcopy.h"
#include "tensordetailview.h"
#include "tensortablemodel.h"
#include "treesnapshot.h"
#include "valuetext.h"
#include "value.h"

#include <QDir>
#include <QFileInfo>
#include <QFileSystemWatcher>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QAction>
#include <QApplication>
#include <QProgressBar>
#include <QScopedValueRollback>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QTabWidget>
#include <QToolButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QStyle>
#include <QStyledItemDelegate>
#include <QTableView>
#include <QTimer>
#include <QTreeView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>

namespace ckpt {

namespace {

constexpr int kExpandChildLimit = 64;     // top-level rows with more children start collapsed
constexpr int kFilterExpandBudget = 3000; // rows opened to show filter matches

// Layout remembered between document views (QSettings, beside the main window's geometry).
constexpr auto kStructureSplitterKey = "documentView/structureSplitter";
// True when the user dragged the structure pane: then its width wins over the keys' for every file.
constexpr auto kStructureChosenKey = "documentView/structureSplitterChosen";
constexpr auto kTensorSplitterKey = "documentView/tensorSplitter";
constexpr auto kDetailSplitterKey = "documentView/detailSplitter";
constexpr auto kCurrentViewKey = "documentView/currentView";

QLabel *caption(const QString &text, QWidget *parent)
{
    auto *l = new QLabel(text, parent);
    QFont f = l->font();
    f.setBold(true);
    l->setFont(f);
    return l;
}

QLineEdit *filterEdit(const QString &placeholder, QWidget *parent)
{
    auto *e = new QLineEdit(parent);
    e->setPlaceholderText(placeholder);
    e->setClearButtonEnabled(true);
    e->setAcceptDrops(false);  // dropped files go to the window, not into the filter text
    e->setMaximumWidth(320);
    return e;
}

// Elides its column's text in the middle: "encoder.lay…weight" says more than "encoder.layers.1…".
class MiddleElidingDelegate : public QStyledItemDelegate {
public:
    using QStyledItemDelegate::QStyledItemDelegate;

protected:
    void initStyleOption(QStyleOptionViewItem *option, const QModelIndex &index) const override
    {
        QStyledItemDelegate::initStyleOption(option, index);
        option->textElideMode = Qt::ElideMiddle;
    }
};

// What the structure tree's Value column keeps beside the others: a tensor's shape and dtype.
int treeValueRoom(const QFontMetrics &fm)
{
    return fm.horizontalAdvance(QStringLiteral("[50, 10] float32")) + 12;
}

QString fileSizeText(const QString &path)
{
    const QFileInfo fi(path);
    return fi.exists() ? valuetext::bytes(fi.size()) : QString();
}

// "4 tensors in model_state_dict (16 in the file)": where the counted tensors are, since a
// training checkpoint's optimizer holds more of them, which the table (the model's weights) does
// not list.
QString tensorCountText(const Document &doc)
{
    QString text = valuetext::counted(static_cast<qint64>(doc.stateDict.size()), DocumentView::tr("tensor"),
                                      DocumentView::tr("tensors"));
    if (!doc.stateDictPath.empty())
        text = DocumentView::tr("%1 in %2").arg(text, QString::fromStdString(pathText(doc.stateDictPath)));
    if (doc.tensors.size() > doc.stateDict.size())
        text = DocumentView::tr("%1 (%2 in the file)").arg(text).arg(doc.tensors.size());
    return text;
}

// A tuple (or frozenset) of numbers, strings, bytes, booleans and None, or of such tuples: Python
// shares such immutable objects freely (torch's param_groups all hold one `betas` tuple), and
// sharing them changes nothing: no reason to warn. The depth is bounded: deeper ones count as shared.
bool isImmutableAtoms(const Value &v, int depth = 0)
{
    switch (v.kind()) {
    case Value::Kind::None:
    case Value::Kind::Bool:
    case Value::Kind::Int:
    case Value::Kind::BigInt:
    case Value::Kind::Float:
    case Value::Kind::Complex:
    case Value::Kind::String:
    case Value::Kind::Bytes:
        return true;
    case Value::Kind::Tuple:
    case Value::Kind::FrozenSet:
        return depth < 8 && std::all_of(v.items().begin(), v.items().end(), [depth](const ValuePtr &item) {
                   return item && isImmutableAtoms(*item, depth + 1);
               });
    default:
        return false;
    }
}

// The repeats of the tree that are worth a warning: a container a change through one place would
// change at the other (a list, a dict, an object). Repeats of an immutable tuple of plain values
// still link to the first in the tree, but are not counted.
int sharedMutableCount(const TreeSnapshot &tree)
{
    int count = 0;
    for (const auto &n : tree.nodes()) {
        if (n.type != TreeNode::Type::Alias || n.aliasOf < 0 || n.aliasOf >= tree.size())
            continue;
        const Value *target = tree.node(n.aliasOf).value;
        count += !(target && isImmutableAtoms(*target));
    }
    return count;
}

} // namespace

DocumentView::DocumentView(QWidget *parent) : QWidget(parent)
{
    m_treeModel = new DocumentTreeModel(this);
    m_tableModel = new TensorTableModel(this);

    m_treeProxy = new QSortFilterProxyModel(this);
    m_treeProxy->setObjectName(QStringLiteral("treeProxy"));
    m_treeProxy->setSourceModel(m_treeModel);
    m_treeProxy->setRecursiveFilteringEnabled(true);
    m_treeProxy->setAutoAcceptChildRows(true);  // a matching container shows what it holds
    m_treeProxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_treeProxy->setFilterKeyColumn(DocumentTreeModel::KeyColumn);


    m_tableProxy = new QSortFilterProxyModel(this);
    m_tableProxy->setObjectName(QStringLiteral("tableProxy"));
    m_tableProxy->setSourceModel(m_tableModel);
    m_tableProxy->setSortRole(TensorTableModel::SortRole);
    m_tableProxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_tableProxy->setFilterKeyColumn(TensorTableModel::NameColumn);

    m_title = new QLabel(this);
    m_title->setObjectName(QStringLiteral("title"));
    QFont tf = m_title->font();
    tf.setBold(true);
    tf.setPointSizeF(tf.pointSizeF() * 1.25);
    m_title->setFont(tf);
    // These four show file names and text from the file: plain, so a '<' is never read as a tag.
    m_title->setTextFormat(Qt::PlainText);
    m_title->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_details = new QLabel(this);
    m_details->setObjectName(QStringLiteral("details"));
    m_details->setTextFormat(Qt::PlainText);
    m_details->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_details->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);  // long lines never widen the window
    m_details->setWordWrap(true);  // and in a narrow one they wrap rather than lose their end
    m_warnings = new QLabel(this);
    m_warnings->setObjectName(QStringLiteral("warnings"));
    m_warnings->setWordWrap(true);
    m_warnings->setTextFormat(Qt::PlainText);
    m_warnings->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_warnings->setStyleSheet(QStringLiteral("QLabel { color: #8a5a00; }"));
    m_warnings->hide();
    m_danger = new QLabel(this);
    m_danger->setObjectName(QStringLiteral("danger"));
    m_danger->setWordWrap(true);
    m_danger->setTextFormat(Qt::PlainText);
    m_danger->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_danger->setStyleSheet(QStringLiteral(
        "QLabel { background: #b3261e; color: white; padding: 6px 8px; border-radius: 3px; font-weight: bold; }"));
    m_danger->hide();
    m_changed = new QLabel(this);
    m_changed->setObjectName(QStringLiteral("changed"));
    m_changed->setWordWrap(true);
    m_changed->setTextFormat(Qt::RichText);
    m_changed->setStyleSheet(QStringLiteral(
        "QLabel { background: #8a5a00; color: white; padding: 6px 8px; border-radius: 3px; }"));
    m_changed->hide();
    connect(m_changed, &QLabel::linkActivated, this, [this] { open(m_path); });
    // A file rewritten or truncated on disk while open: say so at once, as an editor would.
    m_fileWatcher = new QFileSystemWatcher(this);
    connect(m_fileWatcher, &QFileSystemWatcher::fileChanged, this, [this](const QString &path) {
        if (path == m_path && m_state == State::Loaded)
            showFileChanged(tr("changed on disk since it was read"));
    });

    m_pages = new QStackedWidget(this);
    m_loadingPage = createLoadingPage();
    m_contentPage = createContentPage();
    m_errorPage = createErrorPage();
    m_pages->addWidget(m_loadingPage);
    m_pages->addWidget(m_contentPage);
    m_pages->addWidget(m_errorPage);
    m_pages->setCurrentWidget(m_contentPage);

    auto *header = new QVBoxLayout;
    header->setContentsMargins(8, 6, 8, 2);
    header->setSpacing(2);
    header->addWidget(m_title);
    header->addWidget(m_details);
    header->addWidget(m_danger);
    header->addWidget(m_changed);
    header->addWidget(m_warnings);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);
    layout->addLayout(header);
    layout->addWidget(m_pages, 1);
}

DocumentView::~DocumentView()
{
    if (m_viewRestored)
        saveLayout();  // the next document view opens the way this one was left
    if (m_watcher)
        m_watcher->cancel();  // the worker stops at its next progress report; its result is dropped
    if (m_statsWatcher)
        m_statsWatcher->cancel();  // and the statistics job before its next tensor
}

void DocumentView::updatePredictionDocument()
{
    if (!m_predictionStale || m_viewTabs->currentIndex() != PredictTab)
        return;
    m_predictionStale = false;
    m_prediction->setDocument(m_document);
}

void DocumentView::startStatistics()
{
    stopStatistics();
    if (!m_document || m_tableModel->tensors().empty())
        return;
    auto *watcher = new QFutureWatcher<RowStatistics>(this);
    m_statsWatcher = watcher;
    m_statsStopped->hide();
    m_statsProgress->setRange(0, static_cast<int>(m_tableModel->tensors().size()));
    m_statsProgress->setValue(0);
    m_statsProgress->show();
    m_statsCancel->show();
    connect(watcher, &QFutureWatcherBase::progressValueChanged, m_statsProgress, &QProgressBar::setValue);
    connect(watcher, &QFutureWatcherBase::resultReadyAt, this, [this, watcher](int i) {
        const RowStatistics r = watcher->resultAt(i);
        if (r.error.isEmpty())
            m_tableModel->setStatistics(r.row, r.stats);
        else
            m_tableModel->setStatisticsError(r.row, r.error);
        if (r.row == m_detailRow && r.error.isEmpty())
            m_detail->setStatistics(r.stats);
        if (!m_statsResize->isActive())
            m_statsResize->start();
    });
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher] {
        const bool complete = !watcher->isCanceled();
        m_statsResize->stop();
        fitStatisticsColumns();
        // Names of rows marked NaN/Inf gained an icon: keep them readable, within bounds.
        auto *hh = m_table->horizontalHeader();
        const int nameWidth = hh->sectionSize(TensorTableModel::NameColumn);
        m_table->resizeColumnToContents(TensorTableModel::NameColumn);
        hh->resizeSection(TensorTableModel::NameColumn, std::clamp(hh->sectionSize(TensorTableModel::NameColumn),
                                                                   nameWidth, std::max(nameWidth, tableNameRoom())));
        // Only the current job is connected here: a cancelled one was disconnected by stopStatistics().
        m_statsWatcher = nullptr;
        watcher->deleteLater();
        m_statsProgress->hide();
        m_statsCancel->hide();
        checkFileChanged();
        Q_EMIT statisticsFinished(complete);
    });
    // The job keeps the document alive; the rows it reads are the table's.
    watcher->setFuture(QtConcurrent::run(jobPool(), &computeStatistics, m_document, &m_tableModel->tensors()));
}

void DocumentView::stopStatistics()
{
    if (!m_statsWatcher)
        return;
    abandonJob(m_statsWatcher);  // stale or cancelled: the job stops before its next tensor
    m_statsWatcher = nullptr;
    m_statsProgress->hide();
    m_statsCancel->hide();
    m_statsResize->stop();
    fitStatisticsColumns();  // the figures that arrived before the stop
    Q_EMIT statisticsFinished(false);
}

void DocumentView::cancelStatistics()
{
    const bool running = m_statsWatcher != nullptr;
    stopStatistics();
    m_statsStopped->setVisible(running);
}

// The numbers are wider than the "…" they replace.
void DocumentView::fitStatisticsColumns()
{
    for (int c = TensorTableModel::MinColumn; c <= TensorTableModel::NonFiniteColumn; ++c)
        m_table->resizeColumnToContents(c);
}

void DocumentView::checkFileChanged()
{
    if (m_document && documentTruncated(*m_document))
        showFileChanged(tr("was truncated while open: numbers read from it now would not be its numbers, and are not "
                           "shown"));
}

void DocumentView::showFileChanged(const QString &why)
{
    m_changed->setText(tr("\u26a0 %1 %2. <a href=\"reload\" style=\"color: white\">Read it again</a>")
                           .arg(QFileInfo(m_path).fileName().toHtmlEscaped(), why.toHtmlEscaped()));
    m_changed->show();
}

bool DocumentView::selectTensor(const QString &name)
{
    for (int r = 0; r < m_tableModel->rowCount(); ++r) {
        const QModelIndex source = m_tableModel->index(r, TensorTableModel::NameColumn);
        if (source.data(TensorTableModel::TensorNameRole).toString() != name)
            continue;
        const QModelIndex row = m_tableProxy->mapFromSource(source);
        if (!row.isValid())
            return false;  // filtered out of the table
        // Through the selection model: QAbstractItemView::setCurrentIndex would follow whatever
        // keyboard modifiers are down and add the row to the selection.
        m_table->selectionModel()->setCurrentIndex(row, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        m_table->scrollTo(row);
        return true;
    }
    return false;
}

QString DocumentView::selectedText() const
{
    const QAbstractItemView *view = m_tree->hasFocus() ? static_cast<const QAbstractItemView *>(m_tree)
                                                       : static_cast<const QAbstractItemView *>(m_table);
    return itemviewcopy::selectionText(view);
}

QWidget *DocumentView::createLoadingPage()
{
    auto *page = new QWidget(this);
    m_loadingText = new QLabel(page);
    m_loadingText->setAlignment(Qt::AlignCenter);
    m_progress = new QProgressBar(page);
    m_progress->setRange(0, 1000);
    m_progress->setTextVisible(false);
    m_progress->setFixedWidth(320);
    auto *l = new QVBoxLayout(page);
    l->addStretch(1);
    l->addWidget(m_loadingText, 0, Qt::AlignHCenter);
    l->addWidget(m_progress, 0, Qt::AlignHCenter);
    l->addStretch(2);
    return page;
}

QWidget *DocumentView::createContentPage()
{
    m_splitter = new QSplitter(Qt::Horizontal, this);
    m_splitter->setChildrenCollapsible(false);

    // Left: the value tree.
    auto *left = new QWidget(m_splitter);
    m_treeCaption = caption(tr("Structure"), left);
    m_treeFilterEdit = filterEdit(tr("Filter keys\u2026"), left);
    m_treeFilterEdit->setObjectName(QStringLiteral("treeFilter"));
    m_tree = new QTreeView(left);
    m_tree->setObjectName(QStringLiteral("tree"));
    m_tree->setModel(m_treeProxy);
    m_tree->setUniformRowHeights(true);  // keeps 10,000-row branches cheap to lay out
    m_tree->setAlternatingRowColors(true);
    m_tree->setAllColumnsShowFocus(true);
    m_tree->setSortingEnabled(false);   // file order is meaningful
    m_tree->header()->setStretchLastSection(true);
    m_tree->header()->setSectionResizeMode(QHeaderView::Interactive);
    // Dotted keys keep both ends when Key is narrowed; values keep their start.
    m_tree->setItemDelegateForColumn(DocumentTreeModel::KeyColumn, new MiddleElidingDelegate(m_tree));
    m_tree->viewport()->installEventFilter(this);
    // A column the user drags keeps its width: the automatic fitting stops until the next file.
    connect(m_tree->header(), &QHeaderView::sectionResized, this, [this](int logical) {
        if (!m_fittingTree && logical != DocumentTreeModel::ValueColumn && isVisible())
            m_treeColumnsByUser = true;
    });
    auto *leftBar = new QHBoxLayout;
    leftBar->addWidget(m_treeCaption);
    leftBar->addStretch(1);
    leftBar->addWidget(m_treeFilterEdit, 1);
    // Narrower than this, Key, Type and the start of Value no longer fit side by side.
    left->setMinimumWidth(240);
    auto *leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(6, 0, 2, 4);
    leftLayout->addLayout(leftBar);
    leftLayout->addWidget(m_tree, 1);

    // Right: the tensors of the state dict.
    auto *right = new QWidget(m_splitter);
    m_tableCaption = caption(tr("Tensors"), right);
    m_tableCaption->setObjectName(QStringLiteral("tableCaption"));
    m_tableFilterEdit = filterEdit(tr("Filter tensors\u2026"), right);
    m_tableFilterEdit->setObjectName(QStringLiteral("tableFilter"));
    m_table = new QTableView(right);
    m_table->setObjectName(QStringLiteral("table"));
    m_table->setModel(m_tableProxy);
    m_table->setAlternatingRowColors(true);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setWordWrap(false);
    // Dotted names keep both ends; a number cut short is cut at its end ("-0.03007…"), never in its
    // middle, where "-5…95" would read as another number.
    m_table->setTextElideMode(Qt::ElideRight);
    m_table->setItemDelegateForColumn(TensorTableModel::NameColumn, new MiddleElidingDelegate(m_table));
    m_table->verticalHeader()->hide();
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 6);
    m_table->horizontalHeader()->setSortIndicatorClearable(true);
    m_table->horizontalHeader()->setHighlightSections(false);
    m_table->setSortingEnabled(true);
    m_table->sortByColumn(-1, Qt::AscendingOrder);  // file order until a header is clicked
    m_statsProgress = new QProgressBar(right);
    m_statsProgress->setObjectName(QStringLiteral("statisticsProgress"));
    m_statsProgress->setMaximumWidth(120);
    m_statsProgress->setFormat(tr("statistics %v/%m"));
    m_statsProgress->hide();
    m_statsCancel = new QToolButton(right);
    m_statsCancel->setObjectName(QStringLiteral("statisticsCancel"));
    m_statsCancel->setText(tr("Cancel"));
    m_statsCancel->setToolTip(tr("Stop computing statistics"));
    m_statsCancel->hide();
    connect(m_statsCancel, &QToolButton::clicked, this, &DocumentView::cancelStatistics);
    // After a cancel the cells not reached keep their "…": this says why, and computes them again.
    m_statsStopped = new QLabel(tr("Statistics cancelled; \u2026 marks those not computed. "
                                   "<a href=\"again\">Compute them</a>"),
                                right);
    m_statsStopped->setObjectName(QStringLiteral("statisticsStopped"));
    m_statsStopped->hide();
    connect(m_statsStopped, &QLabel::linkActivated, this, [this] { startStatistics(); });
    // The columns are widened as figures arrive (not once at the end, which a cancel never reaches).
    m_statsResize = new QTimer(this);
    m_statsResize->setSingleShot(true);
    m_statsResize->setInterval(300);
    connect(m_statsResize, &QTimer::timeout, this, &DocumentView::fitStatisticsColumns);
    auto *rightBar = new QHBoxLayout;
    rightBar->addWidget(m_tableCaption);
    rightBar->addWidget(m_statsProgress);
    rightBar->addWidget(m_statsCancel);
    rightBar->addWidget(m_statsStopped);
    rightBar->addStretch(1);
    rightBar->addWidget(m_tableFilterEdit, 1);
    auto *rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(2, 0, 6, 4);
    rightLayout->addLayout(rightBar);
    rightLayout->addWidget(m_table, 1);

    // The detail pane of the selected tensor, below the table.
    m_detail = new TensorDetailView(this);
    m_tensorSplitter = new QSplitter(Qt::Vertical, this);
    m_tensorSplitter->setObjectName(QStringLiteral("tensorSplitter"));
    m_tensorSplitter->setChildrenCollapsible(false);
    m_tensorSplitter->addWidget(right);
    m_tensorSplitter->addWidget(m_detail);
    m_tensorSplitter->setStretchFactor(0, 3);  // the table is what a file is opened to see
    m_tensorSplitter->setStretchFactor(1, 2);

    m_viewTabs = new QTabWidget(this);
    m_viewTabs->setObjectName(QStringLiteral("views"));
    m_viewTabs->setDocumentMode(true);
    m_viewTabs->addTab(m_tensorSplitter, tr("Tensors"));
    m_modules = new ModuleView(this);
    m_viewTabs->addTab(m_modules, tr("Modules"));
    m_optimizer = new OptimizerView(this);
    m_viewTabs->addTab(m_optimizer, tr("Optimizer"));
    m_metadata = new MetadataView(this);
    m_viewTabs->addTab(m_metadata, tr("Metadata"));
    m_security = new SecurityView(this);
    m_viewTabs->addTab(m_security, tr("Security"));
    m_prediction = new PredictionView(this);
    // Scrolled only in a window too small for its side-by-side form and results (fitStructurePane
    // keeps it its width): otherwise it would hold every tab, and the window, to that width.
    auto *predictScroll = new QScrollArea(this);
    predictScroll->setFrameShape(QFrame::NoFrame);
    predictScroll->setWidgetResizable(true);
    predictScroll->setWidget(m_prediction);
    m_viewTabs->addTab(predictScroll, tr("Predict"));
    for (int i = 0; i < m_viewTabs->count(); ++i)
        m_viewTabs->setTabToolTip(i, tr("Alt+%1").arg(i + 1));
    // Alt+1 … Alt+6 switch between the views, and Ctrl+F searches the tree, wherever the keyboard
    // is in the window: actions of this widget with a window context are live only while it is
    // shown, so the document of another (hidden) tab takes none of them.
    m_viewActions = makeViewActions(this);
    for (int i = 0; i < m_viewActions.size() - 1; ++i)
        connect(m_viewActions[i], &QAction::triggered, this, [this, i] { showView(i); });
    // Ctrl+F: the filter of what the user is looking at takes the keyboard with its text selected.
    connect(m_viewActions.last(), &QAction::triggered, this, [this] {
        QLineEdit *filter = findFilter();
        filter->setFocus(Qt::ShortcutFocusReason);
        filter->selectAll();
    });
    addActions(m_viewActions);
    // A tensor picked in the module hierarchy is shown in the table and the detail pane.
    connect(m_modules, &ModuleView::tensorSelected, this, [this](const QString &name) { selectTensor(name); });

    m_splitter->addWidget(left);
    m_splitter->addWidget(m_viewTabs);
    m_splitter->setStretchFactor(0, 2);  // the table has the wider rows since it shows statistics
    m_splitter->setStretchFactor(1, 5);
    restoreLayout();
    connect(m_splitter, &QSplitter::splitterMoved, this, [this] {
        m_structureByUser = true;  // the user's width wins over the keys' from now on
        saveLayout();
    });
    connect(m_tensorSplitter, &QSplitter::splitterMoved, this, [this] { saveLayout(); });
    if (auto *inner = m_detail->findChild<QSplitter *>(QStringLiteral("detailSplitter")))
        connect(inner, &QSplitter::splitterMoved, this, [this] { saveLayout(); });

    // Filtering a large tree takes a moment: wait for a pause in typing.
    m_treeFilterTimer = new QTimer(this);
    m_treeFilterTimer->setSingleShot(true);
    m_treeFilterTimer->setInterval(150);
    connect(m_treeFilterTimer, &QTimer::timeout, this, [this] { applyTreeFilter(m_treeFilterEdit->text()); });
    connect(m_treeFilterEdit, &QLineEdit::textChanged, m_treeFilterTimer, qOverload<>(&QTimer::start));
    connect(m_tableFilterEdit, &QLineEdit::textChanged, this, &DocumentView::applyTableFilter);
    for (auto signal : {&QAbstractItemModel::rowsInserted, &QAbstractItemModel::rowsRemoved})
        connect(m_tableProxy, signal, this, [this] { updateTableCaption(); });
    connect(m_tableProxy, &QAbstractItemModel::modelReset, this, [this] { updateTableCaption(); });
    connect(m_tableProxy, &QAbstractItemModel::layoutChanged, this, [this] { updateTableCaption(); });
    connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex &current) {
                if (m_filteringTable)
                    return;
                showTableTensor(current);
                if (!m_syncingSelection)
                    selectInTree(current);
            });
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex &current) { showTreeTensor(current); });
    return m_splitter;
}

QWidget *DocumentView::createErrorPage()
{
    auto *page = new QWidget(this);
    auto *icon = new QLabel(page);
    icon->setPixmap(style()->standardIcon(QStyle::SP_MessageBoxCritical).pixmap(48, 48));
    icon->setAlignment(Qt::AlignTop);
    auto *heading = new QLabel(tr("This file could not be read"), page);
    m_errorHeading = heading;
    QFont hf = heading->font();
    hf.setBold(true);
    hf.setPointSizeF(hf.pointSizeF() * 1.2);
    heading->setFont(hf);
    heading->setStyleSheet(QStringLiteral("QLabel { color: #b00020; }"));
    m_errorText = new QLabel(page);
    m_errorText->setObjectName(QStringLiteral("errorText"));
    m_errorText->setWordWrap(true);
    m_errorText->setTextFormat(Qt::PlainText);
    m_errorText->setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
    m_errorText->setCursor(Qt::IBeamCursor);
    auto *hint = new QLabel(tr("Nothing in the file was run. Checkpoint Studio reads PyTorch files "
                               "(.pth, .pt, .ckpt, .bin, .tar) and safetensors."),
                            page);
    hint->setWordWrap(true);
    QPalette pal = hint->palette();
    pal.setColor(QPalette::WindowText, pal.color(QPalette::PlaceholderText));
    hint->setPalette(pal);
    m_errorHint = hint;

    // A training run's output folder is no error of the user's: its checkpoints, and what to do.
    m_runBox = new QWidget(page);
    m_runBox->setObjectName(QStringLiteral("runBox"));
    m_runList = new QListWidget(m_runBox);
    m_runList->setObjectName(QStringLiteral("runCheckpoints"));
    m_openCheckpoint = new QPushButton(tr("Open Checkpoint"), m_runBox);
    m_openCheckpoint->setObjectName(QStringLiteral("openCheckpoint"));
    m_openCheckpoint->setToolTip(tr("Open the chosen checkpoint folder in a tab of its own"));
    m_openRun = new QPushButton(tr("Compare the Run"), m_runBox);
    m_openRun->setObjectName(QStringLiteral("openRun"));
    m_openRun->setToolTip(tr("Norms and drift of every tensor across these checkpoints, as ckpt series shows them"));
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(m_openCheckpoint);
    buttons->addWidget(m_openRun);
    buttons->addStretch(1);
    auto *runLayout = new QVBoxLayout(m_runBox);
    runLayout->setContentsMargins(0, 0, 0, 0);
    runLayout->addWidget(m_runList, 1);
    runLayout->addLayout(buttons);
    m_runBox->hide();
    const auto openChosen = [this] {
        if (const QListWidgetItem *item = m_runList->currentItem())
            Q_EMIT openRequested(item->data(Qt::UserRole).toString());
    };
    connect(m_openCheckpoint, &QPushButton::clicked, this, openChosen);
    connect(m_runList, &QListWidget::itemActivated, this, openChosen);
    connect(m_openRun, &QPushButton::clicked, this, [this] {
        QStringList paths;
        for (int i = 0; i < m_runList->count(); ++i)
            paths << m_runList->item(i)->data(Qt::UserRole).toString();
        Q_EMIT seriesRequested(paths);
    });

    auto *text = new QVBoxLayout;
    text->setSpacing(8);
    text->addWidget(heading);
    text->addWidget(m_errorText);
    text->addWidget(hint);
    text->addWidget(m_runBox, 1);
    auto *row = new QHBoxLayout;
    row->setSpacing(16);
    row->addWidget(icon, 0, Qt::AlignTop);
    row->addLayout(text, 1);
    auto *l = new QVBoxLayout(page);
    l->setContentsMargins(32, 32, 32, 32);
    l->addLayout(row, 1);
    l->addStretch(0);
    return page;
}

void DocumentView::open(const QString &path)
{
    stopStatistics();
    abandonJob(m_watcher);  // an older reading is stale
    m_watcher = nullptr;
    m_path = QFileInfo(path).absoluteFilePath();
    m_state = State::Loading;
    m_error.clear();
    m_dangerousGlobals.clear();
    m_document.reset();
    m_treeModel->setSnapshot(nullptr);
    m_tableModel->setDocument(nullptr);
    m_modules->setDocument(nullptr);
    m_optimizer->setDocument(nullptr);
    m_metadata->setDocument(nullptr);
    m_security->setReport(nullptr);
    m_prediction->setDocument(nullptr);
    m_predictionStale = false;
    showInDetail({}, nullptr, -1);

    const QString name = QFileInfo(m_path).fileName();
    m_title->setText(name);
    m_title->setToolTip(m_path);
    m_details->setText(tr("Reading\u2026"));
    m_warnings->hide();
    m_danger->hide();
    m_changed->hide();
    m_loadingText->setText(tr("Reading %1\u2026").arg(name));
    m_progress->setValue(0);
    m_pages->setCurrentWidget(m_loadingPage);

    auto *watcher = new QFutureWatcher<DocumentLoad>(this);
    m_watcher = watcher;
    connect(watcher, &QFutureWatcherBase::progressValueChanged, m_progress, &QProgressBar::setValue);
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher] { finishLoad(watcher); });
    watcher->setFuture(QtConcurrent::run(jobPool(), &loadDocument, m_path));
    Q_EMIT loadingStarted(m_path);
}

void DocumentView::finishLoad(QFutureWatcher<DocumentLoad> *watcher)
{
    watcher->deleteLater();
    if (watcher != m_watcher)
        return;  // stale: a newer open() owns the view
    m_watcher = nullptr;
    const QFuture<DocumentLoad> future = watcher->future();
    if (future.resultCount() == 0) {
        showError(m_path + tr(": reading was cancelled"));
        return;
    }
    const DocumentLoad load = future.result();
    if (load.ok())
        showDocument(load);
    else
        showError(load.error.isEmpty() ? m_path + tr(": unknown error") : load.error, load.run);
}

void DocumentView::showDocument(const DocumentLoad &load)
{
    m_document = load.document;
    m_state = State::Loaded;
    if (!m_fileWatcher->files().isEmpty())
        m_fileWatcher->removePaths(m_fileWatcher->files());
    m_fileWatcher->addPath(m_path);
    m_treeModel->setSnapshot(load.tree);
    m_tableModel->setDocument(load.document);
    m_modules->setDocument(load.document);
    m_optimizer->setDocument(load.optimizerDocument ? load.optimizerDocument : load.document, load.optimizerSource,
                             load.optimizerError);
    m_metadata->setDocument(load.document);
    m_security->setReport(load.security, load.document && load.document->format == ContainerFormat::TorchScript,
                          load.document.get());
    // The Predict tab resolves the architecture (a walk over every module and tensor) when it is
    // first shown, not while the file's first picture waits.
    m_predictionStale = true;
    updatePredictionDocument();
    {
        const bool dangerous = load.security && load.security->dangerous;
        m_viewTabs->setTabText(SecurityTab, dangerous ? tr("Security ⚠") : tr("Security"));
        m_viewTabs->setTabText(OptimizerTab, load.document->optimizer || load.optimizerDocument ? tr("Optimizer")
                                                                                        : tr("Optimizer (none)"));
    }

    const Document &doc = *m_document;
    QStringList parts;
    QString format = QString::fromStdString(formatName(doc.format));
    if (!doc.formatDetail.empty())
        format += QStringLiteral(" (%1)").arg(QString::fromStdString(doc.formatDetail));
    parts << format << QString::fromStdString(kindName(doc.kind));
    if (doc.hasStateDict) {
        parts << tensorCountText(doc) << valuetext::counted(doc.parameterCount(), tr("element"), tr("elements"))
              << tr("%1 of tensors").arg(valuetext::bytes(doc.stateDictBytes()));
    } else {
        parts << tr("no state dict found");
    }
    if (doc.format == ContainerFormat::Sharded && !doc.extraFiles.empty()) {
        // The index is a small JSON file; the weights are in its shards.
        qint64 shardBytes = 0;
        for (const auto &shard : doc.extraFiles)
            shardBytes += shard ? static_cast<qint64>(shard->size()) : 0;
        const auto shards = static_cast<qint64>(doc.extraFiles.size());
        parts << tr("%1 of %2").arg(valuetext::bytes(shardBytes), valuetext::counted(shards, tr("shard"), tr("shards")));
    } else if (doc.folder) {
        // A folder's own entry is a few KiB: the sizes said are those of the weights file read and
        // of the folder's recognised files together.
        if (const QString size = fileSizeText(QString::fromStdString(doc.folder->modelFile)); !size.isEmpty())
            parts << tr("weights file %1").arg(size);
        qint64 total = QFileInfo(QString::fromStdString(doc.folder->modelFile)).size();
        qint64 files = 1;
        for (const auto &part : doc.folder->parts)
            if (const QFileInfo fi(QString::fromStdString(part.path)); fi.isFile())
                total += fi.size(), ++files;
        if (files > 1)
            parts << tr("%1 in %2 files of the folder").arg(valuetext::bytes(total)).arg(files);
    } else if (const QString size = fileSizeText(m_path); !size.isEmpty()) {
        parts << tr("file %1").arg(size);
    }
    parts << tr("read in %1 ms").arg(load.elapsedMs);
    m_details->setText(parts.join(QStringLiteral("  \u00b7  ")));
    m_details->setToolTip(m_path);

    QStringList dangerous;
    if (load.security)
        for (const auto &g : load.security->globals)
            if (g.cls == GlobalClass::Dangerous)
                dangerous << QString::fromStdString(g.use.name);
    m_danger->setText(tr("\u26a0 This file names code that Python would run on loading it: %1. "
                         "Checkpoint Studio reads it as data and never runs it; do not torch.load it.")
                          .arg(dangerous.join(QStringLiteral(", "))));
    m_danger->setVisible(!dangerous.isEmpty());
    m_dangerousGlobals = dangerous;

    QStringList warnings;
    for (const auto &w : doc.warnings)
        warnings << QString::fromStdString(w);
    if (const int shared = sharedMutableCount(*load.tree); shared > 0)
        warnings << tr("%1 in more than one place; repeats link to the first.")
                        .arg(valuetext::counted(shared, tr("object appears"), tr("objects appear")));
    if (load.tree->hiddenCount() > 0)
        warnings << tr("%1 not listed in the tree (size limits).")
                        .arg(valuetext::counted(load.tree->hiddenCount(), tr("item is"), tr("items are")));
    m_warnings->setText(QStringLiteral("\u26a0 ") + warnings.join(QStringLiteral("\n\u26a0 ")));
    m_warnings->setVisible(!warnings.isEmpty());

    updateTableCaption();

    // Open one level: top-level containers that are not huge.
    m_tree->collapseAll();
    for (int r = 0; r < m_treeProxy->rowCount(); ++r) {
        const QModelIndex i = m_treeProxy->index(r, 0);
        if (m_treeProxy->rowCount(i) <= kExpandChildLimit)
            m_tree->expand(i);
    }
    if (!m_treeFilterEdit->text().isEmpty())
        applyTreeFilter(m_treeFilterEdit->text());
    m_pages->setCurrentWidget(m_contentPage);  // first: the columns are fitted to its panes
    fitColumns();
    if (isVisible())
        m_tree->setFocus();  // the keyboard goes to the tree, not the filter box
    startStatistics();
    // The first tensor is shown in detail at once.
    if (m_tableProxy->rowCount() > 0)
        m_table->setCurrentIndex(m_tableProxy->index(0, TensorTableModel::NameColumn));
    Q_EMIT loaded();
}

// "Tensors in model_state_dict (16)", or "(3 of 16)" while the filter hides some.
void DocumentView::updateTableCaption()
{
    if (!m_document) {
        m_tableCaption->setText(tr("Tensors"));
        return;
    }
    const Document &doc = *m_document;
    const int total = m_tableModel->rowCount();
    const int shown = m_tableProxy->rowCount();
    const QString count = shown < total ? tr("%1 of %2").arg(shown).arg(total) : QString::number(total);
    QString where;
    if (doc.hasStateDict && !doc.stateDictPath.empty())
        where = QString::fromStdString(pathText(doc.stateDictPath));
    if (!doc.hasStateDict)
        m_tableCaption->setText(total == 0 ? tr("No tensors in this file")
                                           : tr("Tensors anywhere in the file (%1; no state dict found)").arg(count));
    else if (where.isEmpty())
        m_tableCaption->setText(tr("Tensors (%1)").arg(count));
    else
        m_tableCaption->setText(tr("Tensors in %1 (%2)").arg(where, count));
}

// Filters the table. The tensor in the detail pane stays current and highlighted when it is
// still listed; when it is filtered out, the first listed row becomes current and highlighted
// (the detail and the tree follow it), so the pane never shows a row the table does not mark.
void DocumentView::applyTableFilter(const QString &text)
{
    {
        // Removing the current row makes the selection model move the current index to a
        // neighbour without selecting it: not a choice of the user's, so nothing follows it.
        const QScopedValueRollback<bool> guard(m_filteringTable, true);
        m_tableProxy->setFilterFixedString(text);
    }
    if (!m_document)
        return;
    QItemSelectionModel *selection = m_table->selectionModel();
    if (m_detailRow < 0) {
        // The detail shows a tensor the table does not list (from the tree): no row is marked.
        selection->clear();
        return;
    }
    QModelIndex row = m_tableProxy->mapFromSource(m_tableModel->index(m_detailRow, TensorTableModel::NameColumn));
    if (!row.isValid())
        row = m_tableProxy->index(0, TensorTableModel::NameColumn);
    if (!row.isValid()) {
        selection->clear();  // nothing listed; the detail keeps what it showed
        return;
    }
    // The current index may already be on that row (moved there while filtering): then no signal says so.
    const bool already = selection->currentIndex().isValid() && selection->currentIndex().row() == row.row();
    selection->setCurrentIndex(row, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    if (already) {
        showTableTensor(row);
        selectInTree(row);
    }
    m_table->scrollTo(row);
}

void DocumentView::showError(const QString &message, const std::shared_ptr<const RunFolder> &run)
{
    m_state = State::Failed;
    m_error = message;
    m_document.reset();
    m_errorText->setText(message);
    m_runList->clear();
    const bool isRun = run && !run->checkpoints.empty();
    m_runBox->setVisible(isRun);
    m_errorHint->setVisible(!isRun);
    m_errorHeading->setText(isRun ? tr("This folder is a training run, not one checkpoint")
                                  : tr("This file could not be read"));
    if (isRun) {
        // What the run holds and the two ways on, rather than the reader's refusal.
        QString text = tr("%1 holds the checkpoint folders a training run saved (a Trainer's output_dir), and no "
                          "checkpoint of its own. Open one of them, or compare them all in the Run view: the norm "
                          "and drift of every tensor from checkpoint to checkpoint.")
                           .arg(QDir::toNativeSeparators(m_path));
        if (run->found > run->checkpoints.size())
            text += tr(" It holds %1 checkpoint folders; the first %2 are listed.")
                        .arg(run->found)
                        .arg(run->checkpoints.size());
        m_errorText->setText(text);
        for (const auto &c : run->checkpoints) {
            QStringList facts;
            if (c.globalStep)
                facts << tr("step %1").arg(*c.globalStep);
            if (c.epoch)
                facts << tr("epoch %1").arg(QString::number(*c.epoch, 'g', 4));
            if (c.lastLoss)
                facts << tr("last loss %1").arg(QString::number(*c.lastLoss, 'g', 4));
            auto *item = new QListWidgetItem(
                facts.isEmpty() ? QString::fromStdString(c.name)
                                : tr("%1 — %2").arg(QString::fromStdString(c.name), facts.join(QStringLiteral(", "))),
                m_runList);
            item->setData(Qt::UserRole, QString::fromStdString(c.path));
            item->setToolTip(QString::fromStdString(c.path));
        }
        m_runList->setCurrentRow(m_runList->count() - 1);  // the last saved: where the run stands
    }
    m_details->setText(isRun ? tr("A training run's folder of %1 checkpoints").arg(run->found) : tr("Could not be read"));
    m_details->setToolTip(m_path);
    m_pages->setCurrentWidget(m_errorPage);
    Q_EMIT failed(message);
}

void DocumentView::fitColumns()
{
    // Content width, within sanity bounds only: layoutTreeColumns() fits them to the pane, where
    // Key takes what it needs before Value gets more than its room.
    struct Bounds {
        int column, min, max;
    };
    auto *th = m_tree->header();
    const Bounds bounds[] = {
        {DocumentTreeModel::KeyColumn, 140, 2000},
        {DocumentTreeModel::TypeColumn, 60, 200},
        {DocumentTreeModel::ShapeColumn, 50, 120},
        {DocumentTreeModel::DTypeColumn, 50, 90},
    };
    {
        const QScopedValueRollback<bool> guard(m_fittingTree, true);
        for (const Bounds &b : bounds) {
            m_tree->setColumnHidden(b.column, false);
            m_tree->resizeColumnToContents(b.column);
            m_treeNaturalWidths[b.column] = std::clamp(th->sectionSize(b.column), b.min, b.max);
        }
    }
    m_treeColumnsByUser = false;  // a new file: the columns fit it again, until the user drags one
    layoutTreeColumns();

    auto *hh = m_table->horizontalHeader();
    // Measured without the sort arrow's room, which only the sorted column shows: "Device" and
    // "Grad" would otherwise take twice what "cuda:0" and "no" need, from the names.
    hh->setSortIndicatorShown(false);
    m_table->resizeColumnsToContents();
    hh->setSortIndicatorShown(true);
    m_tableNameNatural = hh->sectionSize(TensorTableModel::NameColumn);
    // Statistics print six significant digits: a narrow cap keeps several on screen. The names
    // get their room once the panes have their widths (applyPendingFit); until then the old cap.
    for (int c = 0; c < TensorTableModel::ColumnCount; ++c)
        hh->resizeSection(c, std::min(hh->sectionSize(c), c == TensorTableModel::NameColumn ? 280 : 110));
    // Names keep their width (statistics columns would squeeze a stretched one to nothing); the
    // last column takes what is left.
    hh->setSectionResizeMode(TensorTableModel::NameColumn, QHeaderView::Interactive);
    hh->setStretchLastSection(true);
    m_fitPending = true;
    applyPendingFit();
}

void DocumentView::applyPendingFit()
{
    // A view loaded in a hidden tab has no real width yet: showEvent() brings it here again.
    if (!m_fitPending || !isVisible() || m_pages->currentWidget() != m_contentPage)
        return;
    m_fitPending = false;
    fitStructurePane();
    layoutTreeColumns();
    m_table->horizontalHeader()->resizeSection(TensorTableModel::NameColumn,
                                               std::min(m_tableNameNatural, tableNameRoom()));
}

int DocumentView::tableNameRoom() const
{
    // Names before statistics: those scroll into view (and the detail pane shows the selected
    // tensor's); never less than the 280 pixels names always had.
    const auto *hh = m_table->horizontalHeader();
    int others = 0;
    for (int c = TensorTableModel::DTypeColumn; c <= TensorTableModel::RequiresGradColumn; ++c)
        others += hh->isSectionHidden(c) ? 0 : hh->sectionSize(c);
    return std::max(280, m_table->viewport()->width() - others);
}

void DocumentView::fitStructurePane()
{
    const QList<int> sizes = m_splitter->sizes();
    if (m_structureByUser || sizes.size() != 2 || m_treeNaturalWidths[DocumentTreeModel::KeyColumn] <= 0)
        return;
    if (m_structureBaseWidth < 0) {
        // The default or restored width: a file with short keys keeps it, and it is what is saved.
        m_structureBaseWidth = sizes[0];
        m_structureBaseState = m_splitter->saveState();
    }
    const int total = sizes[0] + sizes[1];
    // The pane holds Key at its content width, Type as narrow as layoutTreeColumns() lets it go
    // before Key, and Value's room, with its margins, frame and a scroll bar: it widens for keys.
    int treeChrome = m_splitter->widget(0)->width() - m_tree->viewport()->width();
    if (!m_tree->verticalScrollBar()->isVisible())
        treeChrome += style()->pixelMetric(QStyle::PM_ScrollBarExtent, nullptr, m_tree);
    const QFontMetrics fm = m_tree->fontMetrics();
    const int type = std::min(m_treeNaturalWidths[DocumentTreeModel::TypeColumn],
                              fm.horizontalAdvance(QStringLiteral("Tensor")) + 16);
    const int leftNeed = treeChrome + m_treeNaturalWidths[DocumentTreeModel::KeyColumn] + type + treeValueRoom(fm);
    // The right pane keeps what the table needs for whole names beside DType … Grad, and room for
    // the detail pane: at least 55% of the width; at most 65% when both cannot be whole (the
    // table is what a file is opened to see, as the default split has it at 70%).
    const bool tableShown = m_viewTabs->currentIndex() == TensorsTab;
    const int tableChrome = tableShown ? sizes[1] - m_table->viewport()->width()
                                       : 40 + style()->pixelMetric(QStyle::PM_ScrollBarExtent, nullptr, m_table);
    const auto *hh = m_table->horizontalHeader();
    int describe = 0;
    for (int c = TensorTableModel::DTypeColumn; c <= TensorTableModel::RequiresGradColumn; ++c)
        describe += hh->isSectionHidden(c) ? 0 : hh->sectionSize(c);
    const int rightNeed = tableChrome + m_tableNameNatural + describe;
    // Never less than the Predict tab needs side by side (its form beside its results): the pane
    // keeps the same split on every tab, and Predict scrolls only in a window too small for it.
    const int predictNeed = m_prediction->minimumSizeHint().width() + (sizes[1] - m_viewTabs->currentWidget()->width());
    const int rightKeep = std::max(std::clamp(rightNeed, total * 55 / 100, total * 65 / 100), predictNeed);
    const int left = std::max(m_structureBaseWidth, std::min(leftNeed, total - rightKeep));
    if (left != sizes[0])
        m_splitter->setSizes({left, total - left});
}

void DocumentView::layoutTreeColumns()
{
    if (m_treeColumnsByUser || m_treeNaturalWidths[DocumentTreeModel::KeyColumn] <= 0)
        return;
    const QScopedValueRollback<bool> guard(m_fittingTree, true);
    // Value is what a row is opened to see: it keeps room for a tensor's "[50, 10] float32" or a
    // short number. When the pane is too narrow for every column at its content width, DType and
    // Shape go first (Value says both for a tensor), then Type narrows to what "Tensor" needs,
    // then Key down to about half the pane (elided in its middle; its tooltip has the full path).
    const QFontMetrics fm = m_tree->fontMetrics();
    const int available = m_tree->viewport()->width();
    const int valueRoom = treeValueRoom(fm);
    const auto *nat = m_treeNaturalWidths;
    int key = nat[DocumentTreeModel::KeyColumn];
    int type = nat[DocumentTreeModel::TypeColumn];
    bool shape = true, dtype = true;
    auto used = [&] {
        return key + type + (shape ? nat[DocumentTreeModel::ShapeColumn] : 0) +
               (dtype ? nat[DocumentTreeModel::DTypeColumn] : 0);
    };
    if (used() + valueRoom > available)
        dtype = false;
    if (used() + valueRoom > available)
        shape = false;
    const int typeMin = std::min(type, fm.horizontalAdvance(QStringLiteral("Tensor")) + 16);
    if (used() + valueRoom > available)
        type = std::max(typeMin, available - valueRoom - key);
    const int keyMin = std::min(key, available * 45 / 100);
    if (used() + valueRoom > available)
        key = std::max(keyMin, available - valueRoom - type);
    auto *th = m_tree->header();
    m_tree->setColumnHidden(DocumentTreeModel::ShapeColumn, !shape);
    m_tree->setColumnHidden(DocumentTreeModel::DTypeColumn, !dtype);
    th->resizeSection(DocumentTreeModel::KeyColumn, key);
    th->resizeSection(DocumentTreeModel::TypeColumn, type);
    if (shape)
        th->resizeSection(DocumentTreeModel::ShapeColumn, nat[DocumentTreeModel::ShapeColumn]);
    if (dtype)
        th->resizeSection(DocumentTreeModel::DTypeColumn, nat[DocumentTreeModel::DTypeColumn]);
}

bool DocumentView::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == m_tree->viewport() && event->type() == QEvent::Resize)
        layoutTreeColumns();  // the splitter or the window moved: the columns fit the new width
    return QWidget::eventFilter(watched, event);
}

void DocumentView::applyTreeFilter(const QString &text)
{
    m_treeProxy->setFilterFixedString(text);
    if (text.isEmpty()) {
        m_tree->collapseAll();
        for (int r = 0; r < m_treeProxy->rowCount(); ++r) {
            const QModelIndex i = m_treeProxy->index(r, 0);
            if (m_treeProxy->rowCount(i) <= kExpandChildLimit)
                m_tree->expand(i);
        }
        return;
    }
    // Open the branches that lead to matches, breadth first, within a budget.
    QList<QModelIndex> queue{QModelIndex()};
    int opened = 0;
    while (!queue.isEmpty() && opened < kFilterExpandBudget) {
        const QModelIndex parent = queue.takeFirst();
        const int rows = m_treeProxy->rowCount(parent);
        for (int r = 0; r < rows && opened < kFilterExpandBudget; ++r) {
            const QModelIndex child = m_treeProxy->index(r, 0, parent);
            const QModelIndex source = m_treeProxy->mapToSource(child);
            if (m_treeProxy->hasChildren(child) &&
                !source.data(Qt::DisplayRole).toString().contains(text, Qt::CaseInsensitive)) {
                m_tree->expand(child);
                ++opened;
                queue.append(child);
            }
        }
    }
}

void DocumentView::selectInTree(const QModelIndex &tableIndex)
{
    if (!m_document || !tableIndex.isValid() || m_document->stateDictSource != "dict")
        return;
    const QScopedValueRollback<bool> guard(m_syncingSelection, true);
    QStringList path;
    for (const auto &step : m_document->stateDictPath)
        path << QString::fromStdString(step);
    path << tableIndex.data(TensorTableModel::TensorNameRole).toString();
    const QModelIndex proxy = m_treeProxy->mapFromSource(m_treeModel->indexForPath(path));
    if (!proxy.isValid())
        return;
    m_tree->setCurrentIndex(proxy);
    m_tree->scrollTo(proxy);
}

void DocumentView::showTableTensor(const QModelIndex &tableIndex)
{
    if (!m_document || !tableIndex.isValid())
        return;
    const int row = m_tableProxy->mapToSource(tableIndex).row();
    const auto &rows = m_tableModel->tensors();
    if (row < 0 || static_cast<std::size_t>(row) >= rows.size() || !rows[static_cast<std::size_t>(row)].value)
        return;
    const NamedTensor &nt = rows[static_cast<std::size_t>(row)];
    showInDetail(QString::fromStdString(nt.name), nt.value->tensorRef().get(), row);
}

void DocumentView::showTreeTensor(const QModelIndex &treeIndex)
{
    if (!m_document || !treeIndex.isValid() || !treeIndex.data(DocumentTreeModel::IsTensorRole).toBool())
        return;
    const auto &snapshot = m_treeModel->snapshot();
    const QVariant id = treeIndex.data(DocumentTreeModel::NodeIdRole);
    if (!snapshot || !id.isValid())
        return;
    const Value *value = snapshot->node(id.toInt()).value;
    if (!value || !value->tensorRef())
        return;
    // A tensor of the table keeps its row (and the statistics the table has for it).
    int row = -1;
    const auto &rows = m_tableModel->tensors();
    for (std::size_t i = 0; i < rows.size(); ++i)
        if (rows[i].value.get() == value) {
            row = static_cast<int>(i);
            break;
        }
    showInDetail(treeIndex.data(DocumentTreeModel::PathTextRole).toString(), value->tensorRef().get(), row);
    if (!m_syncingSelection)
        selectInTable(row);
}

QList<QAction *> DocumentView::makeViewActions(QObject *parent)
{
    QList<QAction *> out;
    const QString names[ViewTabCount] = {tr("&Tensors"), tr("&Modules"), tr("&Optimizer"),
                                     tr("Meta&data"), tr("&Security"), tr("&Predict")};
    for (int i = 0; i < ViewTabCount; ++i) {
        auto *a = new QAction(names[i], parent);
        a->setObjectName(QStringLiteral("showView%1").arg(i));
        a->setShortcut(QKeySequence(Qt::ALT | static_cast<Qt::Key>(Qt::Key_1 + i)));
        a->setShortcutContext(Qt::WindowShortcut);
        a->setStatusTip(tr("Show the %1 tab").arg(QString(names[i]).remove(QLatin1Char('&'))));
        out << a;
    }
    auto *find = new QAction(tr("&Find\u2026"), parent);
    find->setObjectName(QStringLiteral("findAction"));
    find->setShortcut(QKeySequence::Find);
    find->setShortcutContext(Qt::WindowShortcut);
    find->setStatusTip(tr("Filter the view shown (the tensor table, the modules), else the structure tree"));
    out << find;
    return out;
}

QLineEdit *DocumentView::findFilter() const
{
    // The keyboard in the structure pane: the tree is what the user is looking at.
    const QWidget *focus = QApplication::focusWidget();
    if (focus && m_tree->parentWidget()->isAncestorOf(focus))
        return m_treeFilterEdit;
    switch (m_viewTabs->currentIndex()) {
    case TensorsTab: return m_tableFilterEdit;
    case ModulesTab: return m_modules->filter();
    default: return m_treeFilterEdit;  // the tab has no filter of its own
    }
}

void DocumentView::showView(int index)
{
    if (index < 0 || index >= m_viewTabs->count())
        return;
    m_viewTabs->setCurrentIndex(index);
    // The keyboard goes into the pane (its first control that takes Tab focus), so its own keys
    // (arrows, Enter) work at once.
    QWidget *page = m_viewTabs->widget(index);
    if (!page->isVisible() || page->isAncestorOf(QApplication::focusWidget()))
        return;
    for (QWidget *w = page->nextInFocusChain(); w && w != page; w = w->nextInFocusChain()) {
        if (page->isAncestorOf(w) && (w->focusPolicy() & Qt::TabFocus) && w->isVisible() && w->isEnabled()) {
            w->setFocus(Qt::ShortcutFocusReason);
            return;
        }
    }
    page->setFocus(Qt::ShortcutFocusReason);
}

void DocumentView::selectInTable(int sourceRow)
{
    const QScopedValueRollback<bool> guard(m_syncingSelection, true);
    const QModelIndex proxy = sourceRow >= 0
                                  ? m_tableProxy->mapFromSource(m_tableModel->index(sourceRow, TensorTableModel::NameColumn))
                                  : QModelIndex();
    if (!proxy.isValid()) {
        // Not a row of the table (an optimizer tensor), or filtered out: no row stays highlighted.
        m_table->selectionModel()->clear();
        return;
    }
    m_table->selectionModel()->setCurrentIndex(
        proxy, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    m_table->scrollTo(proxy);
}

void DocumentView::showInDetail(const QString &name, const TensorRef *tensor, int tableRow)
{
    if (tensor && tensor == m_detailTensor)
        return;  // the table and the tree follow each other: one tensor, shown once
    m_detailTensor = tensor;
    m_detailRow = tableRow;
    const TensorStats *known = tableRow >= 0 ? m_tableModel->statistics(tableRow) : nullptr;
    m_detail->setTensor(tensor ? m_document : nullptr, name, tensor, known);
}

void DocumentView::restoreLayout()
{
    const QSettings settings;
    // Without a saved layout: the structure tree takes about a third of the width (Key, Type and
    // Value side by side at 1280 pixels), and the tensor table about 63% of the height over the
    // selected tensor's detail (13 or so rows at 1280x800).
    const bool restored = m_splitter->restoreState(settings.value(QLatin1String(kStructureSplitterKey)).toByteArray());
    if (!restored)
        m_splitter->setSizes({300, 700});
    // A width the user chose keeps for every file; else the pane widens for long keys (fitStructurePane).
    m_structureByUser = restored && settings.value(QLatin1String(kStructureChosenKey), false).toBool();
    if (!m_tensorSplitter->restoreState(settings.value(QLatin1String(kTensorSplitterKey)).toByteArray()))
        m_tensorSplitter->setSizes({380, 220});
    if (auto *inner = m_detail->findChild<QSplitter *>(QStringLiteral("detailSplitter")))
        inner->restoreState(settings.value(QLatin1String(kDetailSplitterKey)).toByteArray());
    m_wantedView = settings.value(QLatin1String(kCurrentViewKey), 0).toInt();
}

void DocumentView::showEvent(QShowEvent *event)
{
    QWidget::showEvent(event);
    if (m_fitPending)  // loaded while hidden: fit once the panes have their widths
        QTimer::singleShot(0, this, &DocumentView::applyPendingFit);
    if (m_viewRestored)
        return;
    // The tabs are all there by the first show: pick the remembered one, then follow the user.
    m_viewRestored = true;
    if (m_wantedView >= 0 && m_wantedView < m_viewTabs->count())
        m_viewTabs->setCurrentIndex(m_wantedView);
    connect(m_viewTabs, &QTabWidget::currentChanged, this, [this] {
        updatePredictionDocument();
        saveLayout();
    });
}

void DocumentView::saveLayout() const
{
    QSettings settings;
    // The width this view gave its keys is not saved as the user's: the next view starts from the
    // width before the fitting. Nor does it replace a width the user chose in another view.
    if (m_structureByUser || !settings.value(QLatin1String(kStructureChosenKey), false).toBool()) {
        const bool fitted = !m_structureByUser && !m_structureBaseState.isEmpty();
        settings.setValue(QLatin1String(kStructureSplitterKey), fitted ? m_structureBaseState : m_splitter->saveState());
        settings.setValue(QLatin1String(kStructureChosenKey), m_structureByUser);
    }
    settings.setValue(QLatin1String(kTensorSplitterKey), m_tensorSplitter->saveState());
    if (auto *inner = m_detail->findChild<QSplitter *>(QStringLiteral("detailSplitter")))
        settings.setValue(QLatin1String(kDetailSplitterKey), inner->saveState());
    settings.setValue(QLatin1String(kCurrentViewKey), m_viewTabs->currentIndex());
}

QString DocumentView::summary() const
{
    switch (m_state) {
    case State::Empty: return {};
    case State::Loading: return tr("Reading %1\u2026").arg(QFileInfo(m_path).fileName());
    case State::Failed: return tr("Could not read %1").arg(QFileInfo(m_path).fileName());
    case State::Loaded: break;
    }
    const Document &doc = *m_document;
    QStringList parts{QString::fromStdString(formatName(doc.format)), QString::fromStdString(kindName(doc.kind))};
    if (doc.hasStateDict)
        parts << tensorCountText(doc) << valuetext::counted(doc.parameterCount(), tr("element"), tr("elements"));
    return parts.join(QStringLiteral(" \u00b7 "));
}

} // namespace ckpt
