#pragma once
// Finding rows of the inspector views' QStandardItemModels by their key text.
#include <QStandardItem>
#include <QStandardItemModel>
#include <QString>

namespace ckpt::test {

// The child of `parent` whose first column reads `key`; null when there is none.
inline QStandardItem *childNamed(QStandardItem *parent, const QString &key)
{
    for (int r = 0; parent && r < parent->rowCount(); ++r)
        if (parent->child(r, 0)->text() == key)
            return parent->child(r, 0);
    return nullptr;
}

// The top-level section titled `title`; null when there is none.
inline QStandardItem *sectionNamed(QStandardItemModel *m, const QString &title)
{
    for (int r = 0; r < m->rowCount(); ++r)
        if (m->item(r, 0)->text() == title)
            return m->item(r, 0);
    return nullptr;
}

} // namespace ckpt::test
