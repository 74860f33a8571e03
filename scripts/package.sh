#!/usr/bin/env bash
# Builds the Debian package and the .tar.gz with CPack (see installer/README.md). Installs the
# missing Debian packages, configures and builds the preset given (dev by default; release for a
# build without tests), then packages. The files land in build/<preset>/packages/.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-dev}
case $preset in
    dev | release) ;;
    *) echo "usage: scripts/package.sh [dev|release]" >&2; exit 2 ;;
esac
scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
out=$PWD/build/$preset/packages
cpack --config "build/$preset/CPackConfig.cmake" -B "$out"
rm -rf "$out/_CPack_Packages"
ls -l "$out"/*.deb "$out"/*.tar.gz
