#pragma once

#include "treesnapshot.h"

#include <QAbstractItemModel>

#include <memory>

namespace ckpt {

// The whole value tree of one document: Key | Type | Shape | DType | Value. Shows an immutable
// TreeSnapshot; a new snapshot replaces the old one with a model reset.
class DocumentTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column { KeyColumn, TypeColumn, ShapeColumn, DTypeColumn, ValueColumn, ColumnCount };
    enum Role {
        ValueKindRole = Qt::UserRole,  // int(ckpt::Value::Kind); invalid for "… N more" rows
        PathRole,                      // QStringList: labels from the top level
        PathTextRole,                  // "model_state_dict/fc1.weight"
        IsTensorRole,                  // bool
        IsAliasRole,                   // bool: the object is shown in full at AliasPathRole
        AliasPathRole,                 // QStringList: where an alias's object is opened
        IsPlaceholderRole,             // bool: the "… N more" row
        ProblemRole,                   // QString: what is wrong with a tensor, empty when nothing
        NodeIdRole,                    // int: index into the snapshot's nodes
    };
    Q_ENUM(Role)

    explicit DocumentTreeModel(QObject *parent = nullptr);
    ~DocumentTreeModel() override;

    // Builds the snapshot setSnapshot() takes; safe to call from a worker thread.
    static std::shared_ptr<const TreeSnapshot> buildSnapshot(std::shared_ptr<const Document> doc,
                                                             const TreeSnapshotOptions &options = {});

    // Replaces what the model shows (GUI thread). nullptr empties it.
    void setSnapshot(std::shared_ptr<const TreeSnapshot> snapshot);
    const std::shared_ptr<const TreeSnapshot> &snapshot() const { return m_snapshot; }
    // The index of the row at `path` (labels from the top level), invalid when not listed.
    QModelIndex indexForPath(const QStringList &path, int column = KeyColumn) const;

    QModelIndex index(int row, int column, const QModelIndex &parent = {}) const override;
    QModelIndex parent(const QModelIndex &child) const override;
    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    bool hasChildren(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex &index) const override;

private:
    int nodeId(const QModelIndex &index) const;
    QVariant display(const TreeNode &n, int column) const;
    QVariant toolTip(int id, const TreeNode &n) const;

    std::shared_ptr<const TreeSnapshot> m_snapshot;
};

} // namespace ckpt
