#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace ckpt {

// Writes the zip container torch.save writes: records stored (uncompressed) under one folder,
// each record's data aligned to 64 bytes by padding in an extra field (ID "FB", as PyTorch's
// PyTorchStreamWriter does), general-purpose flags 0x0808 with the CRC and sizes in a data
// descriptor and the central directory, ZIP64 fields for records, offsets and directories at or
// past the threshold, and always the ZIP64 end records. Bytes go to `sink` as they are produced.
class TorchZipWriter {
public:
    using Sink = std::function<void(std::span<const std::uint8_t>)>;
    static constexpr std::uint64_t kZip64Threshold = 0xFFFFFFFFu;
    static constexpr std::uint64_t kAlignment = 64;

    // `zip64Threshold` is for tests: sizes and offsets at or past it use ZIP64 fields.
    explicit TorchZipWriter(Sink sink, std::string folder = "archive", std::uint64_t zip64Threshold = kZip64Threshold);

    // A whole record at once (data.pkl, version, byteorder).
    void addRecord(const std::string &name, std::span<const std::uint8_t> data);
    void addRecord(const std::string &name, const std::string &data)
    {
        addRecord(name, {reinterpret_cast<const std::uint8_t *>(data.data()), data.size()});
    }
    // A record written in chunks (a storage): begin, append any number of times, end.
    void beginRecord(const std::string &name);
    void append(std::span<const std::uint8_t> data);
    // Ends the record; returns its CRC-32 (as the zip records it).
    std::uint32_t endRecord();
    // Writes the central directory and end records. No record may follow.
    void finish();
    std::uint64_t bytesWritten() const { return m_offset; }

private:
    struct Entry {
        std::string name;
        std::uint64_t offset = 0;
        std::uint64_t size = 0;
        std::uint32_t crc = 0;
    };
    void emit(const std::string &bytes);
    void emit(std::span<const std::uint8_t> bytes);

    Sink m_sink;
    std::string m_folder;
    std::uint64_t m_threshold;
    std::uint64_t m_offset = 0;
    std::vector<Entry> m_entries;
    bool m_open = false;
    bool m_finished = false;
};

} // namespace ckpt
