// checkpoint-studio's command line, run as a process: a wrong view name, a tensor that is not
// there, and --screenshot without a file each say so (or finish) rather than print the help,
// stay silent, or never exit.
#include <QFileInfo>
#include <QImage>
#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QTest>

namespace {

QString fixture(const char *name)
{
    return QStringLiteral(CKPT_FIXTURES_DIR "/") + QLatin1String(name);
}

struct Run {
    bool finished = false;
    int exitCode = -1;
    QString out;
    QString err;
};

// Runs the program offscreen with its settings in `home`, for at most `timeoutMs`.
Run studio(const QStringList &arguments, const QString &home, int timeoutMs = 60000)
{
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    env.insert(QStringLiteral("XDG_CONFIG_HOME"), home);  // recent files and layout stay out of the user's
    p.setProcessEnvironment(env);
    p.start(QStringLiteral(CKPT_BIN_DIR "/checkpoint-studio"), arguments);
    Run r;
    if (!p.waitForStarted(10000))
        return r;
    r.finished = p.waitForFinished(timeoutMs);
    if (!r.finished) {
        p.kill();
        p.waitForFinished(5000);
    }
    r.exitCode = p.exitCode();
    r.out = QString::fromLocal8Bit(p.readAllStandardOutput());
    r.err = QString::fromLocal8Bit(p.readAllStandardError());
    return r;
}

} // namespace

class TestCommandLine : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void unknownViewSaysSo();
    void missingTensorIsReported();
    void screenshotWithoutFileExits();
    void screenshotOfAView();

private:
    QTemporaryDir m_home;
};

void TestCommandLine::unknownViewSaysSo()
{
    const Run r = studio({QStringLiteral("--view"), QStringLiteral("optimiser"), fixture("training_checkpoint.pth")},
                         m_home.path());
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains(QStringLiteral("unknown view 'optimiser'")), qPrintable(r.err));
    QVERIFY2(r.err.contains(QStringLiteral("optimizer")), qPrintable(r.err));  // the names it takes
    QVERIFY2(!(r.out + r.err).contains(QStringLiteral("--screenshot")), "the whole help was printed");
}

void TestCommandLine::missingTensorIsReported()
{
    QTemporaryDir out;
    const QString png = out.filePath(QStringLiteral("select.png"));
    const Run r = studio({QStringLiteral("--select"), QStringLiteral("nope"), QStringLiteral("--screenshot"), png,
                          fixture("training_checkpoint.pth")},
                         m_home.path());
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    QVERIFY2(r.err.contains(QStringLiteral("No tensor named 'nope' in training_checkpoint.pth")), qPrintable(r.err));
    QVERIFY(QFileInfo::exists(png));

    // A tensor that is there: nothing said.
    const Run ok = studio({QStringLiteral("--select"), QStringLiteral("fc2.bias"), QStringLiteral("--screenshot"), png,
                           fixture("training_checkpoint.pth")},
                          m_home.path());
    QVERIFY(ok.finished);
    QCOMPARE(ok.exitCode, 0);
    QVERIFY2(!ok.err.contains(QStringLiteral("No tensor")), qPrintable(ok.err));
}

void TestCommandLine::screenshotWithoutFileExits()
{
    QTemporaryDir out;
    const QString png = out.filePath(QStringLiteral("empty.png"));
    const Run r = studio({QStringLiteral("--screenshot"), png}, m_home.path(), 30000);
    QVERIFY2(r.finished, "--screenshot without a file never exited");
    QCOMPARE(r.exitCode, 0);
    QImage image(png);
    QVERIFY(!image.isNull());
    QVERIFY(image.width() > 100 && image.height() > 100);
}

void TestCommandLine::screenshotOfAView()
{
    QTemporaryDir out;
    const QString png = out.filePath(QStringLiteral("security.png"));
    const Run r = studio({QStringLiteral("--view"), QStringLiteral("security"), QStringLiteral("--screenshot"), png,
                          fixture("os_system.pth")},
                         m_home.path());
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    QVERIFY(!QImage(png).isNull());
}

QTEST_GUILESS_MAIN(TestCommandLine)
#include "tst_commandline.moc"
