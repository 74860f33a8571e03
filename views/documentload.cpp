#include "documentload.h"

#include "checkpointfolder.h"
#include "document.h"
#include "error.h"
#include "security.h"
#include "treesnapshot.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QPromise>

#include <new>

namespace ckpt {

void loadDocument(QPromise<DocumentLoad> &promise, const QString &path)
{
    QElapsedTimer timer;
    timer.start();
    DocumentLoad out;
    out.path = path;
    promise.setProgressRange(0, 1000);
    try {
        // A folder is read as the checkpoint it holds (a Trainer's checkpoint-500/, DeepSpeed's save folder).
        if (!QFileInfo(path).isFile() && !QFileInfo(path).isDir())
            throw FormatError(path.toStdString() + (QFileInfo::exists(path) ? ": is not a regular file"
                                                                             : ": no such file"));
        ReadOptions options;
        // Reading is 90% of the work, building the tree the rest.
        options.progress = [&promise](double f) {
            promise.setProgressValue(static_cast<int>(f * 900));
            return !promise.isCanceled();
        };
        auto doc = std::make_shared<const Document>(readDocument(path.toStdString(), options));
        if (promise.isCanceled())
            return;
        promise.setProgressValue(900);
        const auto cancelled = [&promise] { return promise.isCanceled(); };
        out.tree = TreeSnapshot::build(doc, TreeSnapshotOptions().cancelled(cancelled));
        if (!out.tree)
            return;  // cancelled
        out.security = std::make_shared<const SecurityReport>(securityReport(*doc));
        if (documentTruncated(*doc))
            throw FormatError(doc->path + ": the file changed or was truncated while it was read");
        // A Trainer folder keeps its optimizer in optimizer.pt beside the weights: the Optimizer view
        // shows it as it shows a single file's, its ids mapped to the weights' names.
        if (doc->folder)
            if (const FolderPart *part = folderOptimizerPart(*doc->folder)) {
                out.optimizerSource = QString::fromStdString(part->name);
                try {
                    out.optimizerDocument = withFolderOptimizer(*doc);
                } catch (const std::exception &e) {
                    out.optimizerError = QString::fromStdString(e.what());
                }
            }
        out.document = std::move(doc);
        promise.setProgressValue(1000);
    } catch (const FormatError &e) {
        out.error = QString::fromStdString(e.what());
        // A Trainer's output_dir: its checkpoints are listed for the window to offer.
        if (QFileInfo(path).isDir())
            try {
                if (auto run = findRunFolder(path.toStdString()))
                    out.run = std::make_shared<const RunFolder>(std::move(*run));
            } catch (const std::exception &) {
                // The error above says what is wrong.
            }
    } catch (const std::bad_alloc &) {
        out.error = path + QStringLiteral(": not enough memory to read this file");
    } catch (const std::exception &e) {
        out.error = path + QStringLiteral(": ") + QString::fromStdString(e.what());
    }
    out.elapsedMs = timer.elapsed();
    promise.addResult(std::move(out));
}

} // namespace ckpt
