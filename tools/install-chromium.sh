#!/usr/bin/env bash
# Install Debian's `chromium` (headless browser used by tests/report/check_report.py to
# open the Snakemake HTML report). Idempotent: does nothing when chromium is installed.
# Runs apt-get as root directly, otherwise through sudo. Bounded in time.
set -euo pipefail

TIMEOUT_S="${CHROMIUM_INSTALL_TIMEOUT_S:-900}"

if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: apt-get not found; install Debian's 'chromium' package by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-chromium: not root and no sudo; run: apt-get install chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# package lists are needed once on a fresh machine
if ! apt-cache show --no-all-versions chromium >/dev/null 2>&1; then
  echo "install-chromium: apt-get update"
  $SUDO timeout "$TIMEOUT_S" apt-get update -qq
fi
echo "install-chromium: apt-get install chromium (one time, about 100 MB)"
if ! $SUDO timeout "$TIMEOUT_S" apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null; then
  echo "install-chromium: apt-get install chromium failed (or took over ${TIMEOUT_S}s)" >&2
  exit 1
fi
command -v chromium >/dev/null 2>&1 || {
  echo "install-chromium: chromium still not on PATH after install" >&2
  exit 1
}
echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
