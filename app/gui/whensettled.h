#pragma once

#include <QObject>

#include <functional>

namespace ckpt {

class DocumentView;

// Calls `done` once, on `context`'s thread, as soon as `view` has nothing left to wait for: its
// file was read and its statistics are computed (or none were started: a file without tensors),
// or reading it failed. What `--screenshot` waits for before it saves the window.
void whenSettled(DocumentView *view, QObject *context, std::function<void()> done);

} // namespace ckpt
