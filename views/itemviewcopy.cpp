#include "itemviewcopy.h"

#include "copyrole.h"

#include <QAbstractItemView>
#include <QAction>
#include <QClipboard>
#include <QGuiApplication>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QKeySequence>
#include <QMenu>
#include <QTableView>
#include <QTreeView>

#include <algorithm>
#include <map>
#include <vector>

namespace ckpt::itemviewcopy {

namespace {

QHeaderView *columnHeader(const QAbstractItemView *view)
{
    if (const auto *tree = qobject_cast<const QTreeView *>(view))
        return tree->header();
    if (const auto *table = qobject_cast<const QTableView *>(view))
        return table->horizontalHeader();
    return nullptr;
}

bool columnHidden(const QAbstractItemView *view, int column)
{
    if (const auto *tree = qobject_cast<const QTreeView *>(view))
        return tree->isColumnHidden(column);
    if (const auto *table = qobject_cast<const QTableView *>(view))
        return table->isColumnHidden(column);
    return false;
}

bool rowHidden(const QAbstractItemView *view, const QModelIndex &index)
{
    if (const auto *tree = qobject_cast<const QTreeView *>(view))
        return tree->isRowHidden(index.row(), index.parent());
    if (const auto *table = qobject_cast<const QTableView *>(view))
        return table->isRowHidden(index.row());
    return false;
}

// Where a row is in the view, as a key that sorts the way the view shows the rows: the rows from
// the top level down (a tree's depth-first order), a table's by its vertical header.
std::vector<int> rowOrder(const QAbstractItemView *view, const QModelIndex &index)
{
    std::vector<int> key;
    if (const auto *table = qobject_cast<const QTableView *>(view)) {
        key.push_back(table->verticalHeader()->visualIndex(index.row()));
        return key;
    }
    for (QModelIndex i = index; i.isValid(); i = i.parent())
        key.push_back(i.row());
    std::reverse(key.begin(), key.end());
    return key;
}

int columnOrder(const QAbstractItemView *view, int column)
{
    const QHeaderView *header = columnHeader(view);
    return header ? header->visualIndex(column) : column;
}

QString headerText(const QAbstractItemView *view, int column)
{
    return view->model()->headerData(column, Qt::Horizontal, Qt::DisplayRole).toString();
}

// The first column the view shows, in its visual order; -1 when none.
int firstVisibleColumn(const QAbstractItemView *view, const QModelIndex &index)
{
    const int columns = view->model()->columnCount(index.parent());
    int best = -1;
    for (int c = 0; c < columns; ++c)
        if (!columnHidden(view, c) && (best < 0 || columnOrder(view, c) < columnOrder(view, best)))
            best = c;
    return best;
}

void toClipboard(const QString &text)
{
    if (!text.isEmpty())
        QGuiApplication::clipboard()->setText(text);
}

} // namespace

QString cellText(const QModelIndex &index)
{
    // A rounded figure is copied at full precision where the model gives one (CopyTextRole).
    const QVariant exact = index.data(CopyTextRole);
    QString text = exact.isValid() ? exact.toString() : index.data(Qt::DisplayRole).toString();
    // One cell stays one cell when pasted into a spreadsheet.
    text.replace(QLatin1Char('\t'), QLatin1Char(' '));
    text.replace(QLatin1String("\r\n"), QLatin1String(" "));
    text.replace(QLatin1Char('\n'), QLatin1Char(' '));
    text.replace(QLatin1Char('\r'), QLatin1Char(' '));
    return text;
}

QString selectionText(const QAbstractItemView *view)
{
    if (!view || !view->model())
        return {};
    QModelIndexList cells;
    if (const QItemSelectionModel *selection = view->selectionModel()) {
        cells = selection->selectedIndexes();
        if (cells.isEmpty() && selection->currentIndex().isValid())
            cells << selection->currentIndex();
    }
    // Rows by their place in the view, each row's cells by their column's place.
    std::map<std::vector<int>, std::vector<std::pair<int, QModelIndex>>> rows;
    for (const QModelIndex &cell : std::as_const(cells)) {
        if (!cell.isValid() || columnHidden(view, cell.column()) || rowHidden(view, cell))
            continue;
        rows[rowOrder(view, cell)].emplace_back(columnOrder(view, cell.column()), cell);
    }
    QStringList lines;
    for (auto &[order, row] : rows) {
        std::sort(row.begin(), row.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
        QStringList texts;
        for (const auto &cell : row)
            texts << cellText(cell.second);
        lines << texts.join(QLatin1Char('\t'));
    }
    return lines.join(QLatin1Char('\n'));
}

QString nameOf(const QAbstractItemView *view, const QModelIndex &index)
{
    if (!view || !view->model() || !index.isValid())
        return {};
    const int column = firstVisibleColumn(view, index);
    // A grid of numbers has no name column: its columns are headed 0, 1, 2…
    if (column < 0 || view->model()->columnCount(index.parent()) < 2)
        return {};
    const QString header = headerText(view, column);
    bool number = false;
    header.toLongLong(&number);
    if (header.isEmpty() || number)
        return {};
    return cellText(index.siblingAtColumn(column));
}

QString valueOf(const QAbstractItemView *view, const QModelIndex &index)
{
    if (!view || !view->model() || !index.isValid())
        return {};
    const int columns = view->model()->columnCount(index.parent());
    for (int c = 0; c < columns; ++c)
        if (!columnHidden(view, c) && headerText(view, c).compare(QLatin1String("Value"), Qt::CaseInsensitive) == 0)
            return cellText(index.siblingAtColumn(c));
    return {};
}

QMenu *contextMenu(QAbstractItemView *view, const QModelIndex &index)
{
    auto *menu = new QMenu(view);
    menu->setObjectName(QStringLiteral("itemViewContextMenu"));
    const QString selected = selectionText(view);
    QAction *copy = menu->addAction(QObject::tr("&Copy"), menu, [selected] { toClipboard(selected); });
    copy->setObjectName(QStringLiteral("contextCopy"));
    copy->setShortcut(QKeySequence::Copy);  // shown as a hint: the window's Edit → Copy does the same
    copy->setEnabled(!selected.isEmpty());
    if (const QString name = nameOf(view, index); !name.isEmpty()) {
        QAction *a = menu->addAction(QObject::tr("Copy &Name"), menu, [name] { toClipboard(name); });
        a->setObjectName(QStringLiteral("contextCopyName"));
    }
    if (const QString value = valueOf(view, index); !value.isEmpty()) {
        QAction *a = menu->addAction(QObject::tr("Copy &Value"), menu, [value] { toClipboard(value); });
        a->setObjectName(QStringLiteral("contextCopyValue"));
    }
    return menu;
}

} // namespace ckpt::itemviewcopy
