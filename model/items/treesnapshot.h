#pragma once

#include <QString>
#include <QStringList>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace ckpt {

struct Document;
class Value;

// Limits for building a tree snapshot, set LibTorch-style: TreeSnapshotOptions().maxChildren(100).
struct TreeSnapshotOptions {
    TreeSnapshotOptions &maxChildren(int n) { m_maxChildren = n; return *this; }
    TreeSnapshotOptions &maxDepth(int n) { m_maxDepth = n; return *this; }
    TreeSnapshotOptions &maxNodes(int n) { m_maxNodes = n; return *this; }
    // Asked now and then while building; returning true abandons the build (build() returns nullptr).
    TreeSnapshotOptions &cancelled(std::function<bool()> f) { m_cancelled = std::move(f); return *this; }

    int m_maxChildren = 10000;   // rows listed under one node; the rest become one "… N more" row
    int m_maxDepth = 1000;       // deeper containers are listed but not opened
    int m_maxNodes = 500000;     // rows in the whole tree; past it containers are listed but not opened
    std::function<bool()> m_cancelled;
};

// One row of the document tree: a value reached from its parent by a label.
struct TreeNode {
    enum class Type : std::uint8_t {
        Value,   // an ordinary value, opened when it has children
        Alias,   // a container already opened elsewhere in the tree (shared or cyclic): not opened again
        More,    // stands for the children past the per-node limit
    };
    const Value *value = nullptr;  // owned by the snapshot's document; null for More rows
    QString label;
    std::int32_t parent = -1;      // node index; -1 for the invisible root
    std::int32_t row = 0;          // position under the parent
    std::int32_t firstChild = -1;  // children are contiguous: firstChild .. firstChild + childCount - 1
    std::int32_t childCount = 0;
    std::int32_t aliasOf = -1;     // Alias: the node where the object is opened
    std::int32_t depth = 0;        // top-level rows have depth 1
    std::int64_t hidden = 0;       // More: children not listed; Value: children not opened (limits)
    Type type = Type::Value;
    std::uint8_t childRole = 0;    // ckpt::ChildRole of the label
};

// An immutable, flat picture of a document's value tree, built once (in a worker thread) and then
// shared read-only with item models on the GUI thread. Node 0 is the invisible root; its children
// are the top-level rows. Every container is opened at most once: later sightings are Alias rows.
class TreeSnapshot {
public:
    // Builds the tree of `doc`; nullptr when options.cancelled() said so. Never recursive.
    static std::shared_ptr<const TreeSnapshot> build(std::shared_ptr<const Document> doc,
                                                     const TreeSnapshotOptions &options = {});

    const std::shared_ptr<const Document> &document() const { return m_document; }
    const std::vector<TreeNode> &nodes() const { return m_nodes; }
    const TreeNode &node(int i) const { return m_nodes[static_cast<std::size_t>(i)]; }
    int size() const { return static_cast<int>(m_nodes.size()); }
    int aliasCount() const { return m_aliasCount; }
    // Rows left out because of the limits (per-node, depth, total); 0 when the tree is complete.
    std::int64_t hiddenCount() const { return m_hiddenCount; }

    // Labels from the top level down to node i.
    QStringList path(int i) const;
    // "model_state_dict/fc1.weight".
    QString pathText(int i) const;
    // The node at `path` (labels from the top level), -1 when absent.
    int find(const QStringList &path) const;

private:
    std::shared_ptr<const Document> m_document;
    std::vector<TreeNode> m_nodes;
    int m_aliasCount = 0;
    std::int64_t m_hiddenCount = 0;
};

} // namespace ckpt
