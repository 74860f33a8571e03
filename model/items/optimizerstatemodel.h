#pragma once

#include "computeapi.h"

#include <QAbstractTableModel>
#include <QStringList>

#include <memory>
#include <vector>

namespace ckpt {

struct Document;
struct NamedTensor;

// The optimizer's per-parameter state as a table: one row per parameter the optimizer keeps state
// for (id, state-dict name mapped by registration order, group, shape check, step), one column per
// state tensor (exp_avg, exp_avg_sq, momentum_buffer, …) showing its L2 norm once statistics
// arrive. The state tensors are listed by stateTensors() for a statistics job; setStatistics()
// fills them in.
class OptimizerStateModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum FixedColumn { IdColumn, NameColumn, GroupColumn, ShapeColumn, StepColumn, FirstStateColumn };
    enum Role {
        SortRole = Qt::UserRole,  // numbers as numbers
        MismatchRole,             // bool: a state tensor's shape differs from the parameter's
        StatisticsRole,           // QVariantMap of torch's figures (l2, min, ...; nan with a NaN), count, nan,
                                  // inf and, with NaN values, "without_nan": those over the others
    };

    explicit OptimizerStateModel(QObject *parent = nullptr);
    ~OptimizerStateModel() override;

    void setDocument(std::shared_ptr<const Document> doc);
    const std::shared_ptr<const Document> &document() const { return m_document; }
    // "SGD", "AdamW (AMSGrad)", as optimizerClassName names it; empty without an optimizer.
    QString optimizerType() const { return m_type; }
    // "Adam" or "AdamW" where the state alone leaves both open and the param groups tell which
    // (see adamVariant), else empty.
    QString optimizerClass() const { return m_class; }
    bool hasOptimizer() const { return !m_type.isEmpty(); }
    bool mappingCertain() const { return m_certain; }
    QString mappingNote() const { return m_note; }
    // State keys shown as columns, in first-seen order.
    QStringList stateKeys() const { return m_keys; }
    // Parameters the optimizer lists that have state saved (torch's len(state_dict()['state'])):
    // fewer than the rows where some took no step yet (frozen, or no gradient).
    int parametersWithState() const { return m_withState; }

    // Every state tensor ("fc1.weight/exp_avg"), for a statistics job; row k of the job is entry k.
    const std::vector<NamedTensor> &stateTensors() const { return m_tensors; }
    void setStatistics(int tensor, const TensorStats &stats);
    void setStatisticsError(int tensor, const QString &why);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    struct Row {
        qint64 id = -1;
        QString key;            // the optimizer's key where it is a name (then id is -1)
        QString name;
        int group = 0;
        QString shape;
        bool mismatch = false;
        QString stepText;       // a plain number; empty when step is a tensor (its statistics tell it)
        int stepTensor = -1;    // index into m_tensors when step is a tensor
        std::vector<int> tensorOfKey;  // per state key: index into m_tensors, -1 when absent
    };
    struct Cell {
        bool known = false;
        TensorStats stats;
        QString error;
    };
    std::shared_ptr<const Document> m_document;
    QString m_type;
    QString m_class;
    bool m_certain = false;
    int m_withState = 0;
    QString m_note;
    QStringList m_keys;
    std::vector<Row> m_rows;
    std::vector<NamedTensor> m_tensors;
    std::vector<Cell> m_cells;
    std::vector<std::pair<int, int>> m_cellPos;  // tensor -> (row, column)
    QVariant cellData(const Row &r, int tensor, int role) const;
};

} // namespace ckpt
