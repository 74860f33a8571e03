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
    QSize minimumTabSizeHint(int index) const override
    {
        QSize size = QTabBar::minimumTabSizeHint(index);  // three characters, the ellipsis, icon, close button
        const int readable = size.width() + fontMetrics().averageCharWidth() * (DocumentTabWidget::kReadableChars - 3);
        size.setWidth(std::min(tabSizeHint(index).width(), readable));
        return size;
    }
};

} // namespace

DocumentTabWidget::DocumentTabWidget(QWidget *parent) : QTabWidget(parent)
{
    setTabBar(new ReadableTabBar(this));
    setElideMode(Qt::ElideRight);
    setUsesScrollButtons(true);
}

} // namespace ckpt
