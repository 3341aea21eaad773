#!/usr/bin/env bash
# Installs Apache ZooKeeper from Debian's archive when it is missing. Idempotent.
# Java comes from the system (Debian's default-jre-headless is pulled in by the package).
set -euo pipefail

jar=/usr/share/java/zookeeper.jar
if [ -f "$jar" ] && command -v java >/dev/null 2>&1; then
  echo "install-zookeeper: ZooKeeper present ($jar)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-zookeeper: ZooKeeper is missing ($jar)." >&2
  echo "install-zookeeper: as root run: apt-get update && apt-get install -y --no-install-recommends zookeeper" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-zookeeper: no apt-get here; install Apache ZooKeeper 3.8 so that $jar exists, and a Java runtime." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends zookeeper >/dev/null
if [ ! -f "$jar" ]; then
  echo "install-zookeeper: apt-get installed 'zookeeper' but $jar is still missing" >&2
  exit 1
fi
# The package may start a system service; tests and dev mode run their own servers.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now zookeeper >/dev/null 2>&1 || true; fi
echo "install-zookeeper: installed $(dpkg-query -W -f='${Version}' zookeeper)"
