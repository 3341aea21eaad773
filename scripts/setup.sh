#!/usr/bin/env bash
# Everything a fresh Debian machine needs before `npm ci`: Apache ZooKeeper (tests, dev mode),
# the toolchain the native `zookeeper` addon compiles with (it ships no Linux prebuild), and
# Chromium for the dashboard's browser tests (puppeteer-core drives /usr/bin/chromium).
# Idempotent; installs only what is missing (as root, from Debian's archive).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-zookeeper.sh

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: build tools and chromium present (python3, make, g++, chromium)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: missing ${missing[*]}: install them (as root: apt-get install -y ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
echo "setup: installed ${missing[*]}"
