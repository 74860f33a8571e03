#include "jobpool.h"

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

} // namespace ckpt
