#pragma once

#include "flattreemodel.h"

#include <QString>

#include <cstdint>
#include <memory>
#include <vector>

namespace ckpt {

struct Document;

// One row of a ModuleTreeModel: a module or a tensor.
struct ModuleTreeNode {
    QString name;              // last component
    QString path;              // dotted path from the root
    QString className;         // module class (full models) or "Parameter"/"Tensor"
    QString aliasOf;           // tensors: the first name of the same tensor
    QString note;
    std::int32_t parent = -1;
    std::int32_t row = 0;
    std::vector<std::int32_t> children;
    std::int64_t elements = 0;
    std::int64_t bytes = 0;
    std::int64_t tensors = 0;
    std::int32_t tensor = -1;  // index into the document's state dict for tensor rows
};


// The state dict folded into its module hierarchy: "encoder.layer.3.attention.query.weight" becomes
// encoder › layer › 3 › attention › query › weight. Each module row sums the elements and bytes of
// the tensors under it, counting a tensor that appears under two names (tied weights) once, as
// `module.state_dict()` deduplicated by storage would. A pickled full model also gives each module
// its class. Rows keep the state dict's order; SortRole sorts names naturally ("layer.10" after
// "layer.9") and numbers as numbers.
class ModuleTreeModel : public FlatTreeModel<ModuleTreeNode> {
    Q_OBJECT
public:
    enum Column { NameColumn, ClassColumn, ElementsColumn, BytesColumn, TensorsColumn, DTypeColumn, ShapeColumn,
                  NoteColumn, ColumnCount };
    enum Role {
        SortRole = Qt::UserRole,  // qlonglong for numbers, a natural-order key for names
        PathRole,                 // QString: the dotted path of the module or tensor
        IsTensorRole,             // bool
        ElementsRole,             // qlonglong
        BytesRole,                // qlonglong
        AliasOfRole,              // QString: the first name of the same tensor, empty when none
    };
    Q_ENUM(Role)

    explicit ModuleTreeModel(QObject *parent = nullptr);
    ~ModuleTreeModel() override;

    // Builds the hierarchy of `doc`'s state dict (GUI thread; linear in the number of tensors).
    void setDocument(std::shared_ptr<const Document> doc);
    const std::shared_ptr<const Document> &document() const { return m_document; }

    // The row of a dotted path ("fc1", "fc1.weight", "" is the invisible root); invalid when absent.
    QModelIndex indexOfPath(const QString &path) const;
    // Modules (rows that are not tensors) in the hierarchy, the root excluded.
    int moduleCount() const;
    // The whole state dict's elements and bytes, each tensor counted once.
    qint64 totalElements() const { return m_nodes.empty() ? 0 : m_nodes[0].elements; }
    qint64 totalBytes() const { return m_nodes.empty() ? 0 : m_nodes[0].bytes; }

    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    using Node = ModuleTreeNode;
    std::shared_ptr<const Document> m_document;
};

// A key that sorts "layer.10" after "layer.9": runs of digits padded to a fixed width.
QString naturalSortKey(const QString &text);

} // namespace ckpt
