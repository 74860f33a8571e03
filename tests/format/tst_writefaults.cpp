// Failure injection for writeFileAtomically: a child process writes a file under the fault shim
// (faultshim.c, LD_PRELOAD), which makes one step fail as a full disk, a read-only folder, a
// failing device or a crash would. Afterwards the folder must hold either the complete new file
// or what it held before under the final name - never a partial file - and, unless the process
// was killed, nothing else. A killed writer can leave only its hidden temporary file behind.
// The same faults hit `ckpt export`, the program that writes through this writer, and a device
// that silently writes other bytes than it was given must be caught by `ckpt convert`'s reading
// back: nothing under the final name, and the reason said.
// `ckpt convert --force` that writes a set of files (shards and their index, a model and its
// sidecar) over a previous set renames them together: a rename or a backup link that fails, or a
// signal landing anywhere in the commit, leaves the previous set byte for byte and nothing else; a
// signal after the last rename leaves the whole new set. On a file system without hard links
// (vfat, exFAT: link answers EPERM) the previous files are moved aside instead, with the same
// guarantees. A signal another thread takes (LibTorch's pool threads once --merge-lora loaded it)
// waits until the set is settled, also where the paths are too long for the handler's table; a
// previous file the handler cannot put back is named with the backup that keeps it; a temporary
// removed by someone else mid-commit leaves no backup behind.
#include <QtTest>

#include <QRegularExpression>

#include <csignal>

namespace {
constexpr int kSize = 256 * 1024;  // several writes' worth, so faults can strike mid-file

QByteArray pattern(int size, unsigned seed)
{
    QByteArray b(size, Qt::Uninitialized);
    for (int i = 0; i < size; ++i)
        b[i] = static_cast<char>(static_cast<unsigned>(i) * 7 + seed);
    return b;
}

QByteArray readAll(const QString &path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

// Runs a child under the fault shim with CKPT_FAULT=`spec`, noting in `log` when it strikes.
void underFault(QProcessEnvironment &env, const QString &spec, const QString &log)
{
    env.insert("LD_PRELOAD", QStringLiteral(CKPT_FAULTSHIM));
    env.insert("CKPT_FAULT", spec);
    env.insert("CKPT_FAULT_LOG", log);
    // Under AddressSanitizer the shim comes before the ASan runtime in the library list; the shim
    // calls through to ASan's interceptors, so that order is safe.
    env.insert("ASAN_OPTIONS", env.value("ASAN_OPTIONS") + ":verify_asan_link_order=0");
}

// Where the data of the zip record `name` starts in `zip` (from its local header); -1 when absent.
qint64 recordDataOffset(const QByteArray &zip, const QByteArray &name)
{
    for (qsizetype at = zip.indexOf(name); at >= 30; at = zip.indexOf(name, at + 1)) {
        const qsizetype h = at - 30;
        auto le16 = [&](qsizetype i) { return static_cast<quint8>(zip[i]) | static_cast<quint8>(zip[i + 1]) << 8; };
        if (zip.mid(h, 4) == QByteArray("PK\x03\x04", 4) && le16(h + 26) == name.size())
            return h + 30 + le16(h + 26) + le16(h + 28);
    }
    return -1;
}
} // namespace

class TestWriteFaults : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void fault_data();
    void fault();
    void corruptionCaughtByReadingBack_data();
    void corruptionCaughtByReadingBack();
    void setReplacedTogether_data();
    void setReplacedTogether();
    void nameTakenMeanwhileIsKept_data();
    void nameTakenMeanwhileIsKept();
};

void TestWriteFaults::fault_data()
{
    QTest::addColumn<QString>("spec");        // CKPT_FAULT
    QTest::addColumn<bool>("existing");       // the target held an older file before
    QTest::addColumn<QString>("outcome");     // "new", "error" or "killed"
    QTest::addColumn<QString>("message");     // what the error says (system reason)
    QTest::addColumn<bool>("cli");            // written by `ckpt export` instead of the small child

    struct Row {
        const char *name, *spec, *outcome, *message;
    };
    const Row rows[] = {
        {"no fault", "", "new", ""},
        {"short writes", "write:short:after=1000", "new", ""},
        {"disk full at once", "write:ENOSPC", "error", "No space left on device"},
        {"disk full mid-file", "write:ENOSPC:after=4096", "error", "No space left on device"},
        {"quota mid-file", "write:EDQUOT:after=100000", "error", "quota exceeded"},
        {"device error on write", "write:EIO:after=65536", "error", "Input/output error"},
        {"read-only folder", "create:EACCES", "error", "Permission denied"},
        {"read-only file system", "create:EROFS", "error", "Read-only file system"},
        {"fsync fails", "fsync:EIO", "error", "Input/output error"},
        {"rename refused", "rename:EACCES", "error", "Permission denied"},
        {"rename across devices", "rename:EXDEV", "error", "Invalid cross-device link"},
        {"crash mid-write", "write:kill:after=4096", "killed", ""},
        {"crash before fsync", "fsync:kill", "killed", ""},
        {"crash between write and rename", "rename:kill", "killed", ""},
    };
    for (const auto &r : rows)
        for (const bool existing : {false, true})
            QTest::newRow(qPrintable(QString::fromLatin1(r.name) + (existing ? ", over an older file" : ", new file")))
                << QString::fromLatin1(r.spec) << existing << QString::fromLatin1(r.outcome)
                << QString::fromLatin1(r.message) << false;
    // The real program: `ckpt export` writes a 2128-byte .npy through the same writer.
    const Row cliRows[] = {
        {"ckpt export", "", "new", ""},
        {"ckpt export, disk full mid-file", "write:ENOSPC:after=1024", "error", "No space left on device"},
        {"ckpt export, read-only folder", "create:EACCES", "error", "Permission denied"},
        {"ckpt export, crash between write and rename", "rename:kill", "killed", ""},
    };
    for (const auto &r : cliRows)
        QTest::newRow(qPrintable(QString::fromLatin1(r.name) + ", over an older file"))
            << QString::fromLatin1(r.spec) << true << QString::fromLatin1(r.outcome) << QString::fromLatin1(r.message)
            << true;
}

void TestWriteFaults::fault()
{
    QFETCH(QString, spec);
    QFETCH(bool, existing);
    QFETCH(QString, outcome);
    QFETCH(QString, message);
    QFETCH(bool, cli);

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString folder = dir.filePath("out");
    QVERIFY(QDir().mkpath(folder));
    const QString target = folder + "/weights.npy";
    const QByteArray before = pattern(kSize / 2 + 13, 1);
    if (existing) {
        QFile f(target);
        QVERIFY(f.open(QIODevice::WriteOnly));
        QCOMPARE(f.write(before), before.size());
    }
    const QString log = dir.filePath("fault.log");

    QProcess child;
    auto env = QProcessEnvironment::systemEnvironment();
    if (!spec.isEmpty())
        underFault(env, spec, log);
    child.setProcessEnvironment(env);
    const QString model = dir.filePath("model.pth");
    QByteArray expected = pattern(kSize, 2);
    if (cli) {
        // What the same export writes without a fault, for comparison.
        QVERIFY(QFile::copy(QStringLiteral(CKPT_EXAMPLES_DIR "/simple_nn_checkpoint.pth"), model));
        const QString reference = dir.filePath("reference.npy");
        QProcess plain;
        plain.start(QStringLiteral(CKPT_BIN_DIR "/ckpt"), {"export", model, "fc1.weight", "-o", reference});
        QVERIFY(plain.waitForFinished(120000));
        QCOMPARE(plain.exitCode(), 0);
        expected = readAll(reference);
        QCOMPARE(expected.size(), 2128);
        child.start(QStringLiteral(CKPT_BIN_DIR "/ckpt"), {"export", model, "fc1.weight", "-o", target, "--force"});
    } else {
        child.start(QStringLiteral(CKPT_WRITEFAULTS_CHILD), {target, QString::number(kSize), QStringLiteral("2")});
    }
    QVERIFY(child.waitForFinished(120000));
    const QString err = QString::fromLocal8Bit(child.readAllStandardError());

    if (!spec.isEmpty())
        QVERIFY2(readAll(log).startsWith("fired "), qPrintable("the fault never struck; writer said: " + err));

    if (outcome == "killed") {
        QCOMPARE(child.exitStatus(), QProcess::CrashExit);
    } else {
        QCOMPARE(child.exitStatus(), QProcess::NormalExit);
        QCOMPARE(child.exitCode(), outcome == "new" ? 0 : 1);
        if (outcome == "error") {
            QVERIFY2(err.contains(target), qPrintable(err));
            QVERIFY2(err.contains(message, Qt::CaseInsensitive), qPrintable(err));
        }
    }

    // The final name: the complete new file, or exactly what was there before.
    const QByteArray after = readAll(target);
    if (outcome == "new")
        QVERIFY(after == expected);
    else if (existing)
        QVERIFY2(after == before, qPrintable(QString("target holds %1 bytes, not the older file").arg(after.size())));
    else
        QVERIFY2(!QFileInfo::exists(target), "a failed write left a file under the final name");

    // Nothing else, except the hidden temporary file of a writer that was killed.
    const auto entries = QDir(folder).entryList(QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot);
    for (const auto &name : entries) {
        if (name == "weights.npy")
            continue;
        QVERIFY2(outcome == "killed", qPrintable("stray file left behind: " + name));
        QVERIFY2(name.startsWith('.') && name.contains("weights.npy"),
                 qPrintable("a killed writer left a visible file: " + name));
    }
}

void TestWriteFaults::corruptionCaughtByReadingBack_data()
{
    QTest::addColumn<QByteArray>("record");      // the record a byte of is flipped on its way to disk
    QTest::addColumn<QStringList>("options");
    QTest::addColumn<QString>("message");
    QTest::newRow("a storage written as it is (compared byte for byte)") << QByteArray("data/0") << QStringList()
                                                                         << "reads back different";
    QTest::newRow("a storage cast to float16 (compared by CRC)")
        << QByteArray("data/0") << QStringList{"--dtype", "float16"} << "reads back different";
    QTest::newRow("the pickle") << QByteArray("data.pkl") << QStringList() << "";
}

void TestWriteFaults::corruptionCaughtByReadingBack()
{
    QFETCH(QByteArray, record);
    QFETCH(QStringList, options);
    QFETCH(QString, message);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString model = dir.filePath("model.pth");
    QVERIFY(QFile::copy(QStringLiteral(CKPT_EXAMPLES_DIR "/simple_nn_checkpoint.pth"), model));
    const QString folder = dir.filePath("out");
    QVERIFY(QDir().mkpath(folder));
    // The same conversion without a fault says where the record's bytes lie in the file.
    const QString reference = dir.filePath("reference.pth");
    QProcess plain;
    plain.start(QStringLiteral(CKPT_BIN_DIR "/ckpt"), QStringList{"convert", model, "--to", "state-dict", "-o", reference} + options);
    QVERIFY(plain.waitForFinished(120000));
    QCOMPARE(plain.exitCode(), 0);
    const qint64 at = recordDataOffset(readAll(reference), "archive/" + record);
    QVERIFY2(at > 0, record.constData());

    const QString target = folder + "/converted.pth";
    const QString log = dir.filePath("fault.log");
    QProcess child;
    auto env = QProcessEnvironment::systemEnvironment();
    underFault(env, QStringLiteral("write:corrupt:after=%1").arg(at + 10), log);
    child.setProcessEnvironment(env);
    child.start(QStringLiteral(CKPT_BIN_DIR "/ckpt"), QStringList{"convert", model, "--to", "state-dict", "-o", target} + options);
    QVERIFY(child.waitForFinished(120000));
    const QString err = QString::fromLocal8Bit(child.readAllStandardError());
    QVERIFY2(readAll(log).startsWith("fired write corrupt"), qPrintable("the fault never struck: " + err));
    QCOMPARE(child.exitStatus(), QProcess::NormalExit);
    QCOMPARE(child.exitCode(), 1);
    QVERIFY2(err.contains("converted.pth"), qPrintable(err));
    if (!message.isEmpty())
        QVERIFY2(err.contains(message), qPrintable(err));
    // Nothing under the final name, and no temporary file left.
    const auto entries = QDir(folder).entryList(QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot);
    QVERIFY2(entries.isEmpty(), qPrintable(entries.join(", ")));
}

// The sets: 4 safetensors shards of simple_nn's 4 tensors (each over 100 bytes but the last, which
// has a shard of its own as well) and the index; a state dict and its _metadata.json sidecar. The
// previous set holds every name of the new one but the second (a name that had no file), so the
// commit links kPrevious[set] previous files and renames kFiles[set] new ones.
namespace {
const QStringList kShardArgs{"--to", "safetensors", "--max-shard-size", "100", "-o", "OUT/model.safetensors"};
const QStringList kSidecarArgs{"--to", "state-dict", "--metadata-json", "-o", "OUT/model.pth"};
} // namespace

void TestWriteFaults::setReplacedTogether_data()
{
    QTest::addColumn<QStringList>("args");   // convert's options, OUT the output folder
    QTest::addColumn<int>("files");          // files the set has
    QTest::addColumn<QString>("spec");       // CKPT_FAULT
    QTest::addColumn<QString>("outcome");    // "new", "old" (exit 1), "old-taken" (exit 1, the previous set
                                             // and the file another program made at the second name), or
                                             // "old-signal"/"new-signal" (ended by it),
                                             // "mixed-signal": ended by it, each previous file in place
                                             // or in the backup the message names
    QTest::addColumn<QString>("message");    // what stderr says
    QTest::addColumn<QString>("noLink");     // CKPT_NO_HARDLINKS: every link fails so; empty: links work
    QTest::addColumn<bool>("deep");          // the output folder so deep that the longest path is 4083
                                             // characters: too long for the signal handler's table

    struct Set {
        const char *name;
        QStringList args;
        int files;
    };
    const Set sets[] = {{"shards", kShardArgs, 5}, {"model and sidecar", kSidecarArgs, 2}};
    for (const auto &set : sets) {
        const QString name = QString::fromLatin1(set.name);
        auto row = [&](const QString &what, const QString &spec, const char *outcome, const char *message,
                       const QString &noLink = {}, bool deep = false) {
            QTest::newRow(qPrintable(name + ": " + what)) << set.args << set.files << spec << QString::fromLatin1(outcome)
                                                           << QString::fromLatin1(message) << noLink << deep;
        };
        row("no fault", "", "new", "");
        for (int k = 0; k < set.files; ++k) {
            row(QStringLiteral("rename %1 of %2 fails").arg(k + 1).arg(set.files),
                QStringLiteral("rename:EACCES:after=%1:once").arg(k), "old", "Permission denied");
            row(QStringLiteral("SIGTERM at rename %1 of %2").arg(k + 1).arg(set.files),
                QStringLiteral("rename:SIGTERM:after=%1").arg(k), "old-signal",
                "interrupted: what was being written is removed");
        }
        const int previous = set.files == 2 ? 2 : set.files - 1;
        // A refusal that is not "no hard links here" refuses the whole set.
        row("the first backup link fails", "link:EACCES:once", "old", "cannot keep the previous file aside");
        row("the last backup link fails", QStringLiteral("link:EACCES:after=%1:once").arg(previous - 1), "old",
            "cannot keep the previous file aside");
        row("SIGINT at the last backup link", QStringLiteral("link:SIGINT:after=%1").arg(previous - 1), "old-signal",
            "interrupted: what was being written is removed");
        // The first unlink of the run removes the first backup: every file has its name by then.
        row("SIGINT after every rename", "unlink:SIGINT", "new-signal", "files written had all taken their names");

        // No hard links: each previous file is moved aside (a rename), then the new ones renamed in,
        // so the commit makes previous + files renames.
        for (const char *e : {"EPERM", "EOPNOTSUPP", "ENOSYS", "EMLINK"})
            row(QStringLiteral("no hard links (%1)").arg(e), "", "new", "", QString::fromLatin1(e));
        const QString noLink = QStringLiteral("EPERM");
        const int renames = previous + set.files;
        for (int k = 0; k < renames; ++k) {
            const QString which = k < previous ? QStringLiteral("moving previous file %1 of %2 aside").arg(k + 1).arg(previous)
                                               : QStringLiteral("rename %1 of %2").arg(k - previous + 1).arg(set.files);
            row("no hard links, " + which + " fails", QStringLiteral("rename:EACCES:after=%1:once").arg(k), "old",
                "Permission denied", noLink);
            row("no hard links, SIGTERM at " + which, QStringLiteral("rename:SIGTERM:after=%1").arg(k), "old-signal",
                "interrupted: what was being written is removed", noLink);
        }
        row("no hard links, SIGINT after every rename", "unlink:SIGINT", "new-signal",
            "files written had all taken their names", noLink);

        // A signal another thread takes (one that does not block it) while this one renames: the
        // commit goes on to the end, then the signal ends the run with the new set whole.
        const char *kept = "files written had all taken their names";
        row("SIGTERM in another thread at rename 2", "rename:SIGTERM:after=1:thread", "new-signal", kept);
        row("paths too long for the handler's table, SIGTERM in another thread at rename 2",
            "rename:SIGTERM:after=1:thread", "new-signal", kept, {}, true);
        row(QStringLiteral("paths too long for the handler's table, SIGINT in another thread at rename %1 of %1").arg(set.files),
            QStringLiteral("rename:SIGINT:after=%1:thread").arg(set.files - 1), "new-signal", kept, {}, true);
        row("no hard links, paths too long for the handler's table, SIGTERM in another thread at moving previous file 1 aside",
            "rename:SIGTERM:thread", "new-signal", kept, noLink, true);
        // The paths too long, a signal in the committing thread itself waits as well.
        row("paths too long for the handler's table, SIGTERM at rename 2", "rename:SIGTERM:after=1", "new-signal", kept,
            {}, true);
        // Putting back fails (every rename after the signal answers EIO): the message names each
        // previous file not put back and the backup that keeps it.
        row(QStringLiteral("SIGTERM at rename %1 of %1, putting back fails").arg(set.files),
            QStringLiteral("rename:SIGTERM:after=%1:then=EIO").arg(set.files - 1), "mixed-signal",
            "could not be put back");
        row("no hard links, SIGTERM at rename 2, putting back fails",
            QStringLiteral("rename:SIGTERM:after=%1:then=EIO").arg(previous + 1), "mixed-signal",
            "could not be put back", noLink);
        // A name the previous set does not have (the second shard's) taken by another program's
        // file while the set is written: refused, not replaced (no second name would put it back),
        // and the previous set is put back beside it.
        if (set.files > 2) {
            row("rename 2 of 5, its name taken by someone else meanwhile", "rename:taken:after=1:once", "old-taken",
                "a file of that name appeared while this one was written; it is kept");
            // Without hard links the first previous file was moved aside, its name left empty: a file
            // made there meanwhile is neither replaced by the new one nor by the previous one put
            // back, which stays in its backup, named.
            row("no hard links, rename 1 of 5, its emptied name taken by someone else meanwhile",
                QStringLiteral("rename:taken:after=%1:once").arg(previous), "moved-taken",
                "a file of that name appeared meanwhile, and is kept): it is kept as ", noLink);
            // The same taken name as a signal lands there: the handler does not put the previous
            // file over it either.
            row("no hard links, SIGTERM at rename 1 of 5, its emptied name taken by someone else meanwhile",
                QStringLiteral("rename:SIGTERM:after=%1:taken").arg(previous), "mixed-signal",
                "could not be put back", noLink);
        }
        // A temporary removed by someone else just before its rename: the target still holds the
        // previous file, and its backup (a second name) must go too.
        for (int k = 0; k < set.files; ++k)
            row(QStringLiteral("SIGTERM at rename %1 of %2, its temporary removed by someone else").arg(k + 1).arg(set.files),
                QStringLiteral("rename:SIGTERM:after=%1:gone").arg(k), "old-signal",
                "interrupted: what was being written is removed");
    }
}

void TestWriteFaults::setReplacedTogether()
{
    QFETCH(QStringList, args);
    QFETCH(int, files);
    QFETCH(QString, spec);
    QFETCH(QString, outcome);
    QFETCH(QString, message);
    QFETCH(QString, noLink);
    QFETCH(bool, deep);

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString model = dir.filePath("model.pth");
    QVERIFY(QFile::copy(QStringLiteral(CKPT_EXAMPLES_DIR "/simple_nn_checkpoint.pth"), model));
    const auto withOut = [&](const QString &folder) {
        QStringList a{"convert", model};
        for (const auto &x : args)
            a << QString(x).replace("OUT", folder);
        return a;
    };
    const auto listing = [](const QString &folder) {
        auto l = QDir(folder).entryList(QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot);
        l.sort();  // as a QMap orders its keys
        return l;
    };
    // The new set, written without a fault.
    const QString reference = dir.filePath("reference");
    QVERIFY(QDir().mkpath(reference));
    QProcess plain;
    plain.start(QStringLiteral(CKPT_BIN_DIR "/ckpt"), withOut(reference));
    QVERIFY(plain.waitForFinished(120000));
    QVERIFY2(plain.exitCode() == 0, plain.readAllStandardError().constData());
    const QStringList names = listing(reference);
    QCOMPARE(names.size(), files);

    // The previous set: other bytes under every name but the second.
    QString folder = dir.filePath("out");
    if (deep) {
        qsizetype longest = 0;
        for (const auto &n : names)
            longest = std::max(longest, n.size());
        const qsizetype length = 4083 - 1 - longest;  // a backup's name (12 more) still fits PATH_MAX
        // Folders of at most 200 characters, the last of at least one.
        for (qsizetype left = length - folder.size(); left > 0; left = length - folder.size())
            folder += "/" + QString(left <= 201 ? left - 1 : std::min<qsizetype>(200, left - 3), 'd');
        QCOMPARE(folder.size(), length);
    }
    QVERIFY(QDir().mkpath(folder));
    QMap<QString, QByteArray> before;
    for (int i = 0; i < names.size(); ++i) {
        if (i == 1 && names.size() > 2)
            continue;
        before[names[i]] = pattern(1000 + 37 * i, 10 + i);
        QFile f(folder + "/" + names[i]);
        QVERIFY(f.open(QIODevice::WriteOnly));
        QCOMPARE(f.write(before[names[i]]), before[names[i]].size());
    }

    const QString log = dir.filePath("fault.log");
    QProcess child;
    auto env = QProcessEnvironment::systemEnvironment();
    if (!spec.isEmpty() || !noLink.isEmpty())
        underFault(env, spec, log);
    if (!noLink.isEmpty())
        env.insert("CKPT_NO_HARDLINKS", noLink);
    child.setProcessEnvironment(env);
    // As from a terminal: a signal the test runner inherited as ignored would stay ignored in ckpt.
    child.setChildProcessModifier([] {
        for (const int sig : {SIGINT, SIGTERM, SIGHUP})
            ::signal(sig, SIG_DFL);
    });
    child.start(QStringLiteral(CKPT_BIN_DIR "/ckpt"), withOut(folder) << "--force");
    QVERIFY(child.waitForFinished(120000));
    const QString err = QString::fromLocal8Bit(child.readAllStandardError());
    const QByteArray faults = readAll(log);
    if (!spec.isEmpty())
        QVERIFY2(faults.startsWith("fired ") || faults.contains("\nfired "),
                 qPrintable("the fault never struck; ckpt said: " + err));
    if (!noLink.isEmpty())
        QVERIFY2(faults.startsWith("no hard link "), qPrintable("no link was refused; ckpt said: " + err));
    if (outcome.endsWith("-signal")) {
        QVERIFY2(child.exitStatus() == QProcess::CrashExit, qPrintable("not ended by the signal: " + err));
    } else {
        QCOMPARE(child.exitStatus(), QProcess::NormalExit);
        QVERIFY2(child.exitCode() == (outcome == "new" ? 0 : 1), qPrintable(err));
    }
    if (!message.isEmpty())
        QVERIFY2(err.contains(message), qPrintable(err));

    // Exactly the previous set, byte for byte, or exactly the new one: no temporary, no backup.
    if (outcome == "mixed-signal") {
        // Each previous file under its name, or in the backup the message names for it; those
        // backups, and names of the new set, are all the folder holds.
        QVERIFY2(!err.contains("holds what it held, under its own name"), qPrintable(err));
        QMap<QString, QString> keptAs;
        static const QRegularExpression notBack(QStringLiteral("the previous (\\S+) could not be put back: it is kept as (\\S+)"));
        for (auto it = notBack.globalMatch(err); it.hasNext();) {
            const auto m = it.next();
            keptAs[QFileInfo(m.captured(1)).fileName()] = QFileInfo(m.captured(2)).fileName();
        }
        QVERIFY2(!keptAs.isEmpty(), qPrintable(err));
        if (spec.endsWith(QLatin1String(":taken")))  // that file is kept, under the name it took
            QCOMPARE(readAll(folder + "/" + names[0]), QByteArray("taken\n"));
        QStringList expected = names;
        for (auto it = before.cbegin(); it != before.cend(); ++it) {
            if (keptAs.contains(it.key())) {
                QVERIFY2(readAll(folder + "/" + keptAs[it.key()]) == it.value(), qPrintable(keptAs[it.key()]));
                expected << keptAs[it.key()];
            } else {
                QVERIFY2(readAll(folder + "/" + it.key()) == it.value(), qPrintable(it.key() + " is not the previous file"));
            }
        }
        for (const auto &n : listing(folder))
            QVERIFY2(expected.contains(n), qPrintable("stray file left behind: " + n));
    } else if (outcome == "moved-taken") {
        // The first name holds the other program's file; its previous file is in the backup the
        // message names; every other previous file is back under its name.
        static const QRegularExpression keptAs(QStringLiteral("it is kept as (\\S+)"));
        const auto m = keptAs.match(err);
        QVERIFY2(m.hasMatch(), qPrintable(err));
        const QString backup = QFileInfo(m.captured(1)).fileName();
        QCOMPARE(readAll(folder + "/" + names[0]), QByteArray("taken\n"));
        QVERIFY2(readAll(folder + "/" + backup) == before.value(names[0]), qPrintable(backup));
        QStringList expected = before.keys();
        expected << backup;
        expected.sort();
        QCOMPARE(listing(folder), expected);
        for (auto it = before.cbegin(); it != before.cend(); ++it)
            if (it.key() != names[0])
                QVERIFY2(readAll(folder + "/" + it.key()) == it.value(), qPrintable(it.key() + " is not the previous file"));
    } else if (outcome == "old-taken") {
        QStringList expected = before.keys();
        expected << names[1];
        expected.sort();
        QCOMPARE(listing(folder), expected);
        QCOMPARE(readAll(folder + "/" + names[1]), QByteArray("taken\n"));
        for (auto it = before.cbegin(); it != before.cend(); ++it)
            QVERIFY2(readAll(folder + "/" + it.key()) == it.value(), qPrintable(it.key() + " is not the previous file"));
    } else if (outcome.startsWith("old")) {
        QCOMPARE(listing(folder), QStringList(before.keys()));
        for (auto it = before.cbegin(); it != before.cend(); ++it)
            QVERIFY2(readAll(folder + "/" + it.key()) == it.value(), qPrintable(it.key() + " is not the previous file"));
    } else {
        QCOMPARE(listing(folder), names);
        for (const auto &n : names) {
            QVERIFY2(readAll(folder + "/" + n) != before.value(n), qPrintable(n + " is still the previous file"));
            // The sidecar records when it was written; every other file is the reference's bytes.
            if (!n.endsWith("_metadata.json"))
                QVERIFY2(readAll(folder + "/" + n) == readAll(reference + "/" + n), qPrintable(n + " differs"));
        }
    }
}

void TestWriteFaults::nameTakenMeanwhileIsKept_data()
{
    QTest::addColumn<bool>("cli");  // `ckpt export` rather than the small child
    QTest::newRow("writer") << false;
    QTest::newRow("ckpt export") << true;
}

// Without --force, a file that another program makes at the target while ours is written (after
// the check, before the rename) is refused, never replaced: the rename is a RENAME_NOREPLACE.
void TestWriteFaults::nameTakenMeanwhileIsKept()
{
    QFETCH(bool, cli);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString folder = dir.filePath("out");
    QVERIFY(QDir().mkpath(folder));
    const QString target = folder + "/weights.npy";
    const QString log = dir.filePath("fault.log");
    QProcess child;
    auto env = QProcessEnvironment::systemEnvironment();
    underFault(env, QStringLiteral("rename:taken:once"), log);
    child.setProcessEnvironment(env);
    if (cli) {
        const QString model = dir.filePath("model.pth");
        QVERIFY(QFile::copy(QStringLiteral(CKPT_EXAMPLES_DIR "/simple_nn_checkpoint.pth"), model));
        child.start(QStringLiteral(CKPT_BIN_DIR "/ckpt"), {"export", model, "fc1.weight", "-o", target});
    } else {
        child.start(QStringLiteral(CKPT_WRITEFAULTS_CHILD), {target, QString::number(kSize), QStringLiteral("2"),
                                                             QStringLiteral("keep")});
    }
    QVERIFY(child.waitForFinished(120000));
    const QString err = QString::fromLocal8Bit(child.readAllStandardError());
    QVERIFY2(readAll(log).startsWith("fired "), qPrintable("the fault never struck; writer said: " + err));
    QCOMPARE(child.exitStatus(), QProcess::NormalExit);
    QVERIFY2(child.exitCode() == 1, qPrintable(err));
    QVERIFY2(err.contains(target + ": a file of that name appeared while this one was written; it is kept"),
             qPrintable(err));
    QCOMPARE(readAll(target), QByteArray("taken\n"));
    QCOMPARE(QDir(folder).entryList(QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot),
             QStringList{QStringLiteral("weights.npy")});
}

QTEST_GUILESS_MAIN(TestWriteFaults)
#include "tst_writefaults.moc"
