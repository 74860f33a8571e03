#pragma once

#include <QAbstractTableModel>
#include <QString>

#include <memory>
#include <vector>

namespace ckpt {

struct ConversionPlan;

// A conversion plan as one table, before anything is written: every key kept and dropped, every
// non-tensor value carried over or not written (with why), and the warnings; a sharded output's
// files first (their tensors and bytes).
class ConversionPlanModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { ChangeColumn, EntryColumn, DetailColumn, ColumnCount };
    // Shard: a file of a sharded output; Removes: a file of a previous output under the name, which
    // the new one replaces (ConversionPlan::superseded).
    enum class Change { Kept, Dropped, Carried, Lost, Warning, Shard, Removes };
    enum Role { ChangeRole = Qt::UserRole };  // Change as int

    explicit ConversionPlanModel(QObject *parent = nullptr);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // Shows `plan` (nullptr: nothing).
    void setPlan(std::shared_ptr<const ConversionPlan> plan);
    const std::shared_ptr<const ConversionPlan> &plan() const { return m_plan; }

    // The entries of one kind, in the plan's order (for summaries and tests).
    QStringList entries(Change change) const;
    static QString changeText(Change change);

private:
    struct Row {
        Change change;
        QString entry;
        QString detail;
    };
    std::shared_ptr<const ConversionPlan> m_plan;
    std::vector<Row> m_rows;
};

} // namespace ckpt
