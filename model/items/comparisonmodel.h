#pragma once

#include <QAbstractItemModel>

#include <memory>
#include <vector>

namespace ckpt {

struct Comparison;

// A comparison of two checkpoints as one tree: the tensors of both files folded into modules by
// their aligned names, each row with its change (identical, within tolerance, different, another
// shape, added, removed) and figures; module rows sum their tensors' figures. Rows are coloured by
// the size of the change (relative L2 on a log scale) so the layers that moved most stand out.
class ComparisonModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column { NameColumn, ChangeColumn, MaxAbsColumn, RelativeColumn, CosineColumn, DTypeColumn, ShapeColumn,
                  ColumnCount };
    enum Role {
        SortRole = Qt::UserRole,  // numbers as numbers (missing figures sort last)
        ChangedRole,              // bool: the row or something under it is not identical
        MagnitudeRole,            // double: relative L2 of the change; +inf for added, removed, reshaped
        StatusRole,               // QString: "identical", "close", "different", "shape_changed", "added", "removed", "module"
        NameARole,                // QString: the tensor's name in the first file (empty when added)
        NameBRole,                // QString: in the second file (empty when removed)
        PathRole,                 // QString: the aligned dotted path
    };
    Q_ENUM(Role)

    explicit ComparisonModel(QObject *parent = nullptr);
    ~ComparisonModel() override;

    void setComparison(std::shared_ptr<const Comparison> comparison);
    const std::shared_ptr<const Comparison> &comparison() const { return m_comparison; }
    QModelIndex indexOfPath(const QString &path) const;

    QModelIndex index(int row, int column, const QModelIndex &parent = {}) const override;
    QModelIndex parent(const QModelIndex &child) const override;
    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    struct Node;
    std::shared_ptr<const Comparison> m_comparison;
    std::vector<Node> m_nodes;
    const Node &nodeOf(const QModelIndex &index) const;
};

// The background colour of a change: none when identical, violet for a structural change (added,
// removed, reshaped), else pale yellow to red as the relative change grows from 1e-7 to 1 (log scale).
QColor changeColour(double magnitude, bool identical, bool structural = false);

} // namespace ckpt
