// checkpoint-studio: opens the files named on the command line, each in a tab.
#include "documentview.h"
#include "mainwindow.h"
#include "whensettled.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QTreeView>

#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace {

// Milliseconds since the process started (the kernel's start time), so that timings include
// loading the program and its libraries.
double msSinceProcessStart()
{
    QFile stat(QStringLiteral("/proc/self/stat"));
    timespec now{};
    if (!stat.open(QIODevice::ReadOnly) || clock_gettime(CLOCK_BOOTTIME, &now) != 0)
        return -1;
    const QByteArray text = stat.readAll();
    // Field 22 (starttime, in clock ticks since boot) comes after the command name in parentheses.
    const QList<QByteArray> fields = text.mid(text.lastIndexOf(')') + 2).split(' ');
    if (fields.size() < 20)
        return -1;
    const double start = fields[19].toDouble() / static_cast<double>(sysconf(_SC_CLK_TCK));
    return (static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9 - start) * 1000.0;
}

// CKPT_TIMINGS=1: prints "ckpt-timing loaded=MS" (the file read and the views filled),
// "ckpt-timing tree=MS" (its tree first painted), "ckpt-timing statistics=MS" (since the process
// started) and "ckpt-timing max-stall=MS" (the longest the event loop went without running a 10 ms
// timer while statistics were computed) on stderr; CKPT_QUIT_WHEN_IDLE=1 quits once statistics are
// done. bench/run.py reads these lines.
void instrument(ckpt::DocumentView *view)
{
    const bool quit = qEnvironmentVariableIntValue("CKPT_QUIT_WHEN_IDLE") == 1;
    auto *ticker = new QTimer(view);
    ticker->setInterval(10);
    auto *clock = new QElapsedTimer;
    auto maxStall = std::make_shared<qint64>(0);
    QObject::connect(ticker, &QTimer::timeout, view, [clock, maxStall] {
        const qint64 gap = clock->restart();
        *maxStall = std::max(*maxStall, gap);
        if (gap > 100)
            std::fprintf(stderr, "ckpt-timing stall=%lld at=%.0f\n", static_cast<long long>(gap), msSinceProcessStart());
    });
    // "tree" is when the tree of the read file was first painted, not when it was filled.
    struct FirstPaint : QObject {
        using QObject::QObject;
        bool eventFilter(QObject *watched, QEvent *event) override
        {
            if (event->type() == QEvent::Paint) {
                std::fprintf(stderr, "ckpt-timing tree=%.0f\n", msSinceProcessStart());
                watched->removeEventFilter(this);
                deleteLater();
            }
            return false;
        }
    };
    QObject::connect(view, &ckpt::DocumentView::loaded, view, [view, ticker, clock] {
        std::fprintf(stderr, "ckpt-timing loaded=%.0f\n", msSinceProcessStart());
        view->treeView()->viewport()->installEventFilter(new FirstPaint(view));
        clock->start();
        ticker->start();
    });
    QObject::connect(view, &ckpt::DocumentView::failed, view, [quit](const QString &message) {
        std::fprintf(stderr, "ckpt-timing failed: %s\n", qPrintable(message));
        if (quit)
            QCoreApplication::exit(1);
    });
    QObject::connect(view, &ckpt::DocumentView::statisticsFinished, view, [ticker, clock, maxStall, quit](bool complete) {
        ticker->stop();
        std::fprintf(stderr, "ckpt-timing statistics=%.0f\nckpt-timing max-stall=%lld\n", msSinceProcessStart(),
                     static_cast<long long>(*maxStall));
        std::fprintf(stderr, "ckpt-timing statistics-complete=%d\n", complete ? 1 : 0);
        delete clock;
        if (quit)
            QCoreApplication::exit(0);
    });
}

} // namespace

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("Checkpoint Studio"));
    QApplication::setOrganizationName(QStringLiteral("Checkpoint Studio"));
    QApplication::setApplicationVersion(QStringLiteral(CKPT_VERSION));
    QGuiApplication::setDesktopFileName(QStringLiteral("checkpoint-studio"));

    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Inspect PyTorch checkpoints without Python; nothing in a file is ever run."));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("FILE"), QStringLiteral("Checkpoints to open, each in a tab."),
                                 QStringLiteral("[FILE...]"));
    const QStringList viewNames{QStringLiteral("tensors"), QStringLiteral("modules"), QStringLiteral("optimizer"),
                                QStringLiteral("metadata"), QStringLiteral("security"), QStringLiteral("predict")};
    QCommandLineOption viewOption(QStringLiteral("view"),
                                  QStringLiteral("Show this view of the last file: %1.").arg(viewNames.join(QStringLiteral(", "))),
                                  QStringLiteral("NAME"));
    QCommandLineOption selectOption(QStringLiteral("select"), QStringLiteral("Select this tensor of the last file."),
                                    QStringLiteral("KEY"));
    QCommandLineOption screenshotOption(QStringLiteral("screenshot"),
                                        QStringLiteral("Save a picture of the window to PNG once the last file is read "
                                                       "and its statistics (if any) are computed, then quit."),
                                        QStringLiteral("PNG"));
    parser.addOption(viewOption);
    parser.addOption(selectOption);
    parser.addOption(screenshotOption);
    parser.process(app);
    const int view = parser.isSet(viewOption) ? static_cast<int>(viewNames.indexOf(parser.value(viewOption).toLower())) : -1;
    if (parser.isSet(viewOption) && view < 0) {
        // One line that says what is wrong, not the whole help.
        std::fprintf(stderr, "checkpoint-studio: unknown view '%s' (views: %s)\n", qPrintable(parser.value(viewOption)),
                     qPrintable(viewNames.join(QStringLiteral(", "))));
        return 2;
    }
    const QStringList files = parser.positionalArguments();
    if (files.isEmpty())
        for (const QCommandLineOption *option : {&viewOption, &selectOption})
            if (parser.isSet(*option))
                std::fprintf(stderr, "checkpoint-studio: --%s applies to the last FILE, and none was given\n",
                             qPrintable(option->names().constFirst()));

    ckpt::MainWindow window;
    window.show();
    ckpt::DocumentView *last = window.openFiles(files);
    if (last && qEnvironmentVariableIntValue("CKPT_TIMINGS") == 1)
        instrument(last);
    auto showWanted = [&window, last, view, key = parser.value(selectOption)] {
        if (view >= 0)
            last->viewTabs()->setCurrentIndex(view);
        if (key.isEmpty() || last->selectTensor(key))
            return;
        // Said where it is seen: the first tensor stays shown, which is not the one asked for.
        const QString message = QCoreApplication::translate("main", "No tensor named '%1' in %2")
                                    .arg(key, QFileInfo(last->path()).fileName());
        std::fprintf(stderr, "checkpoint-studio: %s\n", qPrintable(message));
        window.statusBar()->showMessage(message);
    };
    if (last && (view >= 0 || parser.isSet(selectOption)))
        QObject::connect(last, &ckpt::DocumentView::loaded, last, showWanted);
    if (parser.isSet(screenshotOption)) {
        const QString png = parser.value(screenshotOption);
        auto shoot = [&window, png] {
            // Let the last results and charts paint first.
            QTimer::singleShot(800, &window, [&window, png] {
                const bool ok = window.grab().save(png);
                std::fprintf(stderr, ok ? "saved %s\n" : "could not save %s\n", qPrintable(png));
                QCoreApplication::exit(ok ? 0 : 1);
            });
        };
        // As soon as nothing is left to wait for: a file without tensors computes no statistics;
        // without a file, the empty window.
        if (last)
            ckpt::whenSettled(last, &window, shoot);
        else
            shoot();
    }
    return QApplication::exec();
}
