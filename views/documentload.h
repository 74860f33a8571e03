#pragma once

#include <QString>

#include <memory>

template <typename T>
class QPromise;

namespace ckpt {

struct Document;
struct SecurityReport;
class TreeSnapshot;

// What reading one file in the background produced: the document and its tree, or an error.
struct DocumentLoad {
    QString path;
    std::shared_ptr<const Document> document;
    std::shared_ptr<const TreeSnapshot> tree;
    std::shared_ptr<const SecurityReport> security;  // what a Python load would do
    QString error;          // "path: what is wrong" when reading failed
    qint64 elapsedMs = 0;

    bool ok() const { return document && tree; }
};

// Reads `path` and builds its tree snapshot, for QtConcurrent::run. Reports progress (0..1000)
// through `promise` and stops early when it is cancelled. Never throws: errors land in `error`.
void loadDocument(QPromise<DocumentLoad> &promise, const QString &path);

} // namespace ckpt
