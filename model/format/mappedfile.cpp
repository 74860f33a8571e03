#include "mappedfile.h"

#include "error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt {

std::shared_ptr<MappedFile> MappedFile::open(const std::string &path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw FormatError(std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        throw FormatError(std::string("cannot stat: ") + std::strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw FormatError("is a directory");
    }
    std::shared_ptr<MappedFile> f(new MappedFile);
    f->m_path = path;
    f->m_size = static_cast<std::size_t>(st.st_size);
    if (f->m_size > 0) {
        void *p = ::mmap(nullptr, f->m_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            throw FormatError(std::string("cannot map: ") + std::strerror(e));
        }
        f->m_map = p;
        f->m_data = static_cast<const std::uint8_t *>(p);
    }
    ::close(fd);
    return f;
}

std::shared_ptr<MappedFile> MappedFile::fromBytes(std::string bytes, std::string name)
{
    std::shared_ptr<MappedFile> f(new MappedFile);
    f->m_path = std::move(name);
    f->m_owned = std::move(bytes);
    f->m_data = reinterpret_cast<const std::uint8_t *>(f->m_owned.data());
    f->m_size = f->m_owned.size();
    return f;
}

MappedFile::~MappedFile()
{
    if (m_map)
        ::munmap(m_map, m_size);
}

} // namespace ckpt
