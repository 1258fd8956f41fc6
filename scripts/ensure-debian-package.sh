#!/usr/bin/env bash
# Usage: ensure-debian-package.sh PACKAGE PATH WHAT
# Tests need some tools from Debian (chromium for the browser journeys, softhsm2 for the HSM
# tests). When PATH is missing, install PACKAGE if this user may (root with apt-get); otherwise
# say what to do — the tests that need it then skip with that message (under CI=1 they fail).
set -u
package="$1" probe="$2" what="$3"
if [ -e "$probe" ] || command -v "$probe" >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing $package for $what (apt-get install $package)…"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null \
    && exit 0
fi
echo "$package is not installed: $what will be skipped (Debian: apt-get install $package)." >&2
exit 0
