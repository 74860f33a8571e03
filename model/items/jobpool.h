#pragma once

class QThreadPool;

namespace ckpt {

// The thread pool for the application's long jobs (reading files, statistics, values, histograms,
// comparisons, conversions, predictions): QtConcurrent::run(jobPool(), ...). Qt's global pool
// stays free for Qt itself, which converts and scales images on it while painting; with our jobs
// there, a paint on a two-core machine waited for a statistics chunk to finish (a 1 s freeze).
QThreadPool *jobPool();

} // namespace ckpt
