#pragma once

#include <QString>

#include <memory>

template <typename T>
class QPromise;

namespace ckpt {

struct Document;
struct RunFolder;
struct SecurityReport;
class TreeSnapshot;

// What reading one file in the background produced: the document and its tree, or an error.
struct DocumentLoad {
    QString path;
    std::shared_ptr<const Document> document;
    std::shared_ptr<const TreeSnapshot> tree;
    std::shared_ptr<const SecurityReport> security;  // what a Python load would do
    // A folder's model with the optimizer saved beside it (a Trainer's optimizer.pt) as its
    // optimizer, read with the rest off the GUI thread; null when the folder has none. Where that
    // file does not read, why, with its name.
    std::shared_ptr<const Document> optimizerDocument;
    QString optimizerSource;  // that file's name in the folder ("optimizer.pt")
    QString optimizerError;
    QString error;          // "path: what is wrong" when reading failed
    // Where reading failed because the folder is a training run's (checkpoint-N folders, no
    // checkpoint of its own): its checkpoints, for the window to offer.
    std::shared_ptr<const RunFolder> run;
    qint64 elapsedMs = 0;

    bool ok() const { return document && tree; }
};

// Reads `path` and builds its tree snapshot, for QtConcurrent::run. Reports progress (0..1000)
// through `promise` and stops early when it is cancelled. Never throws: errors land in `error`.
void loadDocument(QPromise<DocumentLoad> &promise, const QString &path);

} // namespace ckpt
