#include "crc.h"

#include <zlib.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace ckpt {

namespace {

std::uint32_t serialCrc(std::span<const std::uint8_t> b, std::uint32_t crc)
{
    for (std::size_t done = 0; done < b.size();) {
        const auto n = static_cast<uInt>(std::min<std::size_t>(b.size() - done, 1u << 30));
        crc = static_cast<std::uint32_t>(::crc32(crc, b.data() + done, n));
        done += n;
    }
    return crc;
}

} // namespace

std::uint32_t crc32Of(std::span<const std::uint8_t> bytes, std::uint32_t crc)
{
    constexpr std::size_t kMinPart = std::size_t{8} << 20;  // below this a thread costs more than it saves
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    const std::size_t parts = std::min<std::size_t>(cores, bytes.size() / kMinPart);
    if (parts < 2)
        return serialCrc(bytes, crc);
    const std::size_t step = bytes.size() / parts;
    std::vector<std::uint32_t> partCrc(parts, 0);
    std::vector<std::thread> threads;
    threads.reserve(parts - 1);
    auto range = [&](std::size_t i) {
        const std::size_t begin = i * step;
        const std::size_t end = i + 1 == parts ? bytes.size() : begin + step;
        return bytes.subspan(begin, end - begin);
    };
    for (std::size_t i = 1; i < parts; ++i)
        threads.emplace_back([&, i] { partCrc[i] = serialCrc(range(i), 0); });
    partCrc[0] = serialCrc(range(0), crc);
    for (auto &t : threads)
        t.join();
    std::uint32_t out = partCrc[0];
    for (std::size_t i = 1; i < parts; ++i)
        out = static_cast<std::uint32_t>(
            ::crc32_combine64(out, partCrc[i], static_cast<z_off64_t>(range(i).size())));
    return out;
}

} // namespace ckpt
