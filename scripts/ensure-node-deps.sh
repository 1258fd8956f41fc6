#!/usr/bin/env bash
# Installs the npm packages the tests use, exactly as each package-lock.json pins them: the test
# OpenID provider (tests/identity_providers/oidc) and axe-core for the browser journeys'
# accessibility checks (tests/journeys/axe). Without Node the tests that need them skip with the
# reason (under CI=1 they fail instead).
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v npm >/dev/null 2>&1; then
  bash "$(dirname "$0")/ensure-debian-package.sh" npm npm "the OpenID provider tests and the accessibility checks (Node.js)"
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is not installed: the OpenID provider tests and accessibility checks will be skipped (Debian: apt-get install nodejs npm)." >&2
  exit 0
fi
for entry in "tests/identity_providers/oidc:oidc-provider:the test OpenID provider" "tests/journeys/axe:axe-core:the journeys' accessibility checks"; do
  dir="$root/${entry%%:*}"; rest="${entry#*:}"; package="${rest%%:*}"; what="${rest#*:}"
  if [ -d "$dir/node_modules/$package" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    continue
  fi
  echo "Installing the npm packages of $what (npm ci in ${entry%%:*})…"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || echo "npm ci failed in ${entry%%:*}: $what will be skipped." >&2
done
exit 0
