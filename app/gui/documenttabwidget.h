#pragma once

#include <QFontMetrics>
#include <QTabWidget>

namespace ckpt {

// The window's tabs, kept readable however many are open: a name is elided at its end (its start
// is what tells files apart), a tab never shrinks below about kReadableChars characters of its
// name nor grows beyond about kMaxChars (one long name does not squeeze the others; the tooltip
// has it whole), and scroll buttons appear when the tabs no longer fit.
class DocumentTabWidget : public QTabWidget {
    Q_OBJECT
public:
    static constexpr int kReadableChars = 16;
    static constexpr int kMaxChars = 36;  // measured in widths of 'n', a typical letter of a name
    // The most a tab's text takes: kMaxChars letters of `fm`.
    static int maxTextWidth(const QFontMetrics &fm);

    explicit DocumentTabWidget(QWidget *parent = nullptr);
};

} // namespace ckpt
