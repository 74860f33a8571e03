#include "treesnapshot.h"

#include <filesystem>

#include "document.h"
#include "valuetree.h"

#include <algorithm>
#include <unordered_map>

namespace ckpt {

std::shared_ptr<const TreeSnapshot> TreeSnapshot::build(std::shared_ptr<const Document> doc,
                                                        const TreeSnapshotOptions &options)
{
    auto snap = std::make_shared<TreeSnapshot>();
    snap->m_document = doc;
    auto &nodes = snap->m_nodes;
    nodes.push_back(TreeNode{});  // invisible root
    if (!doc || !doc->root)
        return snap;

    const auto maxChildren = static_cast<std::size_t>(std::max(1, options.m_maxChildren));
    const auto maxNodes = static_cast<std::size_t>(std::max(1, options.m_maxNodes));

    // Object identity -> node where it is opened. Only opened containers are recorded, so an alias
    // always points at a node that shows the children.
    std::unordered_map<const Value *, std::int32_t> opened;

    auto addChildren = [&](std::int32_t parent, std::vector<Child> &&children) {
        const std::size_t listed = std::min(children.size(), maxChildren);
        const auto first = static_cast<std::int32_t>(nodes.size());
        const std::int32_t depth = nodes[static_cast<std::size_t>(parent)].depth + 1;
        for (std::size_t k = 0; k < listed; ++k) {
            TreeNode n;
            n.value = children[k].value.get();
            n.label = QString::fromStdString(children[k].label);
            n.parent = parent;
            n.row = static_cast<std::int32_t>(k);
            n.depth = depth;
            n.childRole = static_cast<std::uint8_t>(children[k].role);
            nodes.push_back(std::move(n));
        }
        std::int32_t count = static_cast<std::int32_t>(listed);
        if (children.size() > listed) {
            TreeNode more;
            more.type = TreeNode::Type::More;
            more.parent = parent;
            more.row = count++;
            more.depth = depth;
            more.hidden = static_cast<std::int64_t>(children.size() - listed);
            more.label = QStringLiteral("\u2026 %1 more").arg(QString::number(more.hidden));
            snap->m_hiddenCount += more.hidden;
            nodes.push_back(std::move(more));
        }
        auto &p = nodes[static_cast<std::size_t>(parent)];
        p.firstChild = first;
        p.childCount = count;
        return first;
    };

    // The root's children are the top-level rows; a root without children is one "(root)" row.
    {
        auto top = childrenOf(*doc->root);
        if (top.empty())
            top.push_back(Child{"(root)", doc->root, ChildRole::Key});
        else
            opened.emplace(doc->root.get(), 0);
        // What the file holds besides its main pickle, and the metadata sidecar beside it.
        if (doc->constants)
            top.push_back(Child{"(constants.pkl)", doc->constants, ChildRole::State});
        if (doc->formatMetadata)
            top.push_back(Child{"(__metadata__)", doc->formatMetadata, ChildRole::State});
        if (doc->sidecar)
            top.push_back(Child{"(sidecar " + std::filesystem::path(doc->sidecarPath).filename().string() + ")",
                                doc->sidecar, ChildRole::State});
        addChildren(0, std::move(top));
    }

    // Depth-first, pre-order, with an explicit stack: "first seen" is the first in display order,
    // and a 100,000-deep chain cannot overflow the thread's stack.
    std::vector<std::int32_t> pending;
    const auto &root = nodes[0];
    for (std::int32_t i = root.firstChild + root.childCount - 1; i >= root.firstChild; --i)
        pending.push_back(i);

    std::size_t steps = 0;
    while (!pending.empty()) {
        const std::int32_t i = pending.back();
        pending.pop_back();
        if (options.m_cancelled && (++steps & 0x3ff) == 0 && options.m_cancelled())
            return nullptr;

        auto &n = nodes[static_cast<std::size_t>(i)];
        if (n.type != TreeNode::Type::Value || !n.value)
            continue;
        if (auto it = opened.find(n.value); it != opened.end()) {
            n.type = TreeNode::Type::Alias;
            n.aliasOf = it->second;
            ++snap->m_aliasCount;
            continue;
        }
        auto children = childrenOf(*n.value);
        if (children.empty())
            continue;
        if (n.depth >= options.m_maxDepth || nodes.size() >= maxNodes) {
            n.hidden = static_cast<std::int64_t>(children.size());
            snap->m_hiddenCount += n.hidden;
            continue;
        }
        opened.emplace(n.value, i);
        const std::int32_t first = addChildren(i, std::move(children));
        const auto &opener = nodes[static_cast<std::size_t>(i)];  // addChildren may have reallocated
        for (std::int32_t c = first + opener.childCount - 1; c >= first; --c)
            pending.push_back(c);
    }
    nodes.shrink_to_fit();
    return snap;
}

QStringList TreeSnapshot::path(int i) const
{
    QStringList out;
    while (i > 0 && i < size()) {
        out.prepend(node(i).label);
        i = node(i).parent;
    }
    return out;
}

QString TreeSnapshot::pathText(int i) const
{
    return path(i).join(QLatin1Char('/'));
}

int TreeSnapshot::find(const QStringList &path) const
{
    int cur = 0;
    for (const QString &step : path) {
        const TreeNode &n = node(cur);
        int next = -1;
        for (int c = n.firstChild; c >= 0 && c < n.firstChild + n.childCount; ++c)
            if (node(c).type != TreeNode::Type::More && node(c).label == step) {
                next = c;
                break;
            }
        if (next < 0)
            return -1;
        cur = next;
    }
    return cur == 0 ? -1 : cur;
}

} // namespace ckpt
