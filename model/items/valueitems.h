#pragma once

#include <QList>
#include <Qt>
#include <QString>

#include <functional>
#include <memory>
#include <vector>

class QStandardItem;

namespace ckpt {

class Value;
struct Child;

// Rows of Key | Type | Value for a value and what it holds, for the small trees of the metadata,
// optimizer and security views (QStandardItemModel). Containers open up to `maxDepth` levels and
// `budget` rows in all; a container met again (shared or cyclic) is listed, not opened twice.
struct ValueItemsBudget {
    int rows = 20000;
    int maxDepth = 32;
};

// The row for `value` under the label `key`: three items, the first holding the children.
QList<QStandardItem *> valueRow(const QString &key, const std::shared_ptr<Value> &value, ValueItemsBudget &budget);
// The rows of `children` under `parent` (a section's entries), as valueRow makes them, while the
// budget lasts; then one row "… N more items".
void appendValueRows(QStandardItem *parent, const std::vector<Child> &children, ValueItemsBudget &budget);
// `count` rows made by `rowAt(i)` under `parent`, in order, with the same bound and closing row; a
// row that does not spend the budget itself (a heading) counts one.
void appendRows(QStandardItem *parent, qint64 count, ValueItemsBudget &budget,
                const std::function<QList<QStandardItem *>(qint64)> &rowAt);
// A section heading row ("Metadata", "Sidecar …") with a bold label and a note in the value column.
QList<QStandardItem *> sectionRow(const QString &title, const QString &note = {});

} // namespace ckpt
