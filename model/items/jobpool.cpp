#include "jobpool.h"

#include <QFutureWatcher>
#include <QThread>
#include <QThreadPool>

namespace ckpt {

QThreadPool *jobPool()
{
    static QThreadPool *pool = [] {
        auto *p = new QThreadPool;  // lives as long as the process: jobs may outlive every window
        p->setMaxThreadCount(std::max(2, QThread::idealThreadCount()));
        p->setObjectName(QStringLiteral("ckpt jobs"));
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
