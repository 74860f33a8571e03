#pragma once

#include <QModelIndex>
#include <QString>

class QAbstractItemView;
class QMenu;
class QPoint;

namespace ckpt::itemviewcopy {

// The selected cells of `view` as the user sees them: one line per row, in the order the view
// shows the rows, the cells of a row in the order of its (visible) columns, tab-separated, each
// cell's displayed text with tabs and line breaks turned into spaces. Without a selection, the
// current cell; empty when there is neither.
QString selectionText(const QAbstractItemView *view);

// One cell's displayed text, on one line (tabs and line breaks as spaces).
QString cellText(const QModelIndex &index);

// The row's name (its first column) and value (the column headed "Value", when the model has
// one), as the context menu's "Copy name" and "Copy value" put them on the clipboard; empty
// when the row has none.
QString nameOf(const QAbstractItemView *view, const QModelIndex &index);
QString valueOf(const QAbstractItemView *view, const QModelIndex &index);

// A context menu for `view` at `index` (the cell under the mouse, may be invalid): Copy, and Copy
// name / Copy value where the row has them. Owned by the caller.
QMenu *contextMenu(QAbstractItemView *view, const QModelIndex &index);

} // namespace ckpt::itemviewcopy
