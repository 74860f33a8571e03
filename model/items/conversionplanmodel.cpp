#include "conversionplanmodel.h"

#include "conversionsettings.h"

#include "convert.h"
#include "valuetext.h"

#include <QColor>
#include <QMap>

#include <filesystem>

namespace ckpt {

ConversionPlanModel::ConversionPlanModel(QObject *parent) : QAbstractTableModel(parent) {}

int ConversionPlanModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : static_cast<int>(m_rows.size());
}

int ConversionPlanModel::columnCount(const QModelIndex &parent) const { return parent.isValid() ? 0 : ColumnCount; }

QString ConversionPlanModel::changeText(Change change)
{
    switch (change) {
    case Change::Kept: return tr("kept");
    case Change::Dropped: return tr("dropped");
    case Change::Carried: return tr("carried");
    case Change::Lost: return tr("not written");
    case Change::Warning: return tr("warning");
    case Change::Shard: return tr("shard");
    case Change::Removes: return tr("removes");
    }
    return {};
}

QVariant ConversionPlanModel::data(const QModelIndex &index, int role) const
{
    if (!hasIndex(index.row(), index.column(), index.parent()))
        return {};
    const Row &r = m_rows[static_cast<std::size_t>(index.row())];
    switch (role) {
    case Qt::DisplayRole:
    case Qt::ToolTipRole:
        switch (index.column()) {
        case ChangeColumn: return changeText(r.change);
        case EntryColumn: return r.entry;
        case DetailColumn: return r.detail;
        default: return {};
        }
    case Qt::ForegroundRole:
        if (index.column() != ChangeColumn)
            return {};
        switch (r.change) {
        case Change::Dropped:
        case Change::Lost:
        case Change::Removes: return QColor(0xc0, 0x30, 0x30);
        case Change::Warning: return QColor(0xb0, 0x70, 0x00);
        case Change::Carried:
        case Change::Shard: return QColor(0x2e, 0x6f, 0xb0);
        default: return {};
        }
    case ChangeRole: return static_cast<int>(r.change);
    default: return {};
    }
}

QVariant ConversionPlanModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case ChangeColumn: return tr("Change");
    case EntryColumn: return tr("Entry");
    case DetailColumn: return tr("Detail");
    default: return {};
    }
}

void ConversionPlanModel::setPlan(std::shared_ptr<const ConversionPlan> plan)
{
    beginResetModel();
    m_plan = std::move(plan);
    m_rows.clear();
    if (m_plan) {
        const auto q = [](const std::string &s) { return QString::fromStdString(s); };
        // A sharded output's files first: what is written where, before the tensors in them.
        for (const auto &shard : m_plan->shards)
            m_rows.push_back({Change::Shard, q(std::filesystem::path(shard.path).filename().string()),
                              tr("%1, %2").arg(valuetext::counted(static_cast<qint64>(shard.names.size()), tr("tensor"), tr("tensors")),
                                               valuetext::bytes(static_cast<qint64>(shard.bytes)))});
        for (const auto &f : m_plan->superseded)
            m_rows.push_back({Change::Removes, q(std::filesystem::path(f).filename().string()),
                              tr("previous output, removed after the write")});
        const QString cast = m_plan->castTo ? tr("floating tensors as %1").arg(q(std::string(dtypeName(*m_plan->castTo)))) : QString();
        // Weights a LoRA adapter changed (--merge-lora) say so beside their name.
        QMap<QString, QString> lora;
        for (const auto &m : m_plan->lora.merged) {
            const auto at = m.find(" (");
            lora.insert(q(m.substr(0, at)), tr("LoRA merged%1").arg(at == std::string::npos ? QString() : q(m.substr(at))));
        }
        for (const auto &r : m_plan->lora.replaced) {
            const auto at = r.find(" (");
            lora.insert(q(r.substr(0, at)), tr("replaced by the LoRA adapter's own"));
        }
        for (const auto &[from, to] : m_plan->lora.renamed)
            if (lora.contains(q(from)))
                lora.insert(q(to), lora.take(q(from)));
        for (const auto &k : m_plan->kept) {
            const QString merged = lora.value(q(k));
            m_rows.push_back({Change::Kept, q(k), merged.isEmpty() ? cast : cast.isEmpty() ? merged : merged + QStringLiteral("; ") + cast});
        }
        for (const auto &d : m_plan->dropped)
            m_rows.push_back({Change::Dropped, q(d.entry), panelWording(d.reason)});
        for (const auto &c : m_plan->carried)
            m_rows.push_back({Change::Carried, q(c), {}});
        for (const auto &l : m_plan->lost)
            m_rows.push_back({Change::Lost, q(l.entry), panelWording(l.reason)});
        for (const auto &w : m_plan->warnings)
            m_rows.push_back({Change::Warning, {}, panelWording(w)});
    }
    endResetModel();
}

QStringList ConversionPlanModel::entries(Change change) const
{
    QStringList out;
    for (const Row &r : m_rows)
        if (r.change == change)
            out << (change == Change::Warning ? r.detail : r.entry);
    return out;
}

} // namespace ckpt
