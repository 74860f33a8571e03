#pragma once

#include "jobpool.h"

#include <QFutureWatcher>
#include <QPromise>
#include <QProgressBar>
#include <QString>
#include <QWidget>
#include <QtConcurrent>

#include <exception>
#include <memory>

namespace ckpt {

// What a view's summary says when its job gave no result: `cancelled`, or the error in red.
inline QString jobFailureText(const QString &error, const QString &cancelled)
{
    return error.isEmpty() ? cancelled
                           : QStringLiteral("<span style='color:#b3261e'>%1</span>").arg(error.toHtmlEscaped());
}

// What a view's background job reports as it goes: (done, total) → keep going.
template <class Result> auto progressReporter(QPromise<Result> &promise)
{
    return [&promise](std::size_t done, std::size_t total) {
        promise.setProgressRange(0, static_cast<int>(total));
        promise.setProgressValue(static_cast<int>(done));
        return !promise.isCanceled();
    };
}

// A view's one background job (compare, series): `work(job, promise)` fills a fresh `Job` on the
// job pool (an exception becomes its `error` text); `progress` follows it; when it finishes, and is
// still the view's current job (`current`: a newer one replaces it), the progress widgets are
// hidden and, on the GUI thread, `done(job)` is called, or `failed(text)` with the job's error, or
// with an empty text when it was cancelled.
template <class Job, class Work, class Done, class Failed>
void startViewJob(QObject *owner, QFutureWatcher<std::shared_ptr<Job>> *&current, QProgressBar *progress,
                  QWidget *cancel, Work work, Done done, Failed failed)
{
    auto *watcher = new QFutureWatcher<std::shared_ptr<Job>>(owner);
    current = watcher;
    progress->setRange(0, 0);
    progress->show();
    cancel->show();
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
        if (!job->error.isEmpty())
            failed(job->error);
        else
            done(job);
    });
    watcher->setFuture(QtConcurrent::run(jobPool(), [work](QPromise<std::shared_ptr<Job>> &promise) {
        auto job = std::make_shared<Job>();
        try {
            work(*job, promise);
        } catch (const std::exception &e) {
            if (promise.isCanceled())
                return;
            job->error = QString::fromStdString(e.what());
        }
        promise.addResult(job);
    }));
}

// Cancels the view's current job, if any: it stops before its next step and is forgotten.
// Returns whether there was one.
template <class Job>
bool cancelViewJob(QFutureWatcher<std::shared_ptr<Job>> *&current, QProgressBar *progress, QWidget *cancel)
{
    if (!current)
        return false;
    abandonJob(current);
    current = nullptr;
    progress->hide();
    cancel->hide();
    return true;
}

} // namespace ckpt
