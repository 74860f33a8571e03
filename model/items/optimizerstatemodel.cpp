#include "optimizerstatemodel.h"

#include "document.h"
#include "jsonexport.h"
#include "optimizermap.h"
#include "valuetext.h"

#include <QBrush>
#include <QColor>
#include <QVariantMap>

#include <cmath>
#include <unordered_map>

namespace ckpt {

namespace {

QString number(double v)
{
    if (std::isnan(v))
        return QStringLiteral("nan");
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
        return QString::number(static_cast<qint64>(v));
    return QString::number(v, 'g', 6);
}

} // namespace

OptimizerStateModel::OptimizerStateModel(QObject *parent) : QAbstractTableModel(parent) {}

OptimizerStateModel::~OptimizerStateModel() = default;

void OptimizerStateModel::setDocument(std::shared_ptr<const Document> doc)
{
    beginResetModel();
    m_document = std::move(doc);
    m_type.clear();
    m_class.clear();
    m_certain = false;
    m_withState = 0;
    m_note.clear();
    m_keys.clear();
    m_rows.clear();
    m_tensors.clear();
    m_cells.clear();
    m_cellPos.clear();
    if (m_document && m_document->optimizer) {
        m_type = QString::fromStdString(optimizerClassName(*m_document->optimizer));
        // Adam's and AdamW's state is alike; their param groups' keys can tell which it is.
        if (const std::string family = inferOptimizerType(*m_document->optimizer);
            family == "Adam/AdamW" || family == "Adam (AMSGrad)")
            m_class = QString::fromStdString(adamVariant(*m_document->optimizer));
        std::unordered_map<std::string, const TensorRef *> byName;
        for (const auto &t : m_document->stateDict)
            byName.emplace(t.name, &t.ref());
        if (auto map = mapOptimizer(*m_document)) {
            m_certain = map->certain;
            m_note = QString::fromStdString(map->note);
            // Columns: every state key, in first-seen order; "step" has its own column.
            for (const auto &p : map->parameters)
                if (p.state && p.state->isDict())
                    for (const auto &e : p.state->entries())
                        if (e.key) {
                            const QString k = QString::fromStdString(keyText(*e.key));
                            if (k != QLatin1String("step") && !m_keys.contains(k))
                                m_keys << k;
                        }
            for (const auto &p : map->parameters) {
                Row r;
                r.id = p.id;
                r.key = QString::fromStdString(p.key);
                r.name = QString::fromStdString(p.name);
                r.group = static_cast<int>(p.group);
                r.mismatch = !p.shapeAgrees;
                m_withState += p.state ? 1 : 0;
                if (auto it = byName.find(p.name); it != byName.end())
                    r.shape = QString::fromStdString(shapeText(it->second->shape));
                r.tensorOfKey.assign(static_cast<std::size_t>(m_keys.size()), -1);
                const std::string label = !p.name.empty() ? p.name : !p.key.empty() ? p.key : "#" + std::to_string(p.id);
                if (p.state && p.state->isDict()) {
                    for (const auto &e : p.state->entries()) {
                        if (!e.key || !e.value)
                            continue;
                        const std::string key = keyText(*e.key);
                        if (e.value->isTensor()) {
                            const int t = static_cast<int>(m_tensors.size());
                            m_tensors.push_back({label + "/" + key, e.value});
                            if (key == "step")
                                r.stepTensor = t;
                            else
                                r.tensorOfKey[static_cast<std::size_t>(m_keys.indexOf(QString::fromStdString(key)))] = t;
                            m_cellPos.emplace_back(static_cast<int>(m_rows.size()),
                                                   key == "step" ? int(StepColumn)
                                                                 : int(FirstStateColumn) + static_cast<int>(m_keys.indexOf(QString::fromStdString(key))));
                        } else if (key == "step") {
                            r.stepText = valuetext::preview(*e.value);
                        }
                    }
                }
                m_rows.push_back(std::move(r));
            }
        }
    }
    m_cells.assign(m_tensors.size(), Cell{});
    endResetModel();
}

void OptimizerStateModel::setStatistics(int tensor, const TensorStats &stats)
{
    if (tensor < 0 || tensor >= static_cast<int>(m_cells.size()))
        return;
    m_cells[static_cast<std::size_t>(tensor)] = {true, stats, {}};
    const auto [row, column] = m_cellPos[static_cast<std::size_t>(tensor)];
    const QModelIndex i = index(row, column);
    Q_EMIT dataChanged(i, i);
}

void OptimizerStateModel::setStatisticsError(int tensor, const QString &why)
{
    if (tensor < 0 || tensor >= static_cast<int>(m_cells.size()))
        return;
    m_cells[static_cast<std::size_t>(tensor)] = {true, {}, why};
    const auto [row, column] = m_cellPos[static_cast<std::size_t>(tensor)];
    const QModelIndex i = index(row, column);
    Q_EMIT dataChanged(i, i);
}

int OptimizerStateModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : static_cast<int>(m_rows.size());
}

int OptimizerStateModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : FirstStateColumn + static_cast<int>(m_keys.size());
}

QVariant OptimizerStateModel::cellData(const Row &r, int tensor, int role) const
{
    (void)r;
    if (tensor < 0)
        return role == Qt::DisplayRole ? QVariant(QStringLiteral("\u2014")) : QVariant();
    const Cell &c = m_cells[static_cast<std::size_t>(tensor)];
    const TensorRef &t = m_tensors[static_cast<std::size_t>(tensor)].ref();
    switch (role) {
    case Qt::DisplayRole:
        if (!c.known)
            return QStringLiteral("\u2026");
        if (!c.error.isEmpty())
            return tr("error");
        return number(c.stats.torch().l2);  // torch.linalg.norm's: nan where the state holds a NaN
    case SortRole: {
        // nan after every number, as torch.sort places it (an invalid QVariant sorts after every
        // valid one; a NaN double compares false both ways and would break the order); cells
        // without figures before every number.
        if (!c.known || !c.error.isEmpty())
            return QVariant(-1.0);
        const double l2 = c.stats.torch().l2;
        return std::isnan(l2) ? QVariant() : QVariant(l2);
    }
    case Qt::ToolTipRole: {
        QString head = QStringLiteral("%1  %2").arg(QString::fromStdString(m_tensors[static_cast<std::size_t>(tensor)].name),
                                                   valuetext::tensorSummary(t));
        if (!c.known)
            return head + tr("\nstatistics pending");
        if (!c.error.isEmpty())
            return head + QLatin1Char('\n') + c.error;
        const QString exactMin = valuetext::exactExtremeText(c.stats, false);  // integer states (step counts)
        const QString exactMax = valuetext::exactExtremeText(c.stats, true);
        // torch's figures (nan where the state holds a NaN), then those without the NaN values.
        const StatFigures f = c.stats.torch();
        QString tip = head + tr("\nL2 norm %1\nmin %2  max %3\nmean %4  std %5\nNaN %6  Inf %7")
                                 .arg(number(f.l2), exactMin.isEmpty() ? number(f.min) : exactMin,
                                      exactMax.isEmpty() ? number(f.max) : exactMax, number(f.mean), number(f.std))
                                 .arg(c.stats.nanCount)
                                 .arg(c.stats.infCount);
        if (c.stats.nanCount > 0)
            tip += QLatin1Char('\n') + valuetext::withoutNanText(c.stats, 6);
        return tip;
    }
    case StatisticsRole:
        if (!c.known || !c.error.isEmpty())
            return {};
    {
        // torch's figures; where the state holds NaN values, those over the other values too.
        const auto figures = [](const StatFigures &f) {
            return QVariantMap{{QStringLiteral("l2"), f.l2},     {QStringLiteral("min"), f.min},
                               {QStringLiteral("max"), f.max},   {QStringLiteral("mean"), f.mean},
                               {QStringLiteral("std"), f.std}};
        };
        QVariantMap map = figures(c.stats.torch());
        map.insert(QStringLiteral("count"), qint64(c.stats.count));
        map.insert(QStringLiteral("nan"), qint64(c.stats.nanCount));
        map.insert(QStringLiteral("inf"), qint64(c.stats.infCount));
        if (c.stats.nanCount > 0)
            map.insert(QStringLiteral("without_nan"), figures(c.stats.withoutNan()));
        return map;
    }
    case Qt::ForegroundRole:
        if (c.known && (c.stats.nanCount > 0 || c.stats.infCount > 0))
            return QBrush(QColor(0xb3, 0x26, 0x1e));
        return {};
    }
    return {};
}

QVariant OptimizerStateModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= static_cast<int>(m_rows.size()))
        return {};
    const Row &r = m_rows[static_cast<std::size_t>(index.row())];
    const int col = index.column();
    if (col >= FirstStateColumn)
        return cellData(r, r.tensorOfKey[static_cast<std::size_t>(col - FirstStateColumn)], role);
    if (col == StepColumn && r.stepTensor >= 0) {
        // A tensor step (PyTorch >= 1.12): one element, its value is its mean.
        const Cell &c = m_cells[static_cast<std::size_t>(r.stepTensor)];
        if (role == Qt::DisplayRole)
            return !c.known ? QStringLiteral("\u2026") : !c.error.isEmpty() ? tr("error") : number(c.stats.mean);
        if (role == SortRole)
            return c.known && c.error.isEmpty() ? c.stats.mean : -1.0;
        if (role == Qt::ToolTipRole)
            return tr("step is a tensor: %1").arg(valuetext::tensorSummary(m_tensors[static_cast<std::size_t>(r.stepTensor)].ref()));
        return {};
    }
    switch (role) {
    case Qt::DisplayRole:
        switch (col) {
        case IdColumn: return r.key.isEmpty() ? QVariant(r.id) : QVariant(r.key);
        case NameColumn: return r.name.isEmpty() ? tr("(not mapped)") : r.name;
        case GroupColumn: return r.group;
        case ShapeColumn: return r.mismatch ? r.shape + tr("  \u2260 state") : r.shape;
        case StepColumn: return r.stepText;
        }
        return {};
    case SortRole:
        switch (col) {
        case IdColumn: return r.key.isEmpty() ? QVariant(r.id) : QVariant(r.key);
        case GroupColumn: return r.group;
        case StepColumn: return r.stepText.toDouble();
        default: return data(index, Qt::DisplayRole);
        }
    case MismatchRole: return r.mismatch;
    case Qt::ForegroundRole:
        if ((col == ShapeColumn && r.mismatch) || (col == NameColumn && r.name.isEmpty()))
            return QBrush(QColor(0xb3, 0x26, 0x1e));
        return {};
    case Qt::ToolTipRole:
        if (col == ShapeColumn && r.mismatch)
            return tr("A state tensor's shape differs from this parameter's: the name may be wrong");
        if (col == NameColumn && r.name.isEmpty())
            return tr("No state-dict tensor could be matched to this optimizer id");
        return {};
    case Qt::TextAlignmentRole:
        if ((col == IdColumn && r.key.isEmpty()) || col == GroupColumn || col == StepColumn)
            return QVariant(Qt::AlignRight | Qt::AlignVCenter);  // numbers; a name as key reads left
        return {};
    }
    return {};
}

QVariant OptimizerStateModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return {};
    if (role == Qt::ToolTipRole && section >= FirstStateColumn)
        return tr("L2 norm of each parameter's %1").arg(m_keys.value(section - FirstStateColumn));
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case IdColumn: return tr("Id");
    case NameColumn: return tr("Parameter");
    case GroupColumn: return tr("Group");
    case ShapeColumn: return tr("Shape");
    case StepColumn: return tr("Step");
    }
    return tr("%1 (L2)").arg(m_keys.value(section - FirstStateColumn));
}

} // namespace ckpt
