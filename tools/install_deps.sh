#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages moeforge builds and tests with — only those that are missing.
# Idempotent: a second run installs nothing and takes a second. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ccache
  libxbyak-dev libzydis-dev libnuma-dev libhwloc-dev libfmt-dev libcli11-dev nlohmann-json3-dev doctest-dev
  libdnnl-dev   # oneDNN, only as the peer in `moeforge bench kernels --peer onednn`
  clang         # libFuzzer targets of the file readers and the tokenizer
)
# node/npm fetch DeepSeek-V3's tokenizer data and run the reference tokenizer; any install of them will do.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install_deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install_deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
