#pragma once

#include <QTabWidget>

namespace ckpt {

// The window's tabs, kept readable however many are open: a name is elided at its end (its start
// is what tells files apart), a tab never shrinks below about kReadableChars characters of its
// name, and scroll buttons appear when the tabs no longer fit.
class DocumentTabWidget : public QTabWidget {
    Q_OBJECT
public:
    static constexpr int kReadableChars = 16;

    explicit DocumentTabWidget(QWidget *parent = nullptr);
};

} // namespace ckpt
