#pragma once

// Drags onto a widget and drops, as a file manager would: a drag-enter at its centre and, when that
// is accepted, the drop (with `modifiers` held, e.g. Ctrl to compare). True when the drop is accepted.

#include <QCoreApplication>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QMimeData>
#include <QStringList>
#include <QUrl>
#include <QWidget>

namespace ckpt::test {

inline bool dropUrls(QWidget &target, const QList<QUrl> &urls, Qt::KeyboardModifiers modifiers = Qt::NoModifier)
{
    QMimeData mime;
    mime.setUrls(urls);
    const QPoint pos = target.rect().center();
    QDragEnterEvent enter(pos, Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(&target, &enter);
    if (!enter.isAccepted())
        return false;
    QDropEvent drop(QPointF(pos), Qt::CopyAction, &mime, Qt::LeftButton, modifiers);
    QCoreApplication::sendEvent(&target, &drop);
    return drop.isAccepted();
}

// The same for local files by path.
inline bool dropFiles(QWidget *target, const QStringList &paths)
{
    QList<QUrl> urls;
    for (const QString &p : paths)
        urls << QUrl::fromLocalFile(p);
    return dropUrls(*target, urls);
}

} // namespace ckpt::test
