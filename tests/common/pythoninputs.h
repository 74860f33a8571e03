#pragma once
// Inputs a test's Python script writes with torch into a folder, beside expected.json: what torch
// says of them.
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QString>
#include <QStringList>

namespace ckpt::test {

// Runs CKPT_PYTHON on `script --out dir`. Returns expected.json's object, or an empty one with
// `error` set to what went wrong (the script's output when it failed).
inline QJsonObject writePythonInputs(const QString &script, const QString &dir, QString &error)
{
    QProcess python;
    python.setProcessChannelMode(QProcess::MergedChannels);
    python.start(QStringLiteral(CKPT_PYTHON), {script, QStringLiteral("--out"), dir});
    if (!python.waitForFinished(300000) || python.exitStatus() != QProcess::NormalExit || python.exitCode() != 0) {
        error = script + QStringLiteral(" failed: ") + QString::fromUtf8(python.readAll());
        return {};
    }
    QFile f(dir + QStringLiteral("/expected.json"));
    if (!f.open(QIODevice::ReadOnly)) {
        error = script + QStringLiteral(" wrote no expected.json");
        return {};
    }
    return QJsonDocument::fromJson(f.readAll()).object();
}

} // namespace ckpt::test
