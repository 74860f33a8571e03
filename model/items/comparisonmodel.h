#pragma once

#include "computeapi.h"
#include "flattreemodel.h"

#include <QString>

#include <memory>
#include <vector>

namespace ckpt {

struct Comparison;

// One row of a ComparisonModel: a module or a tensor of the aligned names.
struct ComparisonNode {
    QString name;
    QString path;
    QString status;        // see ComparisonModel::StatusRole
    QString nameA, nameB;
    QString dtype, shape;
    int parent = -1;
    int row = 0;
    std::vector<int> children;
    int tensor = -1;       // index into comparison->tensors for tensors in both
    bool changed = false;
    int level = 0;           // 0 identical, 1 within tolerance, 2 changed; a module's is its worst tensor's
    bool structural = false; // a module with an added, removed, reshaped or unreadable tensor under it
    TensorDiff diff;       // tensors and (summed) modules
    bool hasFigures = false;
    // A module's sums, kept apart for floating (and complex) tensors and for integer ones: its
    // figures are the floating tensors' where it has any, as `ckpt diff` pools them.
    bool floating = false;  // a tensor: either file holds it as a floating or complex type
    TensorDiff pooled[2];   // [0] integer tensors, [1] floating tensors under the node
    bool pooledAny[2] = {false, false};
    // A NaN or infinity appeared, went or moved (diff.nonFinite > 0), as `ckpt diff` says
    // "diverged": the figures over the finite positions can read small for a tensor that blew up.
    bool diverged() const { return hasFigures && diff.nonFinite > 0; }
};

// A comparison of two checkpoints as one tree: the tensors of both files folded into modules by
// their aligned names, each row with its change (identical, within tolerance, different, another
// shape, added, removed) and figures; module rows sum their floating tensors' figures (their
// integer ones' when they have no floating tensor, as `ckpt diff` does) and say the worst
// change under them (identical, within tolerance, else changed). A row with NaN/Inf mismatches
// (a NaN or infinity came, went or moved) says "diverged" and how many, as `ckpt diff` does, and
// sorts first by change, then the others by relative L2, most changed first (the CLI's order).
// Rows are coloured by the size of the change (relative L2 on a log scale) so the layers that
// moved most stand out; diverged ones in the colour of non-finite values.
class ComparisonModel : public FlatTreeModel<ComparisonNode> {
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
        NonFiniteMismatchRole,    // qlonglong: positions where one side is NaN/Inf and the other not the same
    };
    Q_ENUM(Role)

    explicit ComparisonModel(QObject *parent = nullptr);
    ~ComparisonModel() override;

    void setComparison(std::shared_ptr<const Comparison> comparison);
    const std::shared_ptr<const Comparison> &comparison() const { return m_comparison; }
    QModelIndex indexOfPath(const QString &path) const;

    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    using Node = ComparisonNode;
    std::shared_ptr<const Comparison> m_comparison;
};

// The background colour of a change: none when identical, violet for a structural change (added,
// removed, reshaped), else pale yellow to red as the relative change grows from 1e-7 to 1 (log scale).
QColor changeColour(double magnitude, bool identical, bool structural = false);

} // namespace ckpt
