#include "dialogfolders.h"

#include <QDir>
#include <QFileInfo>
#include <QSettings>

namespace ckpt::dialogfolders {

namespace {

bool isFolder(const QString &path)
{
    return !path.isEmpty() && QFileInfo(path).isDir();
}

} // namespace

QString openStart()
{
    const QString remembered = QSettings().value(QLatin1String(kLastOpenKey)).toString();
    return isFolder(remembered) ? remembered : QDir::homePath();
}

void rememberOpened(const QString &path)
{
    if (!path.isEmpty())
        QSettings().setValue(QLatin1String(kLastOpenKey), QFileInfo(QDir::cleanPath(path)).absolutePath());
}

QString outputStart(const QString &documentPath)
{
    const QString remembered = QSettings().value(QLatin1String(kLastOutputKey)).toString();
    if (isFolder(remembered))
        return remembered;
    const QString beside = documentPath.isEmpty() ? QString() : QFileInfo(documentPath).absolutePath();
    return isFolder(beside) ? beside : QDir::homePath();
}

void rememberOutput(const QString &folder)
{
    if (!folder.isEmpty())
        QSettings().setValue(QLatin1String(kLastOutputKey), QFileInfo(folder).absoluteFilePath());
}

} // namespace ckpt::dialogfolders
