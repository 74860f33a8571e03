#include "tensortablemodel.h"

#include "copyrole.h"

#include <cmath>

#include "document.h"
#include "itemicons.h"
#include "valuetext.h"

#include <QBrush>
#include <QStringList>
#include <QColor>

namespace ckpt {

TensorTableModel::TensorTableModel(QObject *parent) : QAbstractTableModel(parent) {}

TensorTableModel::~TensorTableModel() = default;

void TensorTableModel::setDocument(std::shared_ptr<const Document> doc)
{
    beginResetModel();
    m_document = std::move(doc);
    m_stats.assign(m_document ? rows().size() : 0, Stats{});
    endResetModel();
}

int TensorTableModel::rowCount(const QModelIndex &parent) const
{
    if (parent.isValid() || !m_document)
        return 0;
    return static_cast<int>(rows().size());
}

const std::vector<NamedTensor> &TensorTableModel::rows() const
{
    // Without a state dict the table lists every tensor of the file, by path.
    return m_document->hasStateDict ? m_document->stateDict : m_document->tensors;
}

int TensorTableModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant TensorTableModel::data(const QModelIndex &index, int role) const
{
    if (!m_document || !index.isValid() || !checkIndex(index, CheckIndexOption::ParentIsInvalid))
        return {};
    const NamedTensor &nt = rows()[static_cast<std::size_t>(index.row())];
    if (!nt.value || !nt.value->tensorRef())
        return {};
    const TensorRef &t = nt.ref();
    const int column = index.column();
    if (role == NonFiniteRole || role == StatisticsRole)
        return statisticsData(index.row(), column, role);
    if (role == Qt::BackgroundRole || role == Qt::ForegroundRole ||
        (role == Qt::DecorationRole && column == NameColumn)) {
        // Rows whose values hold NaN or Inf stand out across the whole row.
        if (statisticsData(index.row(), column, NonFiniteRole).toBool() && valuetext::tensorProblem(t).isEmpty()) {
            if (role == Qt::BackgroundRole)
                return QBrush(valuetext::nonFiniteBackground());
            if (role == Qt::ForegroundRole)
                return QBrush(valuetext::nonFiniteForeground());
            return itemicons::nonFinite();
        }
    }
    if (column >= MinColumn || role == HasStatisticsRole)
        if (auto v = statisticsData(index.row(), column, role); v.isValid() || column >= MinColumn)
            return v;

    switch (role) {
    case Qt::DisplayRole:
        switch (column) {
        case NameColumn: return QString::fromStdString(nt.name);
        case DTypeColumn: return valuetext::dtypeText(t.dtype);
        case ShapeColumn: return QString::fromStdString(shapeText(t.shape));
        case NumelColumn: return t.numel() < 0 ? QStringLiteral("overflow") : valuetext::count(t.numel());
        case BytesColumn: return valuetext::bytes(t.nbytes());
        case DeviceColumn: return QString::fromStdString(t.device());
        case RequiresGradColumn: return t.requiresGrad ? tr("yes") : tr("no");
        default: return {};
        }
    case SortRole:
        switch (column) {
        case NumelColumn: return static_cast<qlonglong>(t.numel());
        case BytesColumn: return static_cast<qlonglong>(t.nbytes());
        case RequiresGradColumn: return t.requiresGrad;
        case ShapeColumn: {
            // Sort shapes by rank, then by the sizes: [10] < [2, 3] < [50, 10].
            QString key = QString::number(t.shape.size()).rightJustified(2, QLatin1Char('0'));
            for (auto d : t.shape)
                key += QLatin1Char(':') + QString::number(d).rightJustified(20, QLatin1Char('0'));
            return key;
        }
        default: return data(index, Qt::DisplayRole);
        }
    case Qt::TextAlignmentRole:
        if (column == NumelColumn || column == BytesColumn)
            return static_cast<int>(Qt::AlignRight | Qt::AlignVCenter);  // int: what Qt 6.4 views read
        return {};
    case Qt::ToolTipRole: {
        const QString problem = valuetext::tensorProblem(t);
        QString tip = QStringLiteral("%1\n%2, %3 bytes\nstrides %4, offset %5")
                          .arg(QString::fromStdString(nt.name), valuetext::tensorSummary(t),
                               valuetext::count(t.nbytes()), QString::fromStdString(shapeText(t.strides)))
                          .arg(t.storageOffset);
        if (!problem.isEmpty())
            tip += QLatin1Char('\n') + tr("Problem: %1").arg(problem);
        return tip;
    }
    case Qt::ForegroundRole:
        if (!valuetext::tensorProblem(t).isEmpty())
            return QBrush(QColor(0xb0, 0x30, 0x00));
        return {};
    case Qt::DecorationRole:
        if (column == NameColumn && !valuetext::tensorProblem(t).isEmpty())
            return itemicons::warning();
        return {};
    case ProblemRole: return valuetext::tensorProblem(t);
    case TensorNameRole: return QString::fromStdString(nt.name);
    case ShapeRole: {
        QList<qlonglong> shape;
        for (auto d : t.shape)
            shape.append(d);
        return QVariant::fromValue(shape);
    }
    default: return {};
    }
}

QString TensorTableModel::statisticsNote()
{
    return tr("As torch gives them (as ckpt tensors --stats writes them): a tensor holding a NaN has min, max, mean, "
              "std and L2 nan; its figures without the NaN values are in the cell's tooltip and the detail pane. "
              "Infinities are included. A complex tensor's figures are over its real and imaginary parts "
              "together. Sorted, nan comes after every number, as torch.sort places it.");
}

QVariant TensorTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation == Qt::Horizontal && role == Qt::ToolTipRole) {
        switch (section) {
        case MinColumn:
        case MaxColumn:
        case MeanColumn:
        case StdColumn:
        case L2Column: return statisticsNote();
        case ZeroFractionColumn: return tr("The share of all elements that are zero");
        case NonFiniteColumn: return tr("How many NaN and how many infinite values the tensor holds");
        default: return {};
        }
    }
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case NameColumn: return tr("Name");
    case DTypeColumn: return tr("DType");
    case ShapeColumn: return tr("Shape");
    case NumelColumn: return tr("Numel");
    case BytesColumn: return tr("Bytes");
    case DeviceColumn: return tr("Device");
    case RequiresGradColumn: return tr("Grad");
    case MinColumn: return tr("Min");
    case MaxColumn: return tr("Max");
    case MeanColumn: return tr("Mean");
    case StdColumn: return tr("Std");
    case L2Column: return tr("L2");
    case ZeroFractionColumn: return tr("Zeros");
    case NonFiniteColumn: return tr("NaN/Inf");
    default: return {};
    }
}

void TensorTableModel::setStatistics(int row, const TensorStats &stats)
{
    if (row < 0 || static_cast<std::size_t>(row) >= m_stats.size())
        return;
    m_stats[static_cast<std::size_t>(row)] = {true, stats, {}};
    Q_EMIT dataChanged(index(row, 0), index(row, ColumnCount - 1));
}

void TensorTableModel::setStatisticsError(int row, const QString &why)
{
    if (row < 0 || static_cast<std::size_t>(row) >= m_stats.size())
        return;
    m_stats[static_cast<std::size_t>(row)] = {true, {}, why};
    Q_EMIT dataChanged(index(row, 0), index(row, ColumnCount - 1));
}

const TensorStats *TensorTableModel::statistics(int row) const
{
    if (row < 0 || static_cast<std::size_t>(row) >= m_stats.size())
        return nullptr;
    const Stats &s = m_stats[static_cast<std::size_t>(row)];
    return s.known && s.error.isEmpty() ? &s.values : nullptr;
}

QString TensorTableModel::statisticsError(int row) const
{
    if (row < 0 || static_cast<std::size_t>(row) >= m_stats.size())
        return {};
    return m_stats[static_cast<std::size_t>(row)].error;
}

QVariant TensorTableModel::statisticsData(int row, int column, int role) const
{
    const Stats &s = m_stats[static_cast<std::size_t>(row)];
    if (role == HasStatisticsRole)
        return s.known;
    if (role == NonFiniteRole)
        return s.known && s.error.isEmpty() && (s.values.nanCount > 0 || s.values.infCount > 0);
    if (role == StatisticsRole)
        return s.known && s.error.isEmpty() ? QVariant::fromValue(s.values) : QVariant();
    if (!s.known)
        return role == Qt::DisplayRole ? QVariant(QStringLiteral("\u2026")) : QVariant();
    const TensorStats &v = s.values;
    const StatFigures torch = v.torch();  // what torch gives, what the CLI writes
    auto number = [&](double x) -> QVariant {
        // nan sorts after every number, +inf included, as torch.sort places it: an invalid
        // QVariant sorts after every valid one (last ascending, first descending), where a NaN
        // double would compare false both ways and break the order of the rows around it.
        if (role == SortRole)
            return std::isnan(x) ? QVariant() : QVariant(x);
        if (role == Qt::DisplayRole)
            return valuetext::torchStatisticText(x, v, 5);
        if (role == CopyTextRole)  // the figure computed, every digit of it (shown with 5)
            return std::isnan(x) ? valuetext::torchStatisticText(x, v, 5) : valuetext::fullPrecisionText(x);
        if (role == Qt::TextAlignmentRole)
            return static_cast<int>(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    };
    if (!s.error.isEmpty()) {
        if (role == Qt::DisplayRole)
            return column == MinColumn ? tr("n/a") : QString();
        if (role == Qt::ToolTipRole)
            return tr("No statistics: %1").arg(s.error);
        return {};
    }
    const bool nonFinite = v.nanCount > 0 || v.infCount > 0;
    if (role == Qt::ToolTipRole && column >= MinColumn && column <= L2Column) {
        // What the figure is over, where it is not simply every element: said on the cell itself.
        QStringList notes;
        if (v.nanCount > 0)
            notes << tr("torch gives nan: the tensor holds NaN values.") << valuetext::withoutNanText(v, 5);
        if (dtypeIsComplex(rows()[static_cast<std::size_t>(row)].ref().dtype))
            notes << tr("complex: over real and imaginary parts together");
        return notes.isEmpty() ? QVariant() : QVariant(notes.join(QLatin1Char('\n')));
    }
    switch (column) {
    case MinColumn:
    case MaxColumn: {
        // An integer tensor's extremes exactly: 123456 rather than 1.2346e+05.
        const bool max = column == MaxColumn;
        const QString exact = valuetext::exactExtremeText(v, max);
        if (!exact.isEmpty() && (role == Qt::DisplayRole || role == CopyTextRole))
            return exact;
        return number(max ? torch.max : torch.min);
    }
    case MeanColumn: return number(torch.mean);
    case StdColumn: return number(torch.std);
    case L2Column: return number(torch.l2);
    case ZeroFractionColumn: {
        if (v.count <= 0)
            return role == Qt::DisplayRole ? QVariant(QStringLiteral("\u2013")) : QVariant();
        const double fraction = static_cast<double>(v.zeroCount) / static_cast<double>(v.count);
        if (role == SortRole)
            return fraction;
        if (role == Qt::DisplayRole)
            return valuetext::percent(fraction);
        if (role == Qt::ToolTipRole)
            return tr("%1 of %2 elements are zero").arg(valuetext::count(v.zeroCount), valuetext::count(v.count));
        if (role == Qt::TextAlignmentRole)
            return static_cast<int>(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    }
    case NonFiniteColumn:
        if (role == Qt::DisplayRole)
            return nonFinite ? tr("%1 / %2").arg(v.nanCount).arg(v.infCount) : QString();
        if (role == SortRole)
            return static_cast<qlonglong>(v.nanCount + v.infCount);
        if (role == Qt::ForegroundRole && nonFinite)
            return QBrush(QColor(0xb3, 0x26, 0x1e));
        if (role == Qt::ToolTipRole && nonFinite)
            return tr("%1 NaN and %2 Inf values (torch's min, max, mean, std and L2 are nan where there is a NaN)")
                       .arg(v.nanCount)
                       .arg(v.infCount) +
                   (v.nanCount > 0 ? QLatin1Char('\n') + valuetext::withoutNanText(v, 5) : QString());
        return {};
    default: return {};
    }
}

} // namespace ckpt
