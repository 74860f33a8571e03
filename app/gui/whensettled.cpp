#include "whensettled.h"

#include "documentview.h"

#include <QTimer>

#include <memory>
#include <utility>

namespace ckpt {

void whenSettled(DocumentView *view, QObject *context, std::function<void()> done)
{
    auto fired = std::make_shared<bool>(false);
    auto fire = [fired, done = std::move(done)] {
        if (std::exchange(*fired, true))
            return;
        done();
    };
    QObject::connect(view, &DocumentView::statisticsFinished, context, fire);
    QObject::connect(view, &DocumentView::failed, context, fire);
    // loaded() comes after the statistics were started; a file without tensors starts none, and
    // no statisticsFinished() follows.
    QObject::connect(view, &DocumentView::loaded, context, [view, fire] {
        if (!view->statisticsRunning())
            fire();
    });
    // Already settled (read before the call): nothing more will be emitted.
    if ((view->state() == DocumentView::State::Loaded && !view->statisticsRunning()) ||
        view->state() == DocumentView::State::Failed)
        QTimer::singleShot(0, context, fire);
}

} // namespace ckpt
