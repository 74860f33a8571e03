#include "tensortablemodel.h"

#include "document.h"
#include "itemicons.h"
#include "valuetext.h"

#include <QBrush>
#include <QColor>

namespace ckpt {

TensorTableModel::TensorTableModel(QObject *parent) : QAbstractTableModel(parent) {}

TensorTableModel::~TensorTableModel() = default;

void TensorTableModel::setDocument(std::shared_ptr<const Document> doc)
{
    beginResetModel();
    m_document = std::move(doc);
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

QVariant TensorTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
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
    default: return {};
    }
}

} // namespace ckpt
