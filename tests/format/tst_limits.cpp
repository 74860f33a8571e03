// Limits no input can move: each named limit is met exactly (accepted) and passed by one
// (refused, with a message that names the limit's value). Inputs are built here byte by byte;
// the large ones are as compact as the format allows.
#include "document.h"
#include "error.h"
#include "picklemachine.h"
#include "safetensorsreader.h"
#include "tararchive.h"
#include "tensorref.h"
#include "ziparchive.h"

#include <QtTest>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <zlib.h>

using namespace ckpt;

namespace {

std::span<const std::uint8_t> span(const std::string &s)
{
    return {reinterpret_cast<const std::uint8_t *>(s.data()), s.size()};
}

void le(std::string &out, std::uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Runs a pickle; returns "" when it reads, the error otherwise.
std::string pickleError(const std::string &pickle)
{
    try {
        PickleMachine m;
        m.run(span(pickle));
        return {};
    } catch (const FormatError &e) {
        return e.what();
    }
}

// A zip written record by record: local headers as it goes, then the central directory, always
// with ZIP64 end records (as torch writes them).
class ZipBuilder {
public:
    // `declared` is the uncompressed size the directory claims (the data's own size by default).
    void add(const std::string &name, const std::string &data, std::uint16_t method = 0,
             std::uint64_t declared = ~std::uint64_t(0))
    {
        const std::uint64_t size = declared == ~std::uint64_t(0) ? data.size() : declared;
        const std::uint64_t offset = m_out.size();
        le(m_out, 0x04034b50, 4);
        le(m_out, 20, 2);
        le(m_out, 0, 2);
        le(m_out, method, 2);
        le(m_out, 0, 4);  // time, date
        le(m_out, 0, 4);  // crc (not checked by the reader, as torch leaves it out)
        le(m_out, 0, 4);
        le(m_out, 0, 4);
        le(m_out, name.size(), 2);
        le(m_out, 0, 2);
        m_out += name;
        m_out += data;
        le(m_cd, 0x02014b50, 4);
        le(m_cd, 45, 2);
        le(m_cd, 45, 2);
        le(m_cd, 0, 2);
        le(m_cd, method, 2);
        le(m_cd, 0, 4);
        le(m_cd, 0, 4);
        le(m_cd, 0xFFFFFFFF, 4);  // compressed size, size, offset: in the ZIP64 extra field
        le(m_cd, 0xFFFFFFFF, 4);
        le(m_cd, name.size(), 2);
        le(m_cd, 28, 2);
        le(m_cd, 0, 2);
        le(m_cd, 0, 2);
        le(m_cd, 0, 2);
        le(m_cd, 0, 4);
        le(m_cd, 0xFFFFFFFF, 4);
        m_cd += name;
        le(m_cd, 0x0001, 2);
        le(m_cd, 24, 2);
        le(m_cd, size, 8);
        le(m_cd, data.size(), 8);
        le(m_cd, offset, 8);
        ++m_count;
    }
    // The archive; `claimed` overrides the entry count the end records state.
    std::string finish(std::uint64_t claimed = ~std::uint64_t(0))
    {
        const std::uint64_t count = claimed == ~std::uint64_t(0) ? m_count : claimed;
        std::string out = std::move(m_out);
        const std::uint64_t cdOffset = out.size();
        out += m_cd;
        const std::uint64_t z64 = out.size();
        le(out, 0x06064b50, 4);
        le(out, 44, 8);
        le(out, 45, 2);
        le(out, 45, 2);
        le(out, 0, 4);
        le(out, 0, 4);
        le(out, count, 8);
        le(out, count, 8);
        le(out, m_cd.size(), 8);
        le(out, cdOffset, 8);
        le(out, 0x07064b50, 4);
        le(out, 0, 4);
        le(out, z64, 8);
        le(out, 1, 4);
        le(out, 0x06054b50, 4);
        le(out, 0, 2);
        le(out, 0, 2);
        le(out, 0xFFFF, 2);
        le(out, 0xFFFF, 2);
        le(out, 0xFFFFFFFF, 4);
        le(out, 0xFFFFFFFF, 4);
        le(out, 0, 2);
        return out;
    }

private:
    std::string m_out;
    std::string m_cd;
    std::uint64_t m_count = 0;
};

std::string rawDeflate(const std::string &in)
{
    z_stream zs{};
    if (deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return {};
    std::string out(deflateBound(&zs, in.size()), '\0');
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef *>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? out : std::string();
}

// Parses and reads the only record of a one-record zip; "" when it reads.
std::string zipReadError(const std::string &zip, std::string *content = nullptr)
{
    try {
        ZipArchive z(span(zip));
        const auto rec = z.read(z.entries().at(0));
        if (content)
            content->assign(reinterpret_cast<const char *>(rec.bytes.data()), rec.bytes.size());
        return {};
    } catch (const FormatError &e) {
        return e.what();
    }
}

std::string safetensorsError(const std::string &file, std::size_t *tensors = nullptr)
{
    try {
        Document doc;
        readSafetensors(doc, span(file));
        if (tensors)
            *tensors = doc.root->entries().size();
        return {};
    } catch (const FormatError &e) {
        return e.what();
    }
}

std::string safetensorsFile(const std::string &header)
{
    std::string out;
    le(out, header.size(), 8);
    return out + header;
}

// A header of `n` empty float tensors.
std::string emptyTensorsHeader(std::size_t n)
{
    std::string h = "{";
    for (std::size_t i = 0; i < n; ++i) {
        if (i)
            h += ',';
        h += "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
    }
    return h + "}";
}

std::string tarOfEmptyMembers(std::size_t n)
{
    std::string out(n * 512, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        char *h = out.data() + i * 512;
        const std::string name = "m" + std::to_string(i);
        std::memcpy(h, name.data(), name.size());
        std::memcpy(h + 124, "00000000000", 11);
        h[156] = '0';
        std::memcpy(h + 257, "ustar", 5);
        // The checksum tarfile checks: the header's bytes with the field as blanks.
        std::memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int b = 0; b < 512; ++b)
            sum += static_cast<unsigned char>(h[b]);
        std::snprintf(h + 148, 8, "%06o", sum);
    }
    return out;
}

std::shared_ptr<StorageRef> floatStorage(std::size_t elements)
{
    static const std::vector<std::uint8_t> zeros(64, 0);
    auto s = std::make_shared<StorageRef>();
    s->key = "0";
    s->dtype = DType::Float32;
    s->setBytes({zeros.data(), elements * 4});
    return s;
}

} // namespace

class TestLimits : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void nestingDepth();
    void memoEntries();
    void bigIntegerBytes();
    void bigIntegerDigits();
    void stringsBoundedByTheFile();
    void zipEntries();
    void inflatedBytes();
    void deflateRatio();
    void tarMembers();
    void safetensorsHeaderBytes();
    void safetensorsTensors();
    void shardIndexBytesAndTensors();
    void tensorRank();
    void tensorElements();
    void sidecarBytes();
};

void TestLimits::nestingDepth()
{
    // n empty lists, each appended into the one below: the outermost is n-1 levels deep.
    auto nested = [](std::size_t lists) {
        return std::string("\x80\x02", 2) + std::string(lists, ']') + std::string(lists - 1, 'a') + ".";
    };
    const auto limit = PickleLimits::kMaxDepth;
    QCOMPARE(QString::fromStdString(pickleError(nested(limit + 1))), QString());
    const auto err = pickleError(nested(limit + 2));
    QVERIFY2(err.find("limit of " + std::to_string(limit) + " levels") != std::string::npos, err.c_str());
}

void TestLimits::memoEntries()
{
    // MEMOIZE stores the top of the stack under the next free index: one byte an entry.
    auto memoized = [](std::size_t entries) {
        return std::string("\x80\x04]", 3) + std::string(entries, '\x94') + ".";
    };
    const auto limit = PickleLimits::kMaxMemo;
    QCOMPARE(QString::fromStdString(pickleError(memoized(limit))), QString());
    const auto err = pickleError(memoized(limit + 1));
    QVERIFY2(err.find("limit of " + std::to_string(limit) + " entries") != std::string::npos, err.c_str());
}

void TestLimits::bigIntegerBytes()
{
    auto long4 = [](std::size_t bytes) {
        std::string p("\x80\x02\x8b", 3);
        le(p, bytes, 4);
        return p + std::string(bytes - 1, '\x11') + '\x01' + '.';
    };
    const auto limit = PickleLimits::kMaxBigIntBytes;
    QCOMPARE(QString::fromStdString(pickleError(long4(limit))), QString());
    const auto err = pickleError(long4(limit + 1));
    QVERIFY2(err.find("limit of " + std::to_string(limit)) != std::string::npos, err.c_str());
}

void TestLimits::bigIntegerDigits()
{
    // Protocol 0 LONG: decimal text, held to the digits a kMaxBigIntBytes integer can have.
    auto longText = [](std::size_t digits) { return "L1" + std::string(digits - 1, '0') + "L\n."; };
    const auto limit = PickleLimits::kMaxBigIntBytes * 3;
    QCOMPARE(QString::fromStdString(pickleError(longText(limit))), QString());
    const auto err = pickleError(longText(limit + 1));
    QVERIFY2(err.find("limit of " + std::to_string(limit) + " digits") != std::string::npos, err.c_str());
}

void TestLimits::stringsBoundedByTheFile()
{
    // No separate cap on one string: its length must fit in the bytes that remain, and nothing is
    // allocated before that check (a 4 GiB claim in a tiny pickle is refused, not allocated).
    std::string exact("\x80\x04\x8e", 3);
    le(exact, 5, 8);
    exact += "hello.";
    QCOMPARE(QString::fromStdString(pickleError(exact)), QString());
    std::string claim("\x80\x04\x8e", 3);
    le(claim, 1ull << 32, 8);
    claim += "hello.";
    const auto err = pickleError(claim);
    QVERIFY2(err.find("needs 4294967296 bytes but only 6 remain") != std::string::npos, err.c_str());
}

void TestLimits::zipEntries()
{
    // Exactly kMaxEntries empty records read; one more is refused before the directory is walked.
    const auto limit = ZipArchive::kMaxEntries;
    ZipBuilder b;
    for (std::size_t i = 0; i < limit; ++i)
        b.add(std::to_string(i), {});
    const std::string zip = b.finish();
    try {
        ZipArchive z(span(zip));
        QCOMPARE(z.entries().size(), limit);
    } catch (const FormatError &e) {
        QFAIL(e.what());
    }
    ZipBuilder past;
    past.add("a", "x");
    const std::string tooMany = past.finish(limit + 1);
    const auto err = zipReadError(tooMany);
    QVERIFY2(err.find("exceed the limit of " + std::to_string(limit)) != std::string::npos, err.c_str());
}

void TestLimits::inflatedBytes()
{
    // A record declaring exactly kMaxInflatedBytes passes the size check (its buffer is made and
    // inflating then fails on the corrupt stream); one byte more is refused before allocating.
    const auto limit = ZipArchive::kMaxInflatedBytes;
    const std::string junk(limit / ZipArchive::kMaxDeflateRatio + 1, '\xFF');  // BTYPE 11: invalid
    ZipBuilder at;
    at.add("r", junk, 8, limit);
    const auto atErr = zipReadError(at.finish());
    QVERIFY2(atErr.find("corrupt") != std::string::npos, atErr.c_str());
    QVERIFY2(atErr.find(std::to_string(limit)) == std::string::npos, atErr.c_str());
    ZipBuilder past;
    past.add("r", junk, 8, limit + 1);
    const auto err = zipReadError(past.finish());
    QVERIFY2(err.find("past the limit of " + std::to_string(limit)) != std::string::npos, err.c_str());
}

void TestLimits::deflateRatio()
{
    const auto ratio = ZipArchive::kMaxDeflateRatio;
    // Real data deflate compresses best (zeros) reads back whole, below the ratio.
    const std::string zeros(8u << 20, '\0');
    const std::string packed = rawDeflate(zeros);
    QVERIFY(!packed.empty());
    QVERIFY(zeros.size() <= packed.size() * ratio);
    ZipBuilder real;
    real.add("zeros", packed, 8, zeros.size());
    std::string content;
    QCOMPARE(QString::fromStdString(zipReadError(real.finish(), &content)), QString());
    QVERIFY(content == zeros);
    // A claim of exactly the ratio passes that check (and fails only because the data is short);
    // one byte more is refused before any buffer is made.
    ZipBuilder at;
    at.add("r", packed, 8, packed.size() * ratio);
    const auto atErr = zipReadError(at.finish());
    QVERIFY2(atErr.find("inflates to " + std::to_string(zeros.size())) != std::string::npos, atErr.c_str());
    ZipBuilder past;
    past.add("r", packed, 8, packed.size() * ratio + 1);
    const auto err = zipReadError(past.finish());
    QVERIFY2(err.find("limit ratio of " + std::to_string(ratio) + ":1") != std::string::npos, err.c_str());
}

void TestLimits::tarMembers()
{
    const auto limit = TarArchive::kMaxMembers;
    const std::string at = tarOfEmptyMembers(limit);
    try {
        TarArchive t(span(at));
        QCOMPARE(t.members().size(), limit);
    } catch (const FormatError &e) {
        QFAIL(e.what());
    }
    const std::string past = tarOfEmptyMembers(limit + 1);
    try {
        TarArchive t(span(past));
        QFAIL("a tar of one member past the limit was read");
    } catch (const FormatError &e) {
        QVERIFY2(std::string(e.what()).find(std::to_string(limit)) != std::string::npos, e.what());
    }
}

void TestLimits::safetensorsHeaderBytes()
{
    // An empty header padded with spaces to exactly the limit is a valid file of no tensors.
    const auto limit = SafetensorsLimits::kMaxHeaderBytes;
    std::string header = "{" + std::string(limit - 2, ' ') + "}";
    std::size_t tensors = 99;
    QCOMPARE(QString::fromStdString(safetensorsError(safetensorsFile(header), &tensors)), QString());
    QCOMPARE(tensors, std::size_t(0));
    header.insert(1, " ");
    const auto err = safetensorsError(safetensorsFile(header));
    QVERIFY2(err.find("exceeds the limit of " + std::to_string(limit)) != std::string::npos, err.c_str());
}

void TestLimits::safetensorsTensors()
{
    const auto limit = SafetensorsLimits::kMaxTensors;
    std::size_t tensors = 0;
    QCOMPARE(QString::fromStdString(safetensorsError(safetensorsFile(emptyTensorsHeader(limit)), &tensors)), QString());
    QCOMPARE(tensors, limit);
    // __metadata__ does not count as a tensor.
    std::string withMeta = emptyTensorsHeader(limit);
    withMeta.insert(1, "\"__metadata__\":{\"b\":\"2\",\"a\":\"1\"},");
    Document doc;
    readSafetensors(doc, span(safetensorsFile(withMeta)));
    QCOMPARE(doc.root->entries().size(), limit);
    QCOMPARE(QString::fromStdString(doc.formatMetadata->entries().at(0).key->text()), QStringLiteral("b"));
    QCOMPARE(QString::fromStdString(doc.root->entries().at(1).key->text()), QStringLiteral("t1"));
    const auto err = safetensorsError(safetensorsFile(emptyTensorsHeader(limit + 1)));
    QVERIFY2(err.find("exceed the limit of " + std::to_string(limit)) != std::string::npos, err.c_str());
    // Far past the limit, parsing stops at the first name too many.
    const auto far = safetensorsError(safetensorsFile(emptyTensorsHeader(limit + 5)));
    QVERIFY2(far.find("more than " + std::to_string(limit + 1) + " entries, the limit") != std::string::npos,
             far.c_str());
}

void TestLimits::shardIndexBytesAndTensors()
{
    auto indexError = [](const std::string &json) {
        try {
            Document doc;
            doc.path = "/nonexistent-limits-dir/model.index.json";
            readShardIndex(doc, span(json), {});
            return std::string();
        } catch (const FormatError &e) {
            return std::string(e.what());
        }
    };
    const auto limit = SafetensorsLimits::kMaxTensors;
    auto weightMap = [](std::size_t n) {
        std::string j = "{\"weight_map\":{";
        for (std::size_t i = 0; i < n; ++i)
            j += (i ? ",\"w" : "\"w") + std::to_string(i) + "\":\"s.safetensors\"";
        return j + "}}";
    };
    // At the limit the index is accepted and the missing shard is what stops the reading.
    const auto at = indexError(weightMap(limit));
    QVERIFY2(at.find("s.safetensors") != std::string::npos && at.find(std::to_string(limit)) == std::string::npos,
             at.c_str());
    const auto past = indexError(weightMap(limit + 1));
    QVERIFY2(past.find("exceed the limit of " + std::to_string(limit)) != std::string::npos, past.c_str());
    // The index's size is held to the safetensors header limit.
    const auto bytes = SafetensorsLimits::kMaxHeaderBytes;
    std::string big = "{\"weight_map\":{}" + std::string(bytes - 17, ' ') + "}";
    QCOMPARE(big.size(), bytes);
    const auto atBytes = indexError(big);
    QVERIFY2(atBytes.find("names no tensors") != std::string::npos, atBytes.c_str());
    big.insert(1, " ");
    const auto pastBytes = indexError(big);
    QVERIFY2(pastBytes.find("exceeds the limit of " + std::to_string(bytes)) != std::string::npos, pastBytes.c_str());
}

void TestLimits::tensorRank()
{
    const auto limit = TensorLimits::kMaxRank;
    TensorRef t;
    t.dtype = DType::Float32;
    t.storage = floatStorage(1);
    t.shape.assign(limit, 1);
    t.strides.assign(limit, 1);
    QCOMPARE(QString::fromStdString(t.validate()), QString());
    t.shape.push_back(1);
    t.strides.push_back(1);
    const auto problem = t.validate();
    QVERIFY2(problem.find("limit of " + std::to_string(limit) + " dimensions") != std::string::npos, problem.c_str());
    QVERIFY(t.spannedBytes().empty());  // a refused tensor's data is never touched

    // safetensors refuses the whole file.
    auto header = [](std::size_t rank) {
        std::string shape;
        for (std::size_t i = 0; i < rank; ++i)
            shape += i ? ",1" : "1";
        return "{\"t\":{\"dtype\":\"F32\",\"shape\":[" + shape + "],\"data_offsets\":[0,4]}}";
    };
    QCOMPARE(QString::fromStdString(safetensorsError(safetensorsFile(header(limit)) + std::string(4, '\0'))), QString());
    const auto err = safetensorsError(safetensorsFile(header(limit + 1)) + std::string(4, '\0'));
    QVERIFY2(err.find("exceeds the limit of " + std::to_string(limit)) != std::string::npos, err.c_str());
}

void TestLimits::tensorElements()
{
    // A broadcast view (stride 0) spans one stored element however many it counts.
    const auto limit = TensorLimits::kMaxElements;
    TensorRef t;
    t.dtype = DType::Float32;
    t.storage = floatStorage(1);
    t.shape = {limit};
    t.strides = {0};
    QCOMPARE(QString::fromStdString(t.validate()), QString());
    t.shape = {limit + 1};
    auto problem = t.validate();
    QVERIFY2(problem.find("limit of " + std::to_string(limit)) != std::string::npos, problem.c_str());
    // Meta tensors (shape only) are held to the same count.
    TensorRef meta;
    meta.layout = TensorRef::Layout::Meta;
    meta.dtype = DType::Float32;
    meta.shape = {1 << 16, 1 << 16, 1 << 16};
    QCOMPARE(QString::fromStdString(meta.validate()), QString());
    meta.shape.push_back(2);
    problem = meta.validate();
    QVERIFY2(problem.find("limit of " + std::to_string(limit)) != std::string::npos, problem.c_str());
}

void TestLimits::sidecarBytes()
{
    // kMaxSidecarBytes in documentreader.cpp: 16 MiB.
    constexpr std::size_t limit = 16u << 20;
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString model = dir.filePath("m.pth");
    QVERIFY(QFile::copy(QStringLiteral(CKPT_EXAMPLES_DIR "/simple_nn_checkpoint.pth"), model));
    auto writeSidecar = [&](std::size_t size) {
        std::ofstream out(dir.filePath("m_metadata.json").toStdString(), std::ios::binary | std::ios::trunc);
        out << "{\"k\":1" << std::string(size - 7, ' ') << "}";
    };
    writeSidecar(limit);
    QCOMPARE(QFileInfo(dir.filePath("m_metadata.json")).size(), qint64(limit));
    auto doc = readDocument(model.toStdString());
    QVERIFY(doc.sidecar);
    writeSidecar(limit + 1);
    doc = readDocument(model.toStdString());
    QVERIFY(!doc.sidecar);
    QString warnings;
    for (const auto &w : doc.warnings)
        warnings += QString::fromStdString(w);
    QVERIFY2(warnings.contains("larger than 16 MiB"), qPrintable(warnings));
}

QTEST_GUILESS_MAIN(TestLimits)
#include "tst_limits.moc"
