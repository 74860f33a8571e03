#pragma once

#include <QFutureWatcher>
#include <QProgressBar>
#include <QString>
#include <QWidget>

#include <memory>

namespace ckpt {

// The wiring a view's one background job needs: `progress` follows it, and when it finishes, if
// it is still the view's current job (`current`; a newer one replaces it), the progress widgets
// are hidden and `done` is called on the GUI thread with its result: nullptr when the job was
// cancelled or gave none. `Job` carries an `error` text, shown in `status` when not empty
// (then `done` is not called). `failed(text)` gets what to show when there is no result.
template <class Job, class Done, class Failed>
void watchViewJob(QObject *owner, QFutureWatcher<std::shared_ptr<Job>> *watcher,
                  QFutureWatcher<std::shared_ptr<Job>> *&current, QProgressBar *progress, QWidget *cancel, Done done,
                  Failed failed)
{
    current = watcher;
    QObject::connect(watcher, &QFutureWatcherBase::progressRangeChanged, progress, &QProgressBar::setRange);
    QObject::connect(watcher, &QFutureWatcherBase::progressValueChanged, progress, &QProgressBar::setValue);
    QObject::connect(watcher, &QFutureWatcherBase::finished, owner, [watcher, &current, progress, cancel, done, failed] {
        if (watcher != current)
            return;
        current = nullptr;
        watcher->deleteLater();
        progress->hide();
        cancel->hide();
        if (watcher->isCanceled() || watcher->future().resultCount() == 0) {
            failed(QString());
            return;
        }
        const std::shared_ptr<Job> job = watcher->result();
        if (!job->error.isEmpty()) {
            failed(job->error);
            return;
        }
        done(job);
    });
}

} // namespace ckpt
