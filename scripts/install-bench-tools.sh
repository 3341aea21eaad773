#!/usr/bin/env bash
# Installs what `npm run bench` needs from Debian's archive when missing: wrk (load generator),
# nginx-light (the reference HTTP proxy) and haproxy (the reference TCP proxy). Idempotent; run
# as root.
set -euo pipefail
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
# The package may start a system nginx; the benchmark runs its own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx 2>/dev/null || true; fi
pkill -x nginx 2>/dev/null || true
if command -v systemctl >/dev/null 2>&1; then systemctl stop haproxy 2>/dev/null || true; fi
pkill -x haproxy 2>/dev/null || true
