#include "documenttreemodel.h"

#include "itemicons.h"
#include "tensorref.h"
#include "value.h"
#include "valuetext.h"

#include <QBrush>
#include <QColor>
#include <QFont>

namespace ckpt {

namespace {

QString aliasText(const TreeSnapshot &s, int target)
{
    const QString where = target <= 0 ? QStringLiteral("(root)") : s.pathText(target);
    return QStringLiteral("\u2192 same object as %1").arg(where);
}

} // namespace

DocumentTreeModel::DocumentTreeModel(QObject *parent) : QAbstractItemModel(parent) {}

DocumentTreeModel::~DocumentTreeModel() = default;

std::shared_ptr<const TreeSnapshot> DocumentTreeModel::buildSnapshot(std::shared_ptr<const Document> doc,
                                                                     const TreeSnapshotOptions &options)
{
    return TreeSnapshot::build(std::move(doc), options);
}

void DocumentTreeModel::setSnapshot(std::shared_ptr<const TreeSnapshot> snapshot)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    endResetModel();
}

int DocumentTreeModel::nodeId(const QModelIndex &index) const
{
    // Node 0 is the invisible root; an index's internal id is its node.
    return index.isValid() ? static_cast<int>(index.internalId()) : 0;
}

QModelIndex DocumentTreeModel::index(int row, int column, const QModelIndex &parent) const
{
    if (!m_snapshot || !hasIndex(row, column, parent))
        return {};
    const TreeNode &p = m_snapshot->node(nodeId(parent));
    return createIndex(row, column, static_cast<quintptr>(p.firstChild + row));
}

QModelIndex DocumentTreeModel::parent(const QModelIndex &child) const
{
    if (!m_snapshot || !child.isValid())
        return {};
    const int p = m_snapshot->node(nodeId(child)).parent;
    if (p <= 0)
        return {};
    return createIndex(m_snapshot->node(p).row, 0, static_cast<quintptr>(p));
}

int DocumentTreeModel::rowCount(const QModelIndex &parent) const
{
    if (!m_snapshot || parent.column() > 0)
        return 0;
    return m_snapshot->node(nodeId(parent)).childCount;
}

int DocumentTreeModel::columnCount(const QModelIndex &) const
{
    return ColumnCount;
}

bool DocumentTreeModel::hasChildren(const QModelIndex &parent) const
{
    return rowCount(parent) > 0;
}

Qt::ItemFlags DocumentTreeModel::flags(const QModelIndex &index) const
{
    if (!m_snapshot || !index.isValid() || !checkIndex(index, CheckIndexOption::DoNotUseParent))
        return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    if (m_snapshot->node(nodeId(index)).childCount == 0)
        f |= Qt::ItemNeverHasChildren;
    return f;
}

QVariant DocumentTreeModel::display(const TreeNode &n, int column) const
{
    if (n.type == TreeNode::Type::More)
        return column == KeyColumn ? QVariant(n.label) : QVariant();
    const Value &v = *n.value;
    const TensorRef *t = v.isTensor() ? v.tensorRef().get() : nullptr;
    switch (column) {
    case KeyColumn: return n.label;
    case TypeColumn: return valuetext::typeText(v);
    case ShapeColumn: return t ? QString::fromStdString(shapeText(t->shape)) : QString();
    case DTypeColumn: return t ? valuetext::dtypeText(t->dtype) : QString();
    case ValueColumn:
        if (n.type == TreeNode::Type::Alias)
            return aliasText(*m_snapshot, n.aliasOf);
        if (n.hidden > 0)
            return valuetext::preview(v) + QStringLiteral(" (not opened: tree limit)");
        return valuetext::preview(v);
    default: return {};
    }
}

QVariant DocumentTreeModel::toolTip(int id, const TreeNode &n) const
{
    const QString path = m_snapshot->pathText(id);
    if (n.type == TreeNode::Type::More)
        return tr("%1 more not listed here: a node lists at most its first %2 children.")
            .arg(valuetext::count(n.hidden), valuetext::count(n.row));
    if (n.type == TreeNode::Type::Alias)
        return tr("%1\nThis object appears earlier in the file; it is shown in full at %2.")
            .arg(path, n.aliasOf <= 0 ? tr("the root") : m_snapshot->pathText(n.aliasOf));
    if (n.hidden > 0)
        return tr("%1\nNot opened: the tree stops at nesting depth or total size limits.").arg(path);
    const Value &v = *n.value;
    if (v.isTensor() && v.tensorRef()) {
        const TensorRef &t = *v.tensorRef();
        QString tip = tr("%1\n%2, %3 elements, %4\nstrides %5, offset %6")
                          .arg(path, valuetext::tensorSummary(t), valuetext::count(t.numel()),
                               valuetext::bytes(t.nbytes()), QString::fromStdString(shapeText(t.strides)))
                          .arg(t.storageOffset);
        if (const QString p = valuetext::tensorProblem(t); !p.isEmpty())
            tip += QLatin1Char('\n') + tr("Problem: %1").arg(p);
        return tip;
    }
    if (v.isString())
        return path + QLatin1Char('\n') + valuetext::pythonStringRepr(v.text(), 2000);
    return path;
}

QVariant DocumentTreeModel::data(const QModelIndex &index, int role) const
{
    // Views and testers ask about invalid indexes: answer quietly; checkIndex warns about foreign ones.
    if (!m_snapshot || !index.isValid() || !checkIndex(index, CheckIndexOption::DoNotUseParent))
        return {};
    const int id = nodeId(index);
    const TreeNode &n = m_snapshot->node(id);
    const bool placeholder = n.type == TreeNode::Type::More;
    const TensorRef *t = !placeholder && n.value->isTensor() ? n.value->tensorRef().get() : nullptr;

    switch (role) {
    case Qt::DisplayRole: return display(n, index.column());
    case Qt::ToolTipRole: return toolTip(id, n);
    case Qt::ForegroundRole:
        if (placeholder || n.type == TreeNode::Type::Alias)
            return QBrush(QColor(0x70, 0x70, 0x70));
        if (t && !valuetext::tensorProblem(*t).isEmpty())
            return QBrush(QColor(0xb0, 0x30, 0x00));
        return {};
    case Qt::FontRole:
        if (placeholder || n.type == TreeNode::Type::Alias) {
            QFont f;
            f.setItalic(true);
            return f;
        }
        return {};
    case Qt::DecorationRole:
        if (index.column() == KeyColumn && t && !valuetext::tensorProblem(*t).isEmpty())
            return itemicons::warning();
        return {};
    case ValueKindRole: return placeholder ? QVariant() : QVariant(static_cast<int>(n.value->kind()));
    case PathRole: return m_snapshot->path(id);
    case PathTextRole: return m_snapshot->pathText(id);
    case IsTensorRole: return t != nullptr;
    case IsAliasRole: return n.type == TreeNode::Type::Alias;
    case AliasPathRole:
        return n.type == TreeNode::Type::Alias ? QVariant(m_snapshot->path(n.aliasOf)) : QVariant();
    case IsPlaceholderRole: return placeholder;
    case ProblemRole: return t ? valuetext::tensorProblem(*t) : QString();
    case NodeIdRole: return id;
    default: return {};
    }
}

QVariant DocumentTreeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractItemModel::headerData(section, orientation, role);
    switch (section) {
    case KeyColumn: return tr("Key");
    case TypeColumn: return tr("Type");
    case ShapeColumn: return tr("Shape");
    case DTypeColumn: return tr("DType");
    case ValueColumn: return tr("Value");
    default: return {};
    }
}

QModelIndex DocumentTreeModel::indexForPath(const QStringList &path, int column) const
{
    if (!m_snapshot)
        return {};
    const int id = m_snapshot->find(path);
    if (id <= 0)
        return {};
    return createIndex(m_snapshot->node(id).row, column, static_cast<quintptr>(id));
}

} // namespace ckpt
