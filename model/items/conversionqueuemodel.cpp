#include "conversionqueuemodel.h"

#include "convert.h"

#include <QColor>
#include <QFileInfo>
#include <QGuiApplication>
#include <QPalette>

namespace ckpt {

namespace {

// The states in which an item has been through a write (or a refusal to write): only then has
// the verification column anything to say.
bool afterWrite(ConversionQueueItem::Status s)
{
    using S = ConversionQueueItem::Status;
    return s == S::Done || s == S::Failed || s == S::Cancelled || s == S::Skipped;
}

} // namespace

ConversionQueueModel::ConversionQueueModel(QObject *parent) : QAbstractTableModel(parent) {}

int ConversionQueueModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : static_cast<int>(m_items.size());
}

int ConversionQueueModel::columnCount(const QModelIndex &parent) const { return parent.isValid() ? 0 : ColumnCount; }

QString ConversionQueueModel::statusText(ConversionQueueItem::Status status)
{
    using S = ConversionQueueItem::Status;
    switch (status) {
    case S::Planning: return tr("Planning\u2026");
    case S::Ready: return tr("Ready");
    case S::Invalid: return tr("Cannot convert");
    case S::Queued: return tr("Queued");
    case S::Running: return tr("Writing\u2026");
    case S::Done: return tr("Done");
    case S::Failed: return tr("Failed");
    case S::Cancelled: return tr("Cancelled");
    case S::Skipped: return tr("Skipped");
    }
    return {};
}

QString ConversionQueueModel::planText(const ConversionQueueItem &item)
{
    using S = ConversionQueueItem::Status;
    if (item.status == S::Invalid)
        return item.result;
    if (!item.plan)
        return item.status == S::Planning ? tr("planning\u2026") : QString();
    const ConversionPlan &p = *item.plan;
    // English plurals by hand: tr("%n ...(s)") shows "(s)" as long as no translation is loaded.
    QStringList parts;
    // The model's tensors are not all a checkpoint target writes: the EMA weights, optimizer and RNG
    // state carried along are counted too (named in the plan below), so the count is not read as all.
    parts << (p.kept.size() == 1 ? tr("1 model tensor") : tr("%1 model tensors").arg(p.kept.size()));
    if (!p.carried.empty())
        parts << (p.carried.size() == 1 ? tr("1 entry carried") : tr("%1 entries carried").arg(p.carried.size()));
    if (!p.dropped.empty())
        parts << tr("%1 dropped").arg(p.dropped.size());
    if (!p.lost.empty())
        parts << (p.lost.size() == 1 ? tr("1 value not written") : tr("%1 values not written").arg(p.lost.size()));
    return tr("will write %1").arg(parts.join(QStringLiteral(" \u00b7 ")));
}

QVariant ConversionQueueModel::data(const QModelIndex &index, int role) const
{
    if (!hasIndex(index.row(), index.column(), index.parent()))
        return {};
    const ConversionQueueItem &it = m_items[static_cast<std::size_t>(index.row())];
    using S = ConversionQueueItem::Status;
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case FileColumn: return QFileInfo(it.input).fileName();
        case TargetColumn: return convertTargetLabel(it.target);
        case StatusColumn: return statusText(it.status);
        case ProgressColumn:
            return (it.status == S::Running || it.status == S::Done) && it.progress >= 0
                       ? QStringLiteral("%1%").arg(qRound(it.progress * 100))
                       : QString();
        case PlanColumn: return planText(it);
        case ResultColumn: return afterWrite(it.status) ? it.result : QString();
        case OutputColumn: return QFileInfo(it.output).fileName();
        default: return {};
        }
    case Qt::ToolTipRole:
        switch (index.column()) {
        case FileColumn: return it.input;
        case OutputColumn: return it.output;
        case PlanColumn:
            return it.plan && !it.plan->lost.empty()
                       ? tr("Entries the target cannot hold are listed in the plan below; nothing is written "
                            "until Convert All")
                       : QVariant(planText(it));
        case ResultColumn: return afterWrite(it.status) && !it.result.isEmpty() ? QVariant(it.result) : QVariant();
        case StatusColumn: return it.result.isEmpty() ? QVariant() : QVariant(it.result);
        default: return {};
        }
    case Qt::ForegroundRole:
        if (index.column() == StatusColumn || index.column() == ResultColumn || index.column() == PlanColumn) {
            if (it.status == S::Failed || it.status == S::Invalid)
                return index.column() == PlanColumn && it.status == S::Failed ? QVariant() : QColor(0xc0, 0x30, 0x30);
            if (it.status == S::Done && index.column() != PlanColumn)
                return QColor(0x2e, 0x8b, 0x3e);
        }
        return {};
    case StatusRole: return static_cast<int>(it.status);
    case ProgressRole: return it.progress;
    case PathRole: return index.column() == OutputColumn ? it.output : it.input;
    case IdRole: return it.id;
    default: return {};
    }
}

QVariant ConversionQueueModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case FileColumn: return tr("File");
    case TargetColumn: return tr("Target");
    case StatusColumn: return tr("Status");
    case ProgressColumn: return tr("Progress");
    case PlanColumn: return tr("Plan");
    case ResultColumn: return tr("Verification");
    case OutputColumn: return tr("Output");
    default: return {};
    }
}

int ConversionQueueModel::append(ConversionQueueItem item)
{
    item.id = m_nextId++;
    const int row = static_cast<int>(m_items.size());
    beginInsertRows({}, row, row);
    m_items.push_back(std::move(item));
    endInsertRows();
    return row;
}

void ConversionQueueModel::remove(int row)
{
    if (row < 0 || row >= rowCount())
        return;
    beginRemoveRows({}, row, row);
    m_items.erase(m_items.begin() + row);
    endRemoveRows();
}

void ConversionQueueModel::update(int row, const ConversionQueueItem &item)
{
    if (row < 0 || row >= rowCount())
        return;
    const quint64 id = m_items[static_cast<std::size_t>(row)].id;
    m_items[static_cast<std::size_t>(row)] = item;
    m_items[static_cast<std::size_t>(row)].id = id;
    Q_EMIT dataChanged(index(row, 0), index(row, ColumnCount - 1));
}

int ConversionQueueModel::rowOf(quint64 id) const
{
    for (std::size_t i = 0; i < m_items.size(); ++i)
        if (m_items[i].id == id)
            return static_cast<int>(i);
    return -1;
}

} // namespace ckpt
