#pragma once

#include "error.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt {

// Reads the members of a POSIX (ustar/PAX) tar archive in place: torch 0.1.x checkpoints.
class TarArchive {
public:
    static constexpr std::size_t kMaxMembers = 1u << 16;

    struct Member {
        std::string name;
        std::uint64_t offset = 0;  // of its data in the archive
        std::uint64_t size = 0;
    };

    // Thrown when tarfile takes the first header but refuses the archive after it (a GNU or PAX
    // record with no header following): torch.load then reads the file as a pickle stream.
    class NotATar : public FormatError {
    public:
        using FormatError::FormatError;
    };

    // True when the bytes start with a tar header Python's tarfile would take (ustar or older).
    static bool looksLikeTar(std::span<const std::uint8_t> data);
    // Lists the files Python's tarfile would (see the .cpp); throws FormatError on a malformed header,
    // a name that appears twice, PAX records that rename or resize a member, or a GNU sparse file.
    explicit TarArchive(std::span<const std::uint8_t> data);

    const std::vector<Member> &members() const { return m_members; }
    const Member *find(const std::string &name) const;
    std::span<const std::uint8_t> bytes(const Member &m) const;

private:
    std::span<const std::uint8_t> m_data;
    std::vector<Member> m_members;
};

} // namespace ckpt
