#!/usr/bin/env bash
# From a fresh Debian 12 machine to a chat: install what is missing, build, profile and tune this host, then chat
# with the built-in random-weight demo model (generated into the cache dir on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
[ -x tools/fetch_tokenizer.sh ] && tools/fetch_tokenizer.sh
tools/build.sh -DMOEFORGE_TESTS=OFF   # the chat needs no test binaries; tools/test.sh turns them back on
# Host profile, then a one-minute kernel search for DeepSeek-V3/R1's shapes (the plan real models use; the
# random-weight demo has other shapes and runs on the documented defaults). Re-running resumes the search.
build/moeforge tune --budget "${MOEFORGE_TUNE_BUDGET:-60}"
exec build/moeforge run "$@"
