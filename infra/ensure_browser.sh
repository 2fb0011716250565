#!/usr/bin/env bash
# Headless Chromium + chromedriver for the report's browser test (tests/report).
# Idempotent: does nothing when /usr/bin/chromium and /usr/bin/chromedriver exist. The
# Makefile stamps it (re-run only when this script changes). Never fails the install:
# without a browser the browser test is skipped with the reason.
set -uo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
DRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
bash "$(dirname "$0")/ensure_apt.sh" ensure_browser "the report's browser test is skipped" \
  "[ -x '$CHROMIUM' ] && [ -x '$DRIVER' ]" chromium chromium-driver
"$CHROMIUM" --version >&2 2>/dev/null || true
