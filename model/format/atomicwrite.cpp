#include "atomicwrite.h"

#include "error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt {

namespace {
std::string systemError(const std::string &path, const std::string &what)
{
    return path + ": " + what + ": " + std::strerror(errno);
}

bool sameFile(const std::string &a, const std::string &b)
{
    struct stat sa {}, sb {};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Removes the temporary file unless released: every failure leaves the folder as it was.
struct TempFile {
    std::string path;
    int fd = -1;
    ~TempFile()
    {
        if (fd >= 0)
            ::close(fd);
        if (!path.empty())
            ::unlink(path.c_str());
    }
};
} // namespace

void writeFileAtomically(const std::string &path, std::span<const std::uint8_t> data, const WriteOptions &options)
{
    for (const auto &input : options.inputs)
        if (sameFile(path, input))
            throw FormatError(path + ": is an input file; it is never overwritten");
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode))
            throw FormatError(path + ": is a directory");
        if (!options.overwrite)
            throw FormatError(path + ": already exists (use --force to replace it)");
    }
    const auto folder = std::filesystem::path(path).parent_path();
    TempFile tmp;
    std::string pattern = (folder.empty() ? std::filesystem::path(".") : folder) /
                          ("." + std::filesystem::path(path).filename().string() + ".XXXXXX");
    tmp.fd = ::mkstemp(pattern.data());
    if (tmp.fd < 0)
        throw FormatError(systemError(path, "cannot create a temporary file in its folder"));
    tmp.path = pattern;
    for (std::size_t done = 0; done < data.size();) {
        const ssize_t n = ::write(tmp.fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw FormatError(systemError(path, "cannot write"));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(tmp.fd) != 0)
        throw FormatError(systemError(path, "cannot flush to disk"));
    // Read back what the disk holds and compare before it takes the final name.
    if (::lseek(tmp.fd, 0, SEEK_SET) != 0)
        throw FormatError(systemError(path, "cannot read back"));
    std::vector<std::uint8_t> check(64 * 1024);
    for (std::size_t done = 0; done < data.size();) {
        const ssize_t n = ::read(tmp.fd, check.data(), std::min(check.size(), data.size() - done));
        if (n <= 0)
            throw FormatError(path + ": the written file is shorter than what was written");
        if (std::memcmp(check.data(), data.data() + done, static_cast<std::size_t>(n)) != 0)
            throw FormatError(path + ": the written file differs from what was written");
        done += static_cast<std::size_t>(n);
    }
    ::fchmod(tmp.fd, 0644);
    ::close(tmp.fd);
    tmp.fd = -1;
    if (::rename(tmp.path.c_str(), path.c_str()) != 0)
        throw FormatError(systemError(path, "cannot rename the finished file into place"));
    tmp.path.clear();  // renamed: nothing to remove
}

} // namespace ckpt
