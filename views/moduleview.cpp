#include "moduleview.h"

#include "document.h"
#include "moduletreemodel.h"
#include "valuetext.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QSortFilterProxyModel>
#include <QTreeView>
#include <QVBoxLayout>

namespace ckpt {

ModuleView::ModuleView(QWidget *parent) : QWidget(parent)
{
    m_model = new ModuleTreeModel(this);
    m_proxy = new QSortFilterProxyModel(this);
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(ModuleTreeModel::SortRole);
    m_proxy->setRecursiveFilteringEnabled(true);
    m_proxy->setAutoAcceptChildRows(true);
    m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_proxy->setFilterKeyColumn(ModuleTreeModel::NameColumn);

    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("moduleSummary"));
    m_filter = new QLineEdit(this);
    m_filter->setObjectName(QStringLiteral("moduleFilter"));
    m_filter->setPlaceholderText(tr("Filter modules and tensors\u2026"));
    m_filter->setClearButtonEnabled(true);
    m_filter->setAcceptDrops(false);
    m_filter->setMaximumWidth(320);
    m_view = new QTreeView(this);
    m_view->setObjectName(QStringLiteral("moduleTree"));
    m_view->setModel(m_proxy);
    m_view->setUniformRowHeights(true);
    m_view->setAlternatingRowColors(true);
    m_view->setAllColumnsShowFocus(true);
    m_view->setSortingEnabled(true);
    m_view->header()->setSortIndicatorClearable(true);
    m_view->sortByColumn(-1, Qt::AscendingOrder);  // registration order until a header is clicked
    m_view->header()->setStretchLastSection(true);

    auto *bar = new QHBoxLayout;
    bar->addWidget(m_summary, 1);
    bar->addWidget(m_filter, 1);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 0);
    layout->addLayout(bar);
    layout->addWidget(m_view, 1);

    connect(m_filter, &QLineEdit::textChanged, this, [this](const QString &text) {
        m_proxy->setFilterFixedString(text);
        if (!text.isEmpty() && m_proxy->rowCount() < 2000)
            m_view->expandAll();
    });
    connect(m_view->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex &current) {
        if (current.data(ModuleTreeModel::IsTensorRole).toBool())
            Q_EMIT tensorSelected(current.data(ModuleTreeModel::PathRole).toString());
    });
}

void ModuleView::setDocument(const std::shared_ptr<const Document> &doc)
{
    m_model->setDocument(doc);
    if (!doc || doc->stateDict.empty()) {
        m_summary->setText(doc ? tr("This file has no state dict to fold into modules.") : QString());
        return;
    }
    const qint64 elements = m_model->totalElements();
    const qint64 bytes = m_model->totalBytes();
    m_summary->setText(tr("%1 \u00b7 %2 \u00b7 %3 elements \u00b7 %4")
                           .arg(valuetext::counted(m_model->moduleCount(), tr("module"), tr("modules")),
                                valuetext::counted(static_cast<qint64>(doc->stateDict.size()), tr("tensor"), tr("tensors")),
                                valuetext::count(elements), valuetext::bytes(bytes)));
    // Open the first levels of small hierarchies; a deep transformer stays folded at its blocks.
    m_view->expandToDepth(m_model->moduleCount() <= 40 ? 2 : 0);
    for (int c = 0; c < ModuleTreeModel::NoteColumn; ++c)
        m_view->resizeColumnToContents(c);
}

} // namespace ckpt
