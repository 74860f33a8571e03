#include "statisticsjob.h"

#include "computeloader.h"
#include "document.h"

#include <QPromise>

namespace ckpt {

void computeStatistics(QPromise<RowStatistics> &promise, std::shared_ptr<const Document> doc,
                       const std::vector<NamedTensor> *tensors)
{
    promise.setProgressRange(0, static_cast<int>(tensors->size()));
    // Asked between chunks too: a cancel (or the application's exit, which waits for its jobs)
    // does not wait for the rest of a billion-element embedding.
    const CancelCheck cancelled = [&promise] { return promise.isCanceled(); };
    for (std::size_t i = 0; i < tensors->size(); ++i) {
        if (promise.isCanceled())
            return;
        RowStatistics out;
        out.row = static_cast<int>(i);
        try {
            // The first call loads the compute module (LibTorch), here on the worker thread.
            out.stats = ComputeLoader::api().statistics((*tensors)[i].ref(), cancelled);
        } catch (const std::exception &e) {
            if (promise.isCanceled())
                return;  // stopped inside the tensor: no figures for it
            out.error = QString::fromStdString(e.what());
        }
        promise.addResult(std::move(out));
        promise.setProgressValue(static_cast<int>(i + 1));
    }
    (void)doc;
}

} // namespace ckpt
