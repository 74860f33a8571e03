#pragma once

#include <QIcon>

namespace ckpt::itemicons {

// A small amber warning triangle, painted (QtGui only: item models cannot ask QStyle).
// Null without a QGuiApplication.
QIcon warning();

} // namespace ckpt::itemicons
