#pragma once

#include <QAbstractItemModel>

#include <cstddef>
#include <vector>

namespace ckpt {

// The plumbing of a tree model kept as a flat vector of nodes (node 0 the invisible root), each
// with `parent` (index, -1 for the root), `row` (under its parent) and `children` (indices); a
// model index's internal id is its node's index. Subclasses fill
// m_nodes and give the columns and data.
template <class Node> class FlatTreeModel : public QAbstractItemModel {
public:
    using QAbstractItemModel::QAbstractItemModel;

    QModelIndex index(int row, int column, const QModelIndex &parent = {}) const override
    {
        if (m_nodes.empty() || column < 0 || column >= columnCount() || row < 0 ||
            (parent.isValid() && parent.column() != 0))
            return {};
        const Node &p = nodeOf(parent);
        if (row >= static_cast<int>(p.children.size()))
            return {};
        return createIndex(row, column, static_cast<quintptr>(p.children[static_cast<std::size_t>(row)]));
    }

    QModelIndex parent(const QModelIndex &child) const override
    {
        if (!child.isValid())
            return {};
        const Node &n = nodeOf(child);
        if (n.parent <= 0)
            return {};
        return createIndex(m_nodes[static_cast<std::size_t>(n.parent)].row, 0, static_cast<quintptr>(n.parent));
    }

    int rowCount(const QModelIndex &parent = {}) const override
    {
        if (m_nodes.empty() || (parent.isValid() && parent.column() != 0))
            return 0;
        return static_cast<int>(nodeOf(parent).children.size());
    }

protected:
    const Node &nodeOf(const QModelIndex &index) const
    {
        return m_nodes[index.isValid() ? static_cast<std::size_t>(index.internalId()) : 0];
    }

    std::vector<Node> m_nodes;
};

} // namespace ckpt
