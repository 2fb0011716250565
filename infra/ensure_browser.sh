#!/usr/bin/env bash
# Headless Chromium + chromedriver for the report's browser test (tests/report).
# Idempotent: does nothing when /usr/bin/chromium and /usr/bin/chromedriver exist. The
# Makefile stamps it (re-run only when this script changes). Never fails the install:
# without a browser the browser test is skipped with the reason.
set -uo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
DRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
if [ -x "$CHROMIUM" ] && [ -x "$DRIVER" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_browser: apt-get is not available; install Chromium and chromedriver yourself" \
       "(expected at $CHROMIUM and $DRIVER) to run the report's browser test (it is skipped otherwise)." >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "ensure_browser: not root and no password-less sudo; run 'apt-get install -y chromium chromium-driver'" \
         "as root to enable the report's browser test (it is skipped otherwise)." >&2
    exit 0
  fi
fi
echo "ensure_browser: installing chromium and chromium-driver with apt-get ..." >&2
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
         chromium chromium-driver >/dev/null; }; then
  echo "ensure_browser: apt-get install chromium chromium-driver failed; the report's browser test will be skipped." >&2
  exit 0
fi
"$CHROMIUM" --version >&2 || true
