#pragma once

// Where the tests find PyTorch-written fixtures and PyTorch's own account of them.
#include "document.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QString>

#include <memory>

namespace ckpt::test {

inline QString fixturePath(const QString &name) { return QStringLiteral(CKPT_FIXTURES_DIR "/") + name; }

// fixtures/expected.json: what torch.load reported for each fixture; empty when it is missing.
inline QJsonObject expectedListing()
{
    QFile f(fixturePath(QStringLiteral("expected.json")));
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return QJsonDocument::fromJson(f.readAll()).object();
}

inline std::shared_ptr<const Document> readFixture(const QString &name)
{
    return std::make_shared<const Document>(readDocument(fixturePath(name).toStdString()));
}

} // namespace ckpt::test
