#include "jobpool.h"

#include <QCoreApplication>
#include <QFutureWatcher>
#include <QThread>
#include <QThreadPool>

#include <latch>

namespace ckpt {

namespace {
// Starts every thread of `pool` now and keeps them. A thread created later can be held up by a
// library being loaded: pthread_create waits for the loader's TLS lock, which dlopen holds while
// LibTorch loads (about a quarter of a second here), and the GUI thread starting a job would
// freeze for as long.
void startThreadsNow(QThreadPool *pool)
{
    pool->setExpiryTimeout(-1);
    const int n = pool->maxThreadCount();
    auto started = std::make_shared<std::latch>(n);
    for (int i = 0; i < n; ++i)
        pool->start([started] { started->arrive_and_wait(); });  // n distinct threads, each waits for all
    started->wait();
}

QThreadPool *g_pool = nullptr;

// When the application object goes, before the process's static objects do: a job still running
// then (LibTorch being loaded, a statistic being computed) would otherwise run on while exit()
// takes apart what it uses. Views cancel their jobs when they close, so the wait is short.
void waitForJobs()
{
    if (g_pool)
        g_pool->waitForDone();
}
} // namespace

QThreadPool *jobPool()
{
    static QThreadPool *pool = [] {
        auto *p = new QThreadPool;  // lives as long as the process: jobs may outlive every window
        p->setMaxThreadCount(std::max(2, QThread::idealThreadCount()));
        p->setObjectName(QStringLiteral("ckpt jobs"));
        startThreadsNow(p);
        // Qt converts images on its global pool while painting: its threads are made now too.
        startThreadsNow(QThreadPool::globalInstance());
        g_pool = p;
        qAddPostRoutine(waitForJobs);
        return p;
    }();
    return pool;
}

void abandonJob(QFutureWatcherBase *watcher)
{
    if (!watcher)
        return;
    watcher->disconnect();
    if (watcher->isFinished()) {
        watcher->deleteLater();
        return;
    }
    QObject::connect(watcher, &QFutureWatcherBase::finished, watcher, &QObject::deleteLater);
    watcher->cancel();
}

} // namespace ckpt
