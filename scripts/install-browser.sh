#!/bin/sh
# Install Debian's Chromium for the leaderboard page's browser tests
# (tests/test_leaderboard_html.py drives it headless through Playwright's Python client,
# pointing it at this binary: no browser download from the Playwright CDN).
# Does nothing when a chromium binary is already on PATH. Needs root (or sudo) and apt-get.
set -eu

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser.sh: no apt-get here; install Chromium with your package manager" \
         "(or set THYROID_BENCH_CHROMIUM to its binary); the browser tests are skipped without it" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-browser.sh: run as root (apt-get install chromium needs it)" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium
echo "chromium installed: $(command -v chromium)"
