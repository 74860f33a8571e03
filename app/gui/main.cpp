// checkpoint-studio: opens the files named on the command line, each in a tab.
#include "mainwindow.h"

#include <QApplication>
#include <QCommandLineParser>

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
    parser.process(app);

    ckpt::MainWindow window;
    window.show();
    window.openFiles(parser.positionalArguments());
    return QApplication::exec();
}
