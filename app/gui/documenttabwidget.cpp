#include "documenttabwidget.h"

#include <QTabBar>

#include <algorithm>

namespace ckpt {

namespace {

// QTabBar lets an elided tab shrink to three characters and an ellipsis ("s…t"), so eight open
// files all become unreadable before scroll buttons appear. This one keeps about kReadableChars.
class ReadableTabBar : public QTabBar {
public:
    using QTabBar::QTabBar;

protected:
    QSize tabSizeHint(int index) const override
    {
        // QTabBar::minimumTabSizeHint measures through this function with the elided text: the
        // cap is worked out from QTabBar's own hint, never from minimumTabSizeHint.
        QSize size = QTabBar::tabSizeHint(index);
        const QFontMetrics fm = fontMetrics();
        const int text = fm.horizontalAdvance(tabText(index));
        const int room = DocumentTabWidget::maxTextWidth(fm);
        if (text > room)
            size.setWidth(size.width() - text + room);
        return size;
    }

    QSize minimumTabSizeHint(int index) const override
    {
        QSize size = QTabBar::minimumTabSizeHint(index);  // three characters, the ellipsis, icon, close button
        const int readable = size.width() + fontMetrics().averageCharWidth() * (DocumentTabWidget::kReadableChars - 3);
        size.setWidth(std::min(tabSizeHint(index).width(), readable));
        return size;
    }
};

} // namespace

int DocumentTabWidget::maxTextWidth(const QFontMetrics &fm)
{
    return fm.horizontalAdvance(QString(kMaxChars, QLatin1Char('n')));
}

DocumentTabWidget::DocumentTabWidget(QWidget *parent) : QTabWidget(parent)
{
    setTabBar(new ReadableTabBar(this));
    setElideMode(Qt::ElideRight);
    setUsesScrollButtons(true);
}

} // namespace ckpt
