#!/usr/bin/env bash
# Makes sure the report's browser tests (tests/reports/test_browser.py) have a chromium, before
# pytest runs; `make test` calls it. Prints the browser's path on stdout (the Makefile passes it
# to pytest as SOFTMAX_BENCH_CHROMIUM); everything else goes to stderr.
#
#   scripts/ensure-browser.sh [PYTHON]     PYTHON: the venv's python (default .venv/bin/python)
#
# 0. SOFTMAX_BENCH_CHROMIUM already names an executable: that one.
# 1. chromium (or chromium-browser) on PATH: nothing to do.
# 2. root with apt-get: Debian's chromium (apt-get update, apt-get install chromium).
# 3. otherwise Playwright's own download (python -m playwright install chromium), limited to
#    ENSURE_BROWSER_TIMEOUT seconds (default 120); it fails within seconds where the browser
#    CDNs cannot be reached.
# 4. none of these: one line on stderr saying what to install, exit 1.
set -uo pipefail

py=${1:-.venv/bin/python}
limit=${ENSURE_BROWSER_TIMEOUT:-120}

on_path() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null
}

# Playwright's chromium for this playwright version, if it is downloaded and starts.
playwright_chromium() {
    local exe
    exe=$("$py" -c 'from playwright.sync_api import sync_playwright
with sync_playwright() as p: print(p.chromium.executable_path)' 2>/dev/null) || return 1
    [ -x "$exe" ] && "$exe" --headless --no-sandbox --version >/dev/null 2>&1 || return 1
    echo "$exe"
}

if [ -n "${SOFTMAX_BENCH_CHROMIUM:-}" ] && [ -x "$SOFTMAX_BENCH_CHROMIUM" ]; then
    echo "$SOFTMAX_BENCH_CHROMIUM"
    exit 0
fi
on_path && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-browser: chromium is missing; installing Debian's chromium (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update && apt-get install -y --no-install-recommends chromium; } >&2
    on_path && exit 0
fi

if [ -x "$py" ]; then
    playwright_chromium && exit 0
    # timeout signals its whole process group: the Node driver that python starts goes too
    if timeout -k 5 "$limit" "$py" -m playwright install chromium >/dev/null 2>&1; then
        playwright_chromium && exit 0
    fi
fi

echo "make test: chromium is missing; install it with: sudo apt-get install chromium" \
     "(Debian/Ubuntu)" >&2
exit 1
