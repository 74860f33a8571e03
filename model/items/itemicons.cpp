#include "itemicons.h"

#include <QGuiApplication>
#include <QPainter>
#include <QPainterPath>
#include <QPixmap>

namespace ckpt::itemicons {

namespace {

void paintWarning(QPainter &p, qreal size)
{
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
}

void paintNonFinite(QPainter &p, qreal size)
{
    const qreal m = size * 0.08;
    p.setPen(QPen(QColor(0x8c, 0x1d, 0x18), size / 16.0));
    p.setBrush(QColor(0xd9, 0x3a, 0x2f));
    p.drawEllipse(QRectF(m, m, size - 2 * m, size - 2 * m));
    p.setPen(QPen(Qt::white, size / 8.0, Qt::SolidLine, Qt::RoundCap));
    p.drawLine(QPointF(size / 2.0, size * 0.27), QPointF(size / 2.0, size * 0.58));
    p.drawPoint(QPointF(size / 2.0, size * 0.74));
}

void paintDanger(QPainter &p, qreal size)
{
    const qreal w = size, m = size * 0.08;
    QPainterPath shield;
    shield.moveTo(w / 2.0, m);
    shield.cubicTo(w * 0.68, m + w * 0.08, w * 0.82, m + w * 0.10, w - m - w * 0.04, m + w * 0.10);
    shield.cubicTo(w - m - w * 0.04, w * 0.58, w * 0.72, w * 0.80, w / 2.0, w - m);
    shield.cubicTo(w * 0.28, w * 0.80, m + w * 0.04, w * 0.58, m + w * 0.04, m + w * 0.10);
    shield.cubicTo(w * 0.18, m + w * 0.10, w * 0.32, m + w * 0.08, w / 2.0, m);
    shield.closeSubpath();
    p.setPen(QPen(QColor(0x7a, 0x12, 0x0c), size / 16.0));
    p.setBrush(QColor(0xc6, 0x28, 0x28));
    p.drawPath(shield);
    p.setPen(QPen(Qt::white, size / 8.0, Qt::SolidLine, Qt::RoundCap));
    p.drawLine(QPointF(w / 2.0, w * 0.27), QPointF(w / 2.0, w * 0.54));
    p.drawPoint(QPointF(w / 2.0, w * 0.71));
}

void paintCompare(QPainter &p, qreal size)
{
    const qreal w = size;
    const QRectF page(0, 0, w * 0.55, w * 0.72);
    p.setPen(QPen(QColor(0x15, 0x4f, 0x7a), size / 16.0));
    p.setBrush(QColor(0x1f, 0x77, 0xb4));
    p.drawRoundedRect(page.translated(w * 0.06, w * 0.06), w * 0.06, w * 0.06);
    p.setPen(QPen(QColor(0x8c, 0x1a, 0x1b), size / 16.0));
    p.setBrush(QColor(0xd6, 0x27, 0x28, 220));
    p.drawRoundedRect(page.translated(w * 0.39, w * 0.22), w * 0.06, w * 0.06);
}

// One icon at the sizes views ask for, each pixmap painted antialiased on a transparent square.
QIcon paintedIcon(void (*paint)(QPainter &, qreal))
{
    QIcon i;
    for (int s : {16, 24, 32, 48}) {
        QPixmap pm(s, s);
        pm.fill(Qt::transparent);
        {
            QPainter p(&pm);
            p.setRenderHint(QPainter::Antialiasing);
            paint(p, s);
        }
        i.addPixmap(pm);
    }
    return i;
}

// Pixmaps need a QGuiApplication; a model used from a console program simply has no icon.
bool canPaint()
{
    return qobject_cast<QGuiApplication *>(QCoreApplication::instance()) != nullptr;
}

} // namespace

QIcon nonFinite()
{
    if (!canPaint())
        return {};
    static const QIcon icon = paintedIcon(&paintNonFinite);
    return icon;
}

QIcon danger()
{
    if (!canPaint())
        return {};
    static const QIcon icon = paintedIcon(&paintDanger);
    return icon;
}

QIcon compare()
{
    if (!canPaint())
        return {};
    static const QIcon icon = paintedIcon(&paintCompare);
    return icon;
}

QIcon warning()
{
    if (!canPaint())
        return {};
    static const QIcon icon = paintedIcon(&paintWarning);
    return icon;
}

} // namespace ckpt::itemicons
