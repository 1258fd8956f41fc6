#!/usr/bin/env bash
# Installs the npm packages of the test OpenID provider (tests/identity_providers/oidc), exactly as
# its package-lock.json pins them. Without Node the SSO tests that need it skip with the reason
# (under CI=1 they fail instead).
set -u
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/identity_providers/oidc"
if ! command -v npm >/dev/null 2>&1; then
  bash "$(dirname "$0")/ensure-debian-package.sh" npm npm "the OpenID provider tests (Node.js)"
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is not installed: the OpenID provider tests will be skipped (Debian: apt-get install nodejs npm)." >&2
  exit 0
fi
if [ -d "$dir/node_modules/oidc-provider" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
  exit 0
fi
echo "Installing the test OpenID provider's npm packages (npm ci in tests/identity_providers/oidc)…"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || echo "npm ci failed: the OpenID provider tests will be skipped." >&2
exit 0
