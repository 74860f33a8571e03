#include "itemicons.h"

#include <QGuiApplication>
#include <QPainter>
#include <QPainterPath>
#include <QPixmap>

namespace ckpt::itemicons {

namespace {

QPixmap paintWarning(int size)
{
    QPixmap pm(size, size);
    pm.fill(Qt::transparent);
    QPainter p(&pm);
    p.setRenderHint(QPainter::Antialiasing);
    const qreal m = size * 0.06;
    QPainterPath tri;
    tri.moveTo(size / 2.0, m);
    tri.lineTo(size - m, size - m);
    tri.lineTo(m, size - m);
    tri.closeSubpath();
    p.setPen(QPen(QColor(0x8a, 0x5a, 0x00), size / 16.0));
    p.setBrush(QColor(0xf5, 0xb0, 0x1a));
    p.drawPath(tri);
    p.setPen(QPen(QColor(0x30, 0x20, 0x00), size / 8.0, Qt::SolidLine, Qt::RoundCap));
    p.drawLine(QPointF(size / 2.0, size * 0.36), QPointF(size / 2.0, size * 0.66));
    p.drawPoint(QPointF(size / 2.0, size * 0.80));
    return pm;
}

} // namespace

QIcon warning()
{
    // Pixmaps need a QGuiApplication; a model used from a console program simply has no icon.
    if (!qobject_cast<QGuiApplication *>(QCoreApplication::instance()))
        return {};
    static const QIcon icon = [] {
        QIcon i;
        for (int s : {16, 24, 32, 48})
            i.addPixmap(paintWarning(s));
        return i;
    }();
    return icon;
}

} // namespace ckpt::itemicons
