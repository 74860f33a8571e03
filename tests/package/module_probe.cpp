// Loads the compute module through ComputeLoader, as the programs do, and prints the path of the
// file that was loaded (from /proc/self/maps) and LibTorch's version. Exit 1 when loading fails.
#include "computeloader.h"

#include <exception>
#include <fstream>
#include <iostream>
#include <string>

int main()
{
    try {
        const std::string torch = ckpt::ComputeLoader::api().torchVersion();
        std::ifstream maps("/proc/self/maps");
        std::string line;
        const std::string name = ckpt::ComputeLoader::moduleFileName();
        while (std::getline(maps, line)) {
            const auto slash = line.find('/');
            if (slash != std::string::npos && line.size() >= name.size()
                && line.compare(line.size() - name.size(), name.size(), name) == 0) {
                std::cout << "module " << line.substr(slash) << "\ntorch " << torch << "\n";
                return 0;
            }
        }
        std::cerr << "module_probe: the module loaded but is not in /proc/self/maps\n";
    } catch (const std::exception &e) {
        std::cerr << "module_probe: " << e.what() << "\n";
    }
    return 1;
}
