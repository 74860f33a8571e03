#pragma once

#include "conversionsettings.h"

#include <QAbstractTableModel>
#include <QMap>
#include <QStringList>

#include <memory>

namespace ckpt {

struct ConversionPlan;
struct Document;
struct ScriptExport;

// One file of the conversion queue: what it is converted to, with which settings, its plan
// (computed in the background) and where it stands.
struct ConversionQueueItem {
    enum class Status { Planning, Ready, Invalid, Queued, Running, Done, Failed, Cancelled, Skipped };
    quint64 id = 0;
    QString input;
    PaneTarget target = PaneTarget::StateDict;
    ConversionSettings settings;
    Status status = Status::Planning;
    double progress = 0;             // 0..1 while running; -1 running with no fraction to tell
    QString output;
    QString result;                  // "verified: 6 storages read back", the error, "cancelled";
                                     // for an Invalid item, why it cannot be planned
    std::shared_ptr<const Document> document;
    std::shared_ptr<const ConversionPlan> plan;        // for TorchScript, scriptExport's own plan
    std::shared_ptr<const ScriptExport> scriptExport;  // TorchScript: the plan with its architecture
    QStringList notes;                    // TorchScript: what building the module noticed
    QMap<QString, QString> sourceValues;  // see sourceValueTexts
    QStringList prefixes;                 // key prefixes every key carries
    int planGeneration = 0;               // a newer plan request makes older results stale
};

// The conversion queue as a table: file, target, status, progress, plan, verification, output.
// The plan column says what the plan will do before anything is written; the verification column
// stays empty until the file has been written (or its writing failed).
class ConversionQueueModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        FileColumn,
        TargetColumn,
        StatusColumn,
        ProgressColumn,
        PlanColumn,    // "4 tensors · 5 values not written", or why it cannot be planned
        ResultColumn,  // verification, after the write
        OutputColumn,
        ColumnCount
    };
    enum Role {
        StatusRole = Qt::UserRole,  // ConversionQueueItem::Status as int
        ProgressRole,               // double 0..1
        PathRole,                   // the input's path (FileColumn) or the output's (OutputColumn)
        IdRole,
    };

    explicit ConversionQueueModel(QObject *parent = nullptr);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // Appends an item (its id is assigned here) and returns its row.
    int append(ConversionQueueItem item);
    void remove(int row);
    const ConversionQueueItem &item(int row) const { return m_items.at(static_cast<std::size_t>(row)); }
    // Replaces the row's item (its id is kept) and tells the views.
    void update(int row, const ConversionQueueItem &item);
    int rowOf(quint64 id) const;  // -1 when gone

    static QString statusText(ConversionQueueItem::Status status);
    // The plan column's text for an item: what its plan writes and leaves out.
    static QString planText(const ConversionQueueItem &item);

private:
    std::vector<ConversionQueueItem> m_items;
    quint64 m_nextId = 1;
};

} // namespace ckpt
