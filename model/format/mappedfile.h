#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace ckpt {

// A read-only memory mapping of a whole file. Tensor data are views on it, so it lives as long
// as any document or tensor reference that needs it (hold it by shared_ptr).
class MappedFile {
public:
    // Maps `path`; throws FormatError naming the file and the system's reason.
    static std::shared_ptr<MappedFile> open(const std::string &path);
    // Wraps bytes already in memory (tests, decompressed records); the mapping owns a copy.
    static std::shared_ptr<MappedFile> fromBytes(std::string bytes, std::string name = "<memory>");
    ~MappedFile();
    MappedFile(const MappedFile &) = delete;
    MappedFile &operator=(const MappedFile &) = delete;

    std::span<const std::uint8_t> bytes() const { return {m_data, m_size}; }
    std::size_t size() const { return m_size; }
    const std::string &path() const { return m_path; }

private:
    MappedFile() = default;
    std::string m_path;
    const std::uint8_t *m_data = nullptr;
    std::size_t m_size = 0;
    void *m_map = nullptr;
    std::string m_owned;
};

} // namespace ckpt
