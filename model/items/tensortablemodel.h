#pragma once

#include <QAbstractTableModel>

#include <memory>
#include <vector>

namespace ckpt {

struct Document;
struct NamedTensor;

// The state dict of one document as a table, one row per tensor in file order; without a state
// dict, every tensor of the file by path.
class TensorTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        NameColumn,
        DTypeColumn,
        ShapeColumn,
        NumelColumn,
        BytesColumn,
        DeviceColumn,
        RequiresGradColumn,
        ColumnCount
    };
    enum Role {
        SortRole = Qt::UserRole,  // numbers for numeric columns (qlonglong), text otherwise
        ProblemRole,              // QString: why the tensor cannot be trusted, empty when fine
        TensorNameRole,           // QString: state-dict key
        ShapeRole,                // QList<qlonglong>
    };
    Q_ENUM(Role)

    explicit TensorTableModel(QObject *parent = nullptr);
    ~TensorTableModel() override;

    // Shows the state dict of `doc` (GUI thread); nullptr empties the table.
    void setDocument(std::shared_ptr<const Document> doc);
    const std::shared_ptr<const Document> &document() const { return m_document; }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::shared_ptr<const Document> m_document;
    const std::vector<NamedTensor> &rows() const;
};

} // namespace ckpt
