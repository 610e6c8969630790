#!/usr/bin/env bash
# Build the trading page and the operations console (web/ -> web/dist/, served by the gateway,
# gateway/webui.py). npm packages come from the registry, pinned by web/package-lock.json
# (`npm ci`); the built files are not committed. Needs node >= 20 and npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../web"
command -v npm >/dev/null || { echo "build-web: ERROR: node and npm are required to build web/" >&2; exit 1; }
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund >/dev/null
fi
npm run --silent build >/dev/null
touch dist/.built
echo "build-web: pages built in web/dist"
