// Containers built to make this reader and PyTorch (or Python's zipfile/tarfile) disagree, or to
// make the reader recurse, block or fan out: shard indexes naming indexes, FIFOs, JSON nested past
// any real header, duplicate records, tar PAX and GNU headers. Every input is made here, as bytes.
#include "architecture.h"
#include "convert.h"
#include "document.h"
#include "error.h"
#include "mappedfile.h"
#include "safetensorsreader.h"
#include "storedzip.h"
#include "tararchive.h"

#include <QtTest>

#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace ckpt;
using namespace std::string_literals;

namespace {

using test::le;

// A safetensors file of one float32 tensor `name` of one element.
std::string oneTensorSafetensors(const std::string &name = "t")
{
    const std::string header = R"({")" + name + R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    return le(header.size(), 8) + header + std::string(4, '\0');
}

// A torch zip whose data.pkl is {'model_state_dict': {'fc.weight': [2, 4] float32, 'fc.bias': [2]},
// `key`: L} where L0 = 1 and L(i) = [L(i-1), L(i-1)] for `levels` levels: a kilobyte that stands
// for 2^levels entries when shared lists are written out.
std::string sharedListsCheckpoint(const std::string &key, int levels)
{
    auto unicode = [](const std::string &t) { return "X"s + le(t.size(), 4) + t; };
    auto global = [](const std::string &m, const std::string &n) { return "c" + m + "\n" + n + "\n"; };
    auto ints = [](std::initializer_list<int> xs) {
        std::string t = "(";
        for (int x : xs)
            t += "J" + le(static_cast<std::uint32_t>(x), 4);
        return t + "t";
    };
    auto tensor = [&](const std::string &storage, int numel, std::initializer_list<int> size,
                      std::initializer_list<int> stride) {
        const std::string pid = "(" + unicode("storage") + global("torch", "FloatStorage") + unicode(storage) +
                                unicode("cpu") + "J" + le(static_cast<std::uint32_t>(numel), 4) + "tQ";
        return global("torch._utils", "_rebuild_tensor_v2") + "(" + pid + "K\x00"s + ints(size) + ints(stride) +
               "\x89" + global("collections", "OrderedDict") + ")RtR";
    };
    std::string p = "\x80\x02}("s + unicode("model_state_dict") + "}(" + unicode("fc.weight") +
                    tensor("0", 8, {2, 4}, {4, 1}) + unicode("fc.bias") + tensor("1", 2, {2}, {1}) + "u" +
                    unicode(key) + "K\x01r" + le(0, 4) + "0";
    for (int i = 1; i <= levels; ++i) {
        p += "]("s + "j" + le(i - 1, 4) + "j" + le(i - 1, 4) + "e" + "r" + le(i, 4);
        if (i < levels)
            p += "0";
    }
    p += "u.";
    return test::storedZip({{"archive/data.pkl", p}, {"archive/data/0", std::string(32, '\0')},
                  {"archive/data/1", std::string(8, '\0')}, {"archive/version", "3\n"}});
}

const std::string kBenignPickle = "\x80\x02}q\x00."s;
const std::string kEvilPickle = "\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."s;

// One tar header, checksummed as tarfile checks it. `sizeField`, when given, replaces the octal
// size (12 bytes); `magic` false makes an old (v7) header.
std::string tarHeader(const std::string &name, std::uint64_t size, char type = '0', const std::string &prefix = {},
                      bool magic = true, const std::string &sizeField = {})
{
    std::string h(512, '\0');
    h.replace(0, std::min<std::size_t>(name.size(), 100), name.substr(0, 100));
    h.replace(100, 8, "0000644"s + '\0');
    h.replace(108, 8, "0000000"s + '\0');
    h.replace(116, 8, "0000000"s + '\0');
    char octal[13];
    std::snprintf(octal, sizeof octal, "%011llo", static_cast<unsigned long long>(size));
    h.replace(124, 12, sizeField.empty() ? std::string(octal, 12) : sizeField.substr(0, 12));
    h.replace(136, 12, "00000000000"s + '\0');
    h[156] = type;
    if (magic)
        h.replace(257, 8, "ustar\0" "00"s);
    h.replace(345, std::min<std::size_t>(prefix.size(), 155), prefix.substr(0, 155));
    h.replace(148, 8, std::string(8, ' '));
    unsigned sum = 0;
    for (unsigned char c : h)
        sum += c;
    char chk[8];
    std::snprintf(chk, sizeof chk, "%06o", sum);
    h.replace(148, 8, std::string(chk, 6) + '\0' + ' ');
    return h;
}

std::string tarPad(std::size_t n) { return std::string((512 - n % 512) % 512, '\0'); }

std::string tarMember(const std::string &name, const std::string &data, char type = '0')
{
    return tarHeader(name, data.size(), type) + data + tarPad(data.size());
}

// A PAX record: its length counts itself.
std::string paxRecord(const std::string &keyword, const std::string &value)
{
    const std::string body = " " + keyword + "=" + value + "\n";
    std::size_t n = body.size() + 1;
    while (std::to_string(n).size() + body.size() != n)
        ++n;
    return std::to_string(n) + body;
}

std::string tarEnd() { return std::string(1024, '\0'); }

// The members TarArchive lists, "name:size" each, or "error: ..." when it refuses the archive.
QStringList tarMembers(const std::string &tar)
{
    try {
        const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t *>(tar.data()), tar.size());
        const TarArchive archive(bytes);
        QStringList out;
        for (const auto &m : archive.members())
            out << QString::fromStdString(m.name) + ":" + QString::number(m.size);
        return out;
    } catch (const FormatError &e) {
        return {QStringLiteral("error: ") + QString::fromStdString(e.what())};
    }
}

// What torch 0.1.x wrote, around `pickle`.
std::string legacyTar(const std::string &beforePickle, const std::string &pickle)
{
    const std::string count = "\x80\x02K\x00."s;  // no storages (and no views of them), no tensors
    return tarMember("sys_info", "\x80\x02}q\x00."s) + tarMember("storages", count + "\x80\x02]."s) +
           tarMember("tensors", count) +
           beforePickle + tarMember("pickle", pickle) + tarEnd();
}

bool writeFile(const QString &path, const std::string &bytes)
{
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly))
        return false;
    return f.write(bytes.data(), static_cast<qint64>(bytes.size())) == static_cast<qint64>(bytes.size());
}

// Reads `path`; "" when it reads, the error otherwise.
std::string readError(const QString &path)
{
    try {
        readDocument(path.toStdString());
        return {};
    } catch (const FormatError &e) {
        return e.what();
    }
}

std::string bytesError(const std::string &bytes, const std::string &name = "mem.pth")
{
    try {
        readDocumentFromBytes(bytes, name);
        return {};
    } catch (const FormatError &e) {
        return e.what();
    }
}

// Unblocks a reader stuck opening the FIFO `path` (by opening it for writing after `after`), so a
// reader that blocks fails its test instead of hanging it.
class FifoUnblocker {
public:
    FifoUnblocker(const QString &path, std::chrono::milliseconds after)
        : m_thread([this, p = QFile::encodeName(path).toStdString(), after] {
              const auto deadline = std::chrono::steady_clock::now() + after;
              while (!m_done.load()) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
                  if (std::chrono::steady_clock::now() < deadline)
                      continue;
                  const int fd = ::open(p.c_str(), O_WRONLY | O_NONBLOCK);
                  if (fd >= 0) {
                      ::close(fd);
                      m_fired = true;
                  }
              }
          })
    {
    }
    ~FifoUnblocker()
    {
        m_done = true;
        m_thread.join();
    }
    bool fired() const { return m_fired.load(); }

private:
    std::atomic<bool> m_done{false};
    std::atomic<bool> m_fired{false};
    std::thread m_thread;
};

#define VERIFY_CONTAINS(text, part)                                                                             \
    QVERIFY2(std::string(text).find(part) != std::string::npos,                                                 \
             qPrintable(QStringLiteral("expected '%1' in: %2").arg(QString::fromStdString(part),                 \
                                                                   QString::fromStdString(text))))

} // namespace

class TestArchiveHostile : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // MappedFile
    void sharedArchitectureIsRefused();
    void sharedMetadataConverts();
    void fifoIsRefused();
    void directoryIsRefused();
    // shard indexes
    void shardNamingItsIndex();
    void shardIndexesFanningOut();
    void shardThatIsAFifo();
    void shardNamedDot();
    void shardThatIsAFolder();
    void validShardIndexStillReads();
    // JSON nesting
    void deepShapeInHeader();
    void deepMetadataInIndex();
    void nestingAtTheLimitReads();
    void longShapeValueNotDumped();
    // zip
    void zipDuplicateRecords_data();
    void zipDuplicateRecords();
    void zipIdenticalCopiesRead();
    void zipRecordsUnderTwoFolders_data();
    void zipRecordsUnderTwoFolders();
    // tar
    void tarDuplicateMembers_data();
    void tarDuplicateMembers();
    void tarDuplicateThroughTheReader();
    void tarPaxRenames_data();
    void tarPaxRenames();
    void tarPaxMtimeReads();
    void tarLayouts_data();
    void tarLayouts();
    void realTarShapeStillReads();
};

// An inference package's architecture of lists shared at 30 levels (2^30 entries written out)
// is refused at once, rather than spelled out until memory runs out.
void TestArchiveHostile::sharedArchitectureIsRefused()
{
    const Document doc = readDocumentFromBytes(sharedListsCheckpoint("architecture", 30), "dag.pth");
    QVERIFY(doc.hasStateDict);
    try {
        resolveArchitecture(doc);
        QFAIL("an architecture of 2^30 entries was accepted");
    } catch (const FormatError &e) {
        const QString what = QString::fromUtf8(e.what());
        QVERIFY2(what.startsWith("dag.pth: the package's architecture spells out more than"), e.what());
    }
}

// Metadata of lists shared at 60 levels: planning a conversion that writes the metadata as JSON
// looks into each shared list once (it used to visit 2^60 nodes and never finish).
void TestArchiveHostile::sharedMetadataConverts()
{
    const Document doc = readDocumentFromBytes(sharedListsCheckpoint("config", 60), "meta.pth");
    for (const auto target : {ConvertTarget::Inference, ConvertTarget::Checkpoint}) {
        ConvertOptions options;
        options.target(target).metadataJson(true);
        std::atomic<bool> done{false};
        std::thread watchdog([&done] {
            for (int i = 0; i < 600 && !done; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            if (!done) {
                std::fputs("planConversion did not finish within 60 s\n", stderr);
                std::abort();
            }
        });
        try {
            planConversion(doc, "/tmp/meta_out.pth", options);
        } catch (const FormatError &) {
            // A refusal is an answer too; only never answering is wrong.
        }
        done = true;
        watchdog.join();
    }
}

void TestArchiveHostile::fifoIsRefused()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString fifo = dir.filePath("m.safetensors");
    QVERIFY(::mkfifo(QFile::encodeName(fifo).constData(), 0600) == 0);
    std::string err;
    {
        const FifoUnblocker unblock(fifo, std::chrono::seconds(5));
        err = readError(fifo);
        QVERIFY2(!unblock.fired(), "reading a FIFO blocked until a writer came");
    }
    VERIFY_CONTAINS(err, "is a FIFO (named pipe), not a regular file");
    VERIFY_CONTAINS(err, fifo.toStdString());
}

// A folder is opened as the checkpoint it holds (checkpointfolder.h); an empty one is said to
// hold none, by name, rather than mapped or read as a file.
void TestArchiveHostile::directoryIsRefused()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto err = readError(dir.path());
    VERIFY_CONTAINS(err, dir.path().toStdString() + ": no checkpoint file in the folder");
}

void TestArchiveHostile::shardNamingItsIndex()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString index = dir.filePath("model.safetensors.index.json");
    QVERIFY(writeFile(index, R"({"weight_map": {"a": "model.safetensors.index.json"}})"));
    const auto err = readError(index);
    VERIFY_CONTAINS(err, "shard 'model.safetensors.index.json' (weight_map['a']) is itself a shard index");
}

void TestArchiveHostile::shardIndexesFanningOut()
{
    // Each index names the next two: 2^18 opens if indexes could nest. The first
    // nested index stops the read.
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const int levels = 18;
    for (int i = 0; i < levels; ++i) {
        const std::string a = "l" + std::to_string(i + 1) + "a.index.json";
        const std::string b = "l" + std::to_string(i + 1) + "b.index.json";
        const std::string body = R"({"weight_map": {"t": ")" + a + R"(", "u": ")" + b + R"("}})";
        const QString base = i == 0 ? QStringLiteral("model.safetensors.index.json")
                                    : QStringLiteral("l%1%2.index.json").arg(i);
        if (i == 0) {
            QVERIFY(writeFile(dir.filePath(base), body));
        } else {
            QVERIFY(writeFile(dir.filePath(QStringLiteral("l%1a.index.json").arg(i)), body));
            QVERIFY(writeFile(dir.filePath(QStringLiteral("l%1b.index.json").arg(i)), body));
        }
    }
    QVERIFY(writeFile(dir.filePath(QStringLiteral("l%1a.index.json").arg(levels)), oneTensorSafetensors()));
    QVERIFY(writeFile(dir.filePath(QStringLiteral("l%1b.index.json").arg(levels)), oneTensorSafetensors("u")));
    QElapsedTimer timer;
    timer.start();
    const auto err = readError(dir.filePath("model.safetensors.index.json"));
    QVERIFY2(timer.elapsed() < 5000, "indexes naming indexes fanned out");
    VERIFY_CONTAINS(err, "shard 'l1a.index.json' (weight_map['t']) is itself a shard index");
}

void TestArchiveHostile::shardThatIsAFifo()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString index = dir.filePath("model.safetensors.index.json");
    QVERIFY(writeFile(index, R"({"weight_map": {"t": "w.safetensors"}})"));
    const QString fifo = dir.filePath("w.safetensors");
    QVERIFY(::mkfifo(QFile::encodeName(fifo).constData(), 0600) == 0);
    std::string err;
    {
        const FifoUnblocker unblock(fifo, std::chrono::seconds(5));
        err = readError(index);
        QVERIFY2(!unblock.fired(), "reading a FIFO shard blocked until a writer came");
    }
    VERIFY_CONTAINS(err, index.toStdString() + ": shard index: shard 'w.safetensors' (weight_map['t'])");
    VERIFY_CONTAINS(err, "is a FIFO (named pipe), not a regular file");
}

void TestArchiveHostile::shardNamedDot()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString index = dir.filePath("model.safetensors.index.json");
    QVERIFY(writeFile(index, R"({"weight_map": {"fc.weight": "."}})"));
    const auto err = readError(index);
    VERIFY_CONTAINS(err, index.toStdString() + ": shard index: shard name '.' (weight_map['fc.weight'])");
    VERIFY_CONTAINS(err, "is not a plain file name next to the index");
}

void TestArchiveHostile::shardThatIsAFolder()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QVERIFY(QDir(dir.path()).mkdir("sub"));
    const QString index = dir.filePath("model.safetensors.index.json");
    QVERIFY(writeFile(index, R"({"weight_map": {"fc.weight": "sub"}})"));
    const auto err = readError(index);
    VERIFY_CONTAINS(err, index.toStdString() + ": shard index: shard 'sub' (weight_map['fc.weight'])");
    VERIFY_CONTAINS(err, "is a directory, not a regular file");
}

void TestArchiveHostile::validShardIndexStillReads()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString index = dir.filePath("model.safetensors.index.json");
    QVERIFY(writeFile(index, R"({"metadata": {"total_size": 8, "nested": {"a": [1, [2]]}},
                                 "weight_map": {"t": "a.safetensors", "u": "b.safetensors"}})"));
    QVERIFY(writeFile(dir.filePath("a.safetensors"), oneTensorSafetensors("t")));
    QVERIFY(writeFile(dir.filePath("b.safetensors"), oneTensorSafetensors("u")));
    try {
        const auto doc = readDocument(index.toStdString());
        QCOMPARE(doc.format, ContainerFormat::Sharded);
        QCOMPARE(doc.stateDict.size(), std::size_t(2));
        QVERIFY(doc.formatMetadata);
    } catch (const FormatError &e) {
        QFAIL(e.what());
    }
}

void TestArchiveHostile::deepShapeInHeader()
{
    // 200,000 levels: dumping it for the message recursed once a level, past the stack.
    const std::size_t depth = 200'000;
    const std::string header = R"({"t":{"dtype":"F32","shape":)" + std::string(depth, '[') + std::string(depth, ']') +
                               R"(,"data_offsets":[0,0]}})";
    const auto err = bytesError(le(header.size(), 8) + header, "deep.safetensors");
    VERIFY_CONTAINS(err, "safetensors header nests deeper than " +
                             std::to_string(SafetensorsLimits::kMaxJsonDepth) + " levels");
}

void TestArchiveHostile::deepMetadataInIndex()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::size_t depth = 200'000;
    const QString index = dir.filePath("model.safetensors.index.json");
    QVERIFY(writeFile(index, R"({"weight_map": {"t": "a.safetensors"}, "metadata": {"x": )" + std::string(depth, '[') +
                                 std::string(depth, ']') + "}}"));
    QVERIFY(writeFile(dir.filePath("a.safetensors"), oneTensorSafetensors("t")));
    const auto err = readError(index);
    VERIFY_CONTAINS(err, "shard index nests deeper than " + std::to_string(SafetensorsLimits::kMaxJsonDepth) +
                             " levels");
}

void TestArchiveHostile::nestingAtTheLimitReads()
{
    // The header object is level 1; a shape value nested to exactly the limit is still parsed
    // (and refused for what it is, not for its depth); one level more is refused for depth.
    const int limit = SafetensorsLimits::kMaxJsonDepth;
    const auto header = [](int levels) {  // levels of the shape value: object, tensor object, then lists
        const std::size_t lists = static_cast<std::size_t>(levels - 2);
        return R"({"t":{"dtype":"F32","shape":)" + std::string(lists, '[') + std::string(lists, ']') +
               R"(,"data_offsets":[0,0]}})";
    };
    const auto at = header(limit);
    const auto atErr = bytesError(le(at.size(), 8) + at, "at.safetensors");
    VERIFY_CONTAINS(atErr, "shape holds a list of 1, not a non-negative integer");
    const auto past = header(limit + 1);
    const auto pastErr = bytesError(le(past.size(), 8) + past, "past.safetensors");
    VERIFY_CONTAINS(pastErr, "nests deeper than " + std::to_string(limit) + " levels");
}

void TestArchiveHostile::longShapeValueNotDumped()
{
    // A long string where a dimension belongs is described, not copied into the message.
    const std::string big(1 << 20, 'x');
    const std::string header = R"({"t":{"dtype":"F32","shape":[")" + big + R"("],"data_offsets":[0,4]}})";
    const auto err = bytesError(le(header.size(), 8) + header + std::string(4, '\0'), "s.safetensors");
    VERIFY_CONTAINS(err, "shape holds a string of 1048576 bytes, not a non-negative integer");
    QVERIFY2(err.size() < 1000, "the message copies the value");
}

void TestArchiveHostile::zipDuplicateRecords_data()
{
    QTest::addColumn<std::string>("firstName");
    QTest::addColumn<std::string>("first");
    QTest::addColumn<std::string>("secondName");
    QTest::addColumn<std::string>("second");
    // torch reads the last copy: a scan of the first said "safe" while torch ran the second.
    QTest::newRow("benign first") << std::string("archive/data.pkl") << kBenignPickle
                                  << std::string("archive/data.pkl") << kEvilPickle;
    QTest::newRow("evil first") << std::string("archive/data.pkl") << kEvilPickle << std::string("archive/data.pkl")
                                << kBenignPickle;
    // torch (miniz) compares names without regard to case.
    QTest::newRow("other case") << std::string("archive/data.pkl") << kBenignPickle
                                << std::string("archive/DATA.pkl") << kEvilPickle;
    QTest::newRow("storage") << std::string("archive/data/0") << std::string(4, '\1')
                             << std::string("archive/data/0") << std::string(4, '\2');
}

void TestArchiveHostile::zipDuplicateRecords()
{
    QFETCH(std::string, firstName);
    QFETCH(std::string, first);
    QFETCH(std::string, secondName);
    QFETCH(std::string, second);
    std::vector<std::pair<std::string, std::string>> records{{"archive/data.pkl", kBenignPickle}};
    if (firstName == "archive/data.pkl")
        records.clear();
    records.insert(records.end(), {{firstName, first}, {"archive/version", "3\n"}, {secondName, second}});
    const auto err = bytesError(test::storedZip(records), "dup.pth");
    VERIFY_CONTAINS(err, "dup.pth: zip: record '" + secondName + "' appears twice");
    VERIFY_CONTAINS(err, "with different contents; readers disagree on which copy they use");
}

void TestArchiveHostile::zipIdenticalCopiesRead()
{
    // Two identical copies read the same whichever is taken: read, and reported.
    const auto zip = test::storedZip({{"archive/data.pkl", kBenignPickle}, {"archive/version", "3\n"},
                            {"archive/version", "3\n"}});
    try {
        const auto doc = readDocumentFromBytes(zip, "same.pth");
        QCOMPARE(doc.format, ContainerFormat::TorchZip);
        bool reported = false;
        for (const auto &a : doc.anomalies)
            reported = reported || a.find("'archive/version' appears more than once") != std::string::npos;
        QVERIFY(reported);
    } catch (const FormatError &e) {
        QFAIL(e.what());
    }
}

void TestArchiveHostile::zipRecordsUnderTwoFolders_data()
{
    QTest::addColumn<std::string>("other");
    QTest::newRow("no folder") << std::string("data.pkl");
    QTest::newRow("another folder") << std::string("other/data.pkl");
    QTest::newRow("folder in other case") << std::string("Archive/data.pkl");
}

void TestArchiveHostile::zipRecordsUnderTwoFolders()
{
    // torch takes the first record's folder and refuses records outside it.
    QFETCH(std::string, other);
    const auto zip = test::storedZip({{"archive/version", "3\n"}, {other, kEvilPickle}, {"archive/data.pkl", kBenignPickle}});
    const auto err = bytesError(zip, "split.pth");
    VERIFY_CONTAINS(err, "split.pth: zip: record '" + other + "' is not under 'archive/'");
    VERIFY_CONTAINS(err, "torch refuses such an archive");
}

void TestArchiveHostile::tarDuplicateMembers_data()
{
    QTest::addColumn<std::string>("tar");
    QTest::addColumn<QString>("name");
    const std::string one = tarMember("pickle", kBenignPickle);
    QTest::newRow("same name") << one + tarMember("pickle", kEvilPickle) + tarEnd() << "pickle";
    QTest::newRow("same name, evil first") << tarMember("pickle", kEvilPickle) + one + tarEnd() << "pickle";
    QTest::newRow("with ./") << one + tarMember("./pickle", kEvilPickle) + tarEnd() << "./pickle";
    // tarfile reads a symlink's target for it; it takes types it does not know for files.
    QTest::newRow("then a symlink") << one + tarHeader("pickle", 0, '2') + tarEnd() << "pickle";
    QTest::newRow("then an unknown type") << one + tarMember("pickle", kEvilPickle, 'A') + tarEnd() << "pickle";
    QTest::newRow("then a contiguous file") << one + tarMember("pickle", kEvilPickle, '7') + tarEnd() << "pickle";
    QTest::newRow("through the ustar prefix")
        << tarMember("a/pickle", kBenignPickle) + tarHeader("pickle", kEvilPickle.size(), '0', "a") + kEvilPickle +
               tarPad(kEvilPickle.size()) + tarEnd()
        << "a/pickle";
}

void TestArchiveHostile::tarDuplicateMembers()
{
    QFETCH(std::string, tar);
    QFETCH(QString, name);
    const QStringList members = tarMembers(tar);
    QCOMPARE(members.size(), 1);
    QVERIFY2(members[0].startsWith("error: tar: member '" + name + "' appears twice"), qPrintable(members[0]));
    QVERIFY2(members[0].contains("readers disagree on which copy they use"), qPrintable(members[0]));
}

void TestArchiveHostile::tarDuplicateThroughTheReader()
{
    const auto err = bytesError(legacyTar(tarMember("pickle", kBenignPickle), kEvilPickle), "dup.pth");
    VERIFY_CONTAINS(err, "dup.pth: tar: member 'pickle' appears twice");
}

void TestArchiveHostile::tarPaxRenames_data()
{
    QTest::addColumn<std::string>("beforePickle");
    QTest::addColumn<QString>("message");
    const std::string decoy = kEvilPickle;
    const auto pax = [](char type, const std::string &records) { return tarMember("././@PaxHeader", records, type); };
    QTest::newRow("path") << pax('x', paxRecord("path", "pickle")) + tarMember("decoy", decoy)
                          << "the PAX header at offset 3072 sets 'path'";
    QTest::newRow("global path") << pax('g', paxRecord("path", "pickle")) + tarMember("decoy", decoy)
                                 << "the PAX global header at offset 3072 sets 'path'";
    QTest::newRow("solaris path") << pax('X', paxRecord("path", "pickle")) + tarMember("decoy", decoy)
                                  << "sets 'path'";
    QTest::newRow("linkpath") << pax('x', paxRecord("linkpath", "pickle")) + tarHeader("ln", 0, '2')
                              << "sets 'linkpath'";
    QTest::newRow("size") << pax('x', paxRecord("size", "0")) + tarMember("decoy", decoy) << "sets 'size'";
    QTest::newRow("sparse") << pax('x', paxRecord("GNU.sparse.map", "0,0")) + tarMember("decoy", decoy)
                            << "sets 'GNU.sparse'";
    // Older Pythons parse records on into the padding after the declared size.
    const std::string declared = paxRecord("mtime", "1");
    std::string padded = tarHeader("././@PaxHeader", declared.size(), 'x') + declared + paxRecord("path", "pickle");
    padded += tarPad(padded.size());
    QTest::newRow("path in the padding") << padded + tarMember("decoy", decoy) << "sets 'path'";
}

void TestArchiveHostile::tarPaxRenames()
{
    QFETCH(std::string, beforePickle);
    QFETCH(QString, message);
    const QStringList members = tarMembers(legacyTar(beforePickle, kBenignPickle));
    QCOMPARE(members.size(), 1);
    QVERIFY2(members[0].startsWith("error: tar: ") && members[0].contains(message), qPrintable(members[0]));
    QVERIFY2(members[0].contains("would rename or resize a member"), qPrintable(members[0]));
    const auto err = bytesError(legacyTar(beforePickle, kBenignPickle), "pax.pth");
    VERIFY_CONTAINS(err, "pax.pth: tar: ");
}

void TestArchiveHostile::tarPaxMtimeReads()
{
    // torch 0.1.x (tarfile in PAX format) wrote an mtime record before every member.
    const auto pax = tarMember("././@PaxHeader", paxRecord("mtime", "1485049682.0"), 'x');
    const std::string count = "\x80\x02K\x00."s;
    const std::string tar = pax + tarMember("sys_info", kBenignPickle) + pax + tarMember("storages", count + "\x80\x02]."s) +
                            pax + tarMember("tensors", count) + pax + tarMember("pickle", kBenignPickle) + tarEnd();
    QCOMPARE(tarMembers(tar), (QStringList{"sys_info:6", "storages:9", "tensors:5", "pickle:6"}));
    try {
        const auto doc = readDocumentFromBytes(tar, "mtime.pth");
        QCOMPARE(doc.format, ContainerFormat::Tar);
    } catch (const FormatError &e) {
        QFAIL(e.what());
    }
}

void TestArchiveHostile::tarLayouts_data()
{
    // Where tarfile finds members, and what it calls them.
    QTest::addColumn<std::string>("tar");
    QTest::addColumn<QStringList>("members");
    const std::string data(10, 'd');
    QTest::newRow("GNU long name") << tarHeader("././@LongLink", 7, 'L') + "pickle"s + '\0' + tarPad(7) +
                                          tarMember("decoy", data) + tarEnd()
                                   << QStringList{"pickle:10"};
    // Of two long names the first (outermost) wins.
    QTest::newRow("two GNU long names")
        << tarHeader("././@LongLink", 7, 'L') + "pickle"s + '\0' + tarPad(7) + tarHeader("././@LongLink", 6, 'L') +
               "decoy"s + '\0' + tarPad(6) + tarMember("x", data) + tarEnd()
        << QStringList{"pickle:10"};
    // tarfile reads the long name up to a NUL, past the declared size into the padding.
    QTest::newRow("long name into the padding")
        << tarHeader("././@LongLink", 3, 'L') + "pic" + "kle"s + '\0' + tarPad(7) + tarMember("x", data) + tarEnd()
        << QStringList{"pickle:10"};
    // A folder (or link) has no data, whatever its size field says: the next block is a header.
    QTest::newRow("folder with a size") << tarHeader("dir/", 512, '5') + tarMember("pickle", data) + tarEnd()
                                        << QStringList{"pickle:10"};
    QTest::newRow("old-style folder with a size")
        << tarHeader("dir/", 512, '\0') + tarMember("pickle", data) + tarEnd() << QStringList{"pickle:10"};
    QTest::newRow("symlink with a size") << tarHeader("ln", 512, '2') + tarMember("pickle", data) + tarEnd()
                                         << QStringList{"pickle:10"};
    // Types tarfile does not know are files to it.
    QTest::newRow("unknown type") << tarMember("pickle", data, 'A') + tarEnd() << QStringList{"pickle:10"};
    // The ustar prefix is joined to the name without the magic.
    QTest::newRow("prefix without magic")
        << tarHeader("pickle", data.size(), '0', "x", false) + data + tarPad(data.size()) + tarEnd()
        << QStringList{"x/pickle:10"};
    // Sizes: base-256, and octal text as int(text, 8) reads it, up to the first NUL.
    std::string base256(12, '\0');
    base256[0] = '\x80';
    base256[11] = 10;
    QTest::newRow("base-256 size") << tarHeader("pickle", 0, '0', {}, true, base256) + data + tarPad(10) + tarEnd()
                                   << QStringList{"pickle:10"};
    QTest::newRow("NUL before the digits") << tarHeader("a", 0, '0', {}, true, "\0 0000001000"s) +
                                                  tarMember("pickle", data) + tarEnd()
                                           << QStringList{"a:0", "pickle:10"};
    QTest::newRow("0o prefix and underscores")
        << tarHeader("pickle", 0, '0', {}, true, " +0o1_2 "s + std::string(4, '\0')) + data + tarPad(10) + tarEnd()
        << QStringList{"pickle:10"};
    QTest::newRow("junk size") << tarHeader("pickle", 0, '0', {}, true, "12x"s + std::string(9, '\0')) + tarEnd()
                               << QStringList{"error: tar: the first header is not one Python's tarfile reads (its "
                                              "checksum or a number field): torch.load reads the file as a pickle "
                                              "from its first byte"};
    QTest::newRow("negative size") << tarHeader("pickle", 0, '0', {}, true, "\xff"s + std::string(11, '\xff')) +
                                          tarEnd()
                                   << QStringList{"error: tar: size of 'pickle' is negative"};
    QTest::newRow("GNU sparse") << tarMember("pickle", data, 'S') + tarEnd()
                                << QStringList{"error: tar: member 'pickle' is a GNU sparse file, which is not "
                                               "supported"};
}

void TestArchiveHostile::tarLayouts()
{
    QFETCH(std::string, tar);
    QFETCH(QStringList, members);
    QCOMPARE(tarMembers(tar), members);
}

void TestArchiveHostile::realTarShapeStillReads()
{
    // As torch 0.1.x wrote it: still a torch tar checkpoint.
    try {
        const auto doc = readDocumentFromBytes(legacyTar({}, kBenignPickle), "legacy.pth");
        QCOMPARE(doc.format, ContainerFormat::Tar);
    } catch (const FormatError &e) {
        QFAIL(e.what());
    }
}

QTEST_GUILESS_MAIN(TestArchiveHostile)
#include "tst_archivehostile.moc"
