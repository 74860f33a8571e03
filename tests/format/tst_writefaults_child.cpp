// Writes one file with writeFileAtomically, for tst_writefaults to run under the fault shim:
//   tst_writefaults_child TARGET SIZE SEED [keep]
// writes SIZE bytes (byte i = (i * 7 + SEED) mod 256) over TARGET (with `keep`, never over a file
// there: no --force); prints the error and exits 1 when the writer refuses.
#include "atomicwrite.h"
#include "error.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char **argv)
{
    const bool keep = argc == 5 && std::string(argv[4]) == "keep";
    if (argc != 4 && !keep) {
        std::fprintf(stderr, "usage: %s TARGET SIZE SEED [keep]\n", argv[0]);
        return 2;
    }
    const std::size_t size = std::strtoull(argv[2], nullptr, 10);
    const unsigned seed = static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10));
    std::vector<std::uint8_t> data(size);
    for (std::size_t i = 0; i < size; ++i)
        data[i] = static_cast<std::uint8_t>(i * 7 + seed);
    try {
        ckpt::writeFileAtomically(argv[1], data, ckpt::WriteOptions().allowOverwrite(!keep));
    } catch (const ckpt::FormatError &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
