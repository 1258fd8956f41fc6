#!/usr/bin/env bash
# Browser journeys run in Debian's Chromium (Playwright drives it; it never downloads a browser).
# Installs it when missing and this user may (root with apt-get); otherwise says what to do and
# the browser tests skip themselves with that message.
set -u
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Chromium for the browser journeys (apt-get install chromium)…"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    && exit 0
fi
echo "Chromium is not installed: the browser journeys will be skipped (Debian: apt-get install chromium)." >&2
exit 0
