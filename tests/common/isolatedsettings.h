#pragma once

// QSettings for a test process, kept out of the user's own settings and out of every other test
// process's: QStandardPaths' test mode alone sends all of them to one shared ~/.qttest folder, where
// two runs at once (a developer's ctest beside CI, two worktrees) read each other's recent files.
#include <QCoreApplication>
#include <QSettings>
#include <QStandardPaths>
#include <QString>
#include <QTemporaryDir>

namespace ckpt::test {

// Call first in initTestCase(), before any QSettings object exists.
inline void isolateSettings(const QString &organization, const QString &application)
{
    QStandardPaths::setTestModeEnabled(true);
    static QTemporaryDir folder;  // removed when the process ends
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, folder.path());
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, folder.path());
    QCoreApplication::setOrganizationName(organization);
    QCoreApplication::setApplicationName(application);
}

} // namespace ckpt::test
