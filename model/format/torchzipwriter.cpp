#include "torchzipwriter.h"

#include "crc.h"

#include "error.h"

#include <zlib.h>

namespace ckpt {

namespace {
void le(std::string &out, std::uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
constexpr std::uint16_t kFlags = 0x0808; // UTF-8 names, sizes in a data descriptor
constexpr std::uint16_t kVersionZip64 = 45;
} // namespace

TorchZipWriter::TorchZipWriter(Sink sink, std::string folder, std::uint64_t zip64Threshold)
    : m_sink(std::move(sink)), m_folder(std::move(folder)), m_threshold(zip64Threshold)
{
    if (m_folder.empty() || m_folder.find('/') != std::string::npos)
        throw FormatError("zip folder name '" + m_folder + "' must be one non-empty path component");
}

void TorchZipWriter::emit(const std::string &bytes)
{
    emit({reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()});
}

void TorchZipWriter::emit(std::span<const std::uint8_t> bytes)
{
    if (bytes.empty())
        return;
    m_sink(bytes);
    m_offset += bytes.size();
}

void TorchZipWriter::addRecord(const std::string &name, std::span<const std::uint8_t> data)
{
    beginRecord(name);
    append(data);
    endRecord();
}

void TorchZipWriter::beginRecord(const std::string &name)
{
    if (m_open || m_finished)
        throw FormatError("zip writer: a record is already open or the archive is finished");
    const std::string full = m_folder + "/" + name;
    if (full.size() > 0xFFFF)
        throw FormatError("zip writer: record name too long");
    Entry e;
    e.name = full;
    e.offset = m_offset;
    std::string h;
    le(h, 0x04034b50, 4);
    le(h, 0, 2); // version needed (as PyTorch's writer)
    le(h, kFlags, 2);
    le(h, 0, 2); // stored
    le(h, 0, 2); // time
    le(h, 0, 2); // date
    le(h, 0, 4); // crc: in the descriptor
    le(h, 0, 4);
    le(h, 0, 4);
    le(h, full.size(), 2);
    // Pad with an "FB" extra field so that the data starts on a 64-byte boundary.
    const std::uint64_t unpadded = m_offset + 30 + full.size() + 4;
    std::uint64_t pad = (kAlignment - unpadded % kAlignment) % kAlignment;
    le(h, 4 + pad, 2);
    h += full;
    le(h, 0x4246, 2); // "FB"
    le(h, pad, 2);
    h.append(pad, 'Z');
    emit(h);
    m_entries.push_back(std::move(e));
    m_open = true;
}

void TorchZipWriter::append(std::span<const std::uint8_t> data)
{
    if (!m_open)
        throw FormatError("zip writer: no record is open");
    auto &e = m_entries.back();
    e.crc = crc32Of(data, e.crc);
    e.size += data.size();
    emit(data);
}

std::uint32_t TorchZipWriter::endRecord()
{
    if (!m_open)
        throw FormatError("zip writer: no record is open");
    const auto &e = m_entries.back();
    std::string d;
    le(d, 0x08074b50, 4);
    le(d, e.crc, 4);
    const bool big = e.size >= m_threshold;
    le(d, e.size, big ? 8 : 4);
    le(d, e.size, big ? 8 : 4);
    emit(d);
    m_open = false;
    return e.crc;
}

void TorchZipWriter::finish()
{
    if (m_open || m_finished)
        throw FormatError("zip writer: a record is still open or the archive is finished");
    const std::uint64_t cdOffset = m_offset;
    for (const auto &e : m_entries) {
        const bool bigSize = e.size >= m_threshold;
        const bool bigOffset = e.offset >= m_threshold;
        std::string extra;
        if (bigSize || bigOffset) {
            std::string fields;
            if (bigSize) {
                le(fields, e.size, 8);
                le(fields, e.size, 8);
            }
            if (bigOffset)
                le(fields, e.offset, 8);
            le(extra, 0x0001, 2);
            le(extra, fields.size(), 2);
            extra += fields;
        }
        std::string c;
        le(c, 0x02014b50, 4);
        le(c, (bigSize || bigOffset) ? kVersionZip64 : 0, 2); // made by
        le(c, (bigSize || bigOffset) ? kVersionZip64 : 0, 2); // needed
        le(c, kFlags, 2);
        le(c, 0, 2);
        le(c, 0, 2);
        le(c, 0, 2);
        le(c, e.crc, 4);
        le(c, bigSize ? 0xFFFFFFFFu : e.size, 4);
        le(c, bigSize ? 0xFFFFFFFFu : e.size, 4);
        le(c, e.name.size(), 2);
        le(c, extra.size(), 2);
        le(c, 0, 2); // comment
        le(c, 0, 2); // disk
        le(c, 0, 2); // internal attributes
        le(c, 0, 4); // external attributes
        le(c, bigOffset ? 0xFFFFFFFFu : e.offset, 4);
        c += e.name;
        c += extra;
        emit(c);
    }
    const std::uint64_t cdSize = m_offset - cdOffset;
    const std::uint64_t eocd64 = m_offset;
    std::string z;
    le(z, 0x06064b50, 4);
    le(z, 44, 8);
    le(z, kVersionZip64, 2);
    le(z, kVersionZip64, 2);
    le(z, 0, 4);
    le(z, 0, 4);
    le(z, m_entries.size(), 8);
    le(z, m_entries.size(), 8);
    le(z, cdSize, 8);
    le(z, cdOffset, 8);
    le(z, 0x07064b50, 4); // locator
    le(z, 0, 4);
    le(z, eocd64, 8);
    le(z, 1, 4);
    le(z, 0x06054b50, 4); // end of central directory
    le(z, 0, 2);
    le(z, 0, 2);
    const std::uint64_t n = m_entries.size() >= 0xFFFF ? 0xFFFF : m_entries.size();
    le(z, n, 2);
    le(z, n, 2);
    le(z, cdSize >= m_threshold ? 0xFFFFFFFFu : cdSize, 4);
    le(z, cdOffset >= m_threshold ? 0xFFFFFFFFu : cdOffset, 4);
    le(z, 0, 2);
    emit(z);
    m_finished = true;
}

} // namespace ckpt
