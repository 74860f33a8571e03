#pragma once

#include <QIcon>

namespace ckpt::itemicons {

// A small amber warning triangle, painted (QtGui only: item models cannot ask QStyle).
// Null without a QGuiApplication.
QIcon warning();
// A small red disc with an exclamation mark: values that are NaN or infinite.
QIcon nonFinite();
// A red shield with a white exclamation mark: a file that names code Python would run on loading
// it (read fine here; dangerous to torch.load). Not an error sign: the file was read.
QIcon danger();
// Two overlapping pages, blue and red: a comparison of two files.
QIcon compare();

} // namespace ckpt::itemicons
