#include "moduletreemodel.h"

#include "document.h"
#include "dtype.h"
#include "keyalign.h"
#include "valuetext.h"
#include "valuetree.h"

#include <QFont>
#include <QHash>
#include <QStringList>

#include <map>
#include <tuple>
#include <unordered_map>

namespace ckpt {

namespace {

// Two state-dict names are the same tensor when they view the same bytes the same way: the same
// storage, offset, shape, strides and dtype (tied weights pickle as one tensor, or as two views).
using TensorIdentity = std::tuple<const void *, std::int64_t, std::vector<std::int64_t>, std::vector<std::int64_t>, int>;

TensorIdentity identityOf(const TensorRef &t)
{
    const void *storage = t.storage ? static_cast<const void *>(t.storage.get()) : static_cast<const void *>(&t);
    return {storage, t.storageOffset, t.shape, t.strides, static_cast<int>(t.dtype)};
}

QString shortClass(const std::string &qualified)
{
    const auto dot = qualified.rfind('.');
    return QString::fromStdString(dot == std::string::npos ? qualified : qualified.substr(dot + 1));
}

// The class name torch reports as a script module's original_name: the last part of its
// compiled name, never the compiler's "___torch_mangle_N" that tells apart two compiled variants
// of one class ("__torch__.torch.nn.modules.linear.___torch_mangle_0.Linear" is a Linear).
QString originalName(const std::string &qualified)
{
    std::string name = qualified;
    while (true) {
        const auto dot = name.rfind('.');
        std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
        if (!last.starts_with("___torch_mangle_") || dot == std::string::npos)
            return QString::fromStdString(last);
        name.resize(dot);
    }
}

} // namespace

QString naturalSortKey(const QString &text) { return QString::fromStdString(naturalKey(text.toStdString())); }

ModuleTreeModel::ModuleTreeModel(QObject *parent) : FlatTreeModel(parent) {}

ModuleTreeModel::~ModuleTreeModel() = default;

void ModuleTreeModel::setDocument(std::shared_ptr<const Document> doc)
{
    beginResetModel();
    m_document = std::move(doc);
    m_nodes.clear();
    m_nodes.push_back({});  // the invisible root
    if (!m_document) {
        endResetModel();
        return;
    }

    QHash<QString, std::int32_t> byPath;
    byPath.insert(QString(), 0);
    auto childOf = [this, &byPath](std::int32_t parent, const QString &name) {
        const QString path = parent == 0 ? name : m_nodes[parent].path + QLatin1Char('.') + name;
        if (auto it = byPath.constFind(path); it != byPath.constEnd())
            return *it;
        Node n;
        n.name = name;
        n.path = path;
        n.parent = parent;
        n.row = static_cast<std::int32_t>(m_nodes[parent].children.size());
        const auto id = static_cast<std::int32_t>(m_nodes.size());
        m_nodes.push_back(std::move(n));
        m_nodes[parent].children.push_back(id);
        byPath.insert(path, id);
        return id;
    };

    // A pickled module tree names each module's class, in registration order; a TorchScript module
    // each submodule's compiled class, shown as torch's original_name.
    const bool script = m_document->stateDictSource == "script_module";
    if (script || m_document->stateDictSource == "module_tree") {
        if (auto root = findPath(m_document->root, m_document->stateDictPath); root) {
            for (const auto &m : moduleTree(*root)) {
                std::int32_t node = 0;
                if (!m.path.empty())
                    for (const QString &part : QString::fromStdString(m.path).split(QLatin1Char('.')))
                        node = childOf(node, part);
                m_nodes[node].className = script ? originalName(m.className) : shortClass(m.className);
            }
        }
    }

    // Tensors, and their first name by identity.
    std::map<TensorIdentity, std::int32_t> firstOf;            // identity -> first tensor node
    std::map<const void *, QString> storageUser;  // storage -> first name using it
    const auto &sd = m_document->stateDict;
    for (std::size_t i = 0; i < sd.size(); ++i) {
        const TensorRef &t = sd[i].ref();
        const QStringList parts = QString::fromStdString(sd[i].name).split(QLatin1Char('.'));
        std::int32_t node = 0;
        for (const QString &part : parts)
            node = childOf(node, part);
        Node &leaf = m_nodes[node];
        if (leaf.tensor >= 0)
            continue;  // a repeated key: the first one is what PyTorch keeps
        leaf.tensor = static_cast<std::int32_t>(i);
        leaf.className = t.isParameter ? tr("Parameter") : tr("Tensor");
        leaf.elements = t.numel();
        leaf.bytes = t.nbytes();
        leaf.tensors = 1;
        const auto [it, fresh] = firstOf.emplace(identityOf(t), node);
        if (!fresh) {
            leaf.aliasOf = m_nodes[it->second].path;
            leaf.note = tr("same tensor as %1").arg(leaf.aliasOf);
        } else if (t.storage) {
            const auto [sit, first] = storageUser.emplace(t.storage.get(), leaf.path);
            if (!first)
                leaf.note = tr("shares storage with %1").arg(sit->second);
        }
    }

    // Sum every tensor into its ancestors, a tied tensor once per module that holds it twice.
    std::unordered_map<std::int64_t, std::int32_t> countedAt;  // (ancestor, first-node) pairs already summed
    for (std::size_t n = 1; n < m_nodes.size(); ++n) {
        const Node &leaf = m_nodes[n];
        if (leaf.tensor < 0)
            continue;
        const std::int32_t canonical = leaf.aliasOf.isEmpty() ? static_cast<std::int32_t>(n) : byPath.value(leaf.aliasOf);
        for (std::int32_t a = leaf.parent; a >= 0; a = m_nodes[a].parent) {
            const std::int64_t pairKey = (static_cast<std::int64_t>(a) << 32) | static_cast<std::uint32_t>(canonical);
            if (!countedAt.emplace(pairKey, 1).second)
                continue;
            m_nodes[a].elements += leaf.elements;
            m_nodes[a].bytes += leaf.bytes;
            m_nodes[a].tensors += 1;
        }
    }
    // Containers that are not modules: a pickled state dict's prefixes are modules; in a TorchScript
    // file every module was named above, and what is left is the archive's constants table (or an
    // object's inner attributes), which torch does not list as a module.
    for (auto &n : m_nodes)
        if (n.tensor < 0 && n.className.isEmpty() && n.parent >= 0 && !script)
            n.className = tr("module");
        else if (n.tensor < 0 && n.className.isEmpty() && n.parent == 0 && script &&
                 n.name == QLatin1String("constants"))
            n.className = tr("constants");
    endResetModel();
}

QModelIndex ModuleTreeModel::indexOfPath(const QString &path) const
{
    if (path.isEmpty() || m_nodes.empty())
        return {};
    std::int32_t node = 0;
    for (const QString &part : path.split(QLatin1Char('.'))) {
        std::int32_t next = -1;
        for (std::int32_t c : m_nodes[node].children)
            if (m_nodes[c].name == part) {
                next = c;
                break;
            }
        if (next < 0)
            return {};
        node = next;
    }
    return createIndex(m_nodes[node].row, 0, static_cast<quintptr>(node));
}

int ModuleTreeModel::moduleCount() const
{
    int n = 0;
    for (std::size_t i = 1; i < m_nodes.size(); ++i)
        n += m_nodes[i].tensor < 0;
    return n;
}

int ModuleTreeModel::columnCount(const QModelIndex &) const { return ColumnCount; }

QVariant ModuleTreeModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid())
        return {};
    const Node &n = nodeOf(index);
    const TensorRef *t = n.tensor >= 0 ? &m_document->stateDict[static_cast<std::size_t>(n.tensor)].ref() : nullptr;
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case NameColumn: return n.name;
        case ClassColumn: return n.className;
        case ElementsColumn: return valuetext::count(n.elements);
        case BytesColumn: return valuetext::bytes(n.bytes);
        case TensorsColumn: return t ? QVariant() : QVariant(valuetext::count(n.tensors));
        case DTypeColumn: return t ? valuetext::dtypeText(t->dtype) : QVariant();
        case ShapeColumn: return t ? QString::fromStdString(shapeText(t->shape)) : QVariant();
        case NoteColumn: return n.note;
        }
        return {};
    case Qt::ToolTipRole:
        if (index.column() == ElementsColumn)
            return tr("Elements of the tensors under this row (parameters and buffers); a tensor saved "
                      "under two names is counted once");
        if (index.column() == NameColumn || index.column() == NoteColumn)
            return n.note.isEmpty() ? n.path : n.path + QLatin1Char('\n') + n.note;
        return {};
    case Qt::TextAlignmentRole:
        if (index.column() == ElementsColumn || index.column() == BytesColumn || index.column() == TensorsColumn)
            return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case Qt::FontRole:
        if (!n.aliasOf.isEmpty() && index.column() == NameColumn) {
            QFont f;
            f.setItalic(true);
            return f;
        }
        return {};
    case SortRole:
        switch (index.column()) {
        case ElementsColumn: return QVariant::fromValue<qlonglong>(n.elements);
        case BytesColumn: return QVariant::fromValue<qlonglong>(n.bytes);
        case TensorsColumn: return QVariant::fromValue<qlonglong>(n.tensors);
        case NameColumn: return naturalSortKey(n.name);
        default: return data(index, Qt::DisplayRole);
        }
    case PathRole: return n.path;
    case IsTensorRole: return n.tensor >= 0;
    case ElementsRole: return QVariant::fromValue<qlonglong>(n.elements);
    case BytesRole: return QVariant::fromValue<qlonglong>(n.bytes);
    case AliasOfRole: return n.aliasOf;
    }
    return {};
}

QVariant ModuleTreeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case NameColumn: return tr("Module");
    case ClassColumn: return tr("Class");
    case ElementsColumn: return tr("Elements");
    case BytesColumn: return tr("Bytes");
    case TensorsColumn: return tr("Tensors");
    case DTypeColumn: return tr("DType");
    case ShapeColumn: return tr("Shape");
    case NoteColumn: return tr("Note");
    }
    return {};
}

} // namespace ckpt
