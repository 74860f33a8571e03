#pragma once

#include "computeapi.h"

#include <QAbstractTableModel>
#include <QString>

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
        MinColumn,       // statistics, filled in as they arrive (setStatistics)
        MaxColumn,
        MeanColumn,
        StdColumn,
        L2Column,            // Euclidean norm, as torch.linalg.norm (nan with a NaN)
        ZeroFractionColumn,  // zeros among all elements
        NonFiniteColumn,     // NaN and Inf counts
        ColumnCount
    };
    enum Role {
        SortRole = Qt::UserRole,  // numbers for numeric columns (qlonglong), text otherwise
        ProblemRole,              // QString: why the tensor cannot be trusted, empty when fine
        TensorNameRole,           // QString: state-dict key
        ShapeRole,                // QList<qlonglong>
        HasStatisticsRole,        // bool: statistics (or their error) arrived for this row
        NonFiniteRole,            // bool: the statistics found NaN or Inf values in this row's tensor
        StatisticsRole,           // QVariant<ckpt::TensorStats> once known (invalid before or on error)
    };
    Q_ENUM(Role)

    explicit TensorTableModel(QObject *parent = nullptr);
    ~TensorTableModel() override;

    // Shows the state dict of `doc` (GUI thread); nullptr empties the table.
    void setDocument(std::shared_ptr<const Document> doc);
    const std::shared_ptr<const Document> &document() const { return m_document; }

    // Statistics of one row, computed elsewhere (GUI thread); the row's statistics cells change.
    void setStatistics(int row, const TensorStats &stats);
    void setStatisticsError(int row, const QString &why);
    // The statistics of `row`, nullptr while unknown or when they failed.
    const TensorStats *statistics(int row) const;
    // The row's error text when its statistics failed, empty otherwise.
    QString statisticsError(int row) const;
    // The rows the table shows, in order (the state dict, or every tensor without one).
    const std::vector<NamedTensor> &tensors() const { return rows(); }

    // What the statistics columns are (torch's figures, complex parts together): their header tooltip.
    static QString statisticsNote();

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::shared_ptr<const Document> m_document;
    struct Stats {
        bool known = false;
        TensorStats values;
        QString error;
    };
    std::vector<Stats> m_stats;
    const std::vector<NamedTensor> &rows() const;
    QVariant statisticsData(int row, int column, int role) const;
};

} // namespace ckpt

Q_DECLARE_METATYPE(ckpt::TensorStats)
