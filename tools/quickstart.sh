#!/usr/bin/env bash
# From a fresh Debian 12 machine to a chat: install what is missing, build, profile and tune this host, then chat
# with the built-in random-weight demo model (generated into the cache dir on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
[ -x tools/fetch_tokenizer.sh ] && tools/fetch_tokenizer.sh
tools/build.sh
build/moeforge tune --host-only
exec build/moeforge run "$@"
