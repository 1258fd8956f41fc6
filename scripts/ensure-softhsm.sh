#!/usr/bin/env bash
# The key tests run against a real PKCS#11 token: SoftHSM2 from Debian (the module
# /usr/lib/softhsm/libsofthsm2.so and softhsm2-util). Installs it when missing and this user may
# (root with apt-get); otherwise says what to do, and those tests skip with that message
# (outside CI: under CI=1 they fail instead).
set -u
if [ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing SoftHSM2 for the key tests (apt-get install softhsm2)…"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null \
    && exit 0
fi
echo "SoftHSM2 is not installed: the HSM tests will be skipped (Debian: apt-get install softhsm2)." >&2
exit 0
