#pragma once

#include <QIcon>

namespace ckpt::itemicons {

// A small amber warning triangle, painted (QtGui only: item models cannot ask QStyle).
// Null without a QGuiApplication.
QIcon warning();
// A small red disc with an exclamation mark: values that are NaN or infinite.
QIcon nonFinite();

} // namespace ckpt::itemicons
