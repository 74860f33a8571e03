#pragma once

class QFutureWatcherBase;
class QThreadPool;

namespace ckpt {

// The thread pool for the application's long jobs (reading files, statistics, values, histograms,
// comparisons, conversions, predictions): QtConcurrent::run(jobPool(), ...). Qt's global pool
// stays free for Qt itself, which converts and scales images on it while painting; with our jobs
// there, a paint on a two-core machine waited for a statistics chunk to finish (a 1 s freeze).
QThreadPool *jobPool();

// Stops listening to a background job and lets it end on its own: disconnects the watcher from
// everyone (results not yet delivered are dropped), asks the job to stop, and deletes the watcher
// once the job has ended. For cancels, and for jobs a newer one made stale.
void abandonJob(QFutureWatcherBase *watcher);

} // namespace ckpt
