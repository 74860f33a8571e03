#!/usr/bin/env bash
# Installs every Debian package Checkpoint Studio needs to build, run and test. Idempotent: when
# everything is present it changes nothing and does not touch the network. Works as root or sudo.
set -euo pipefail

PACKAGES=(
    build-essential cmake ninja-build ccache lld pkg-config
    qt6-base-dev qt6-base-dev-tools qt6-charts-dev libqt6opengl6-dev libgl-dev
    libtorch-dev nlohmann-json3-dev libcli11-dev zlib1g-dev libstb-dev libjpeg62-turbo-dev
    python3-torch python3-numpy python3-pil
    xvfb xauth imagemagick
    dpkg-dev file lintian desktop-file-utils appstream shared-mime-info xdg-utils man-db
    libfile-mimeinfo-perl
    clang
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages are installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
