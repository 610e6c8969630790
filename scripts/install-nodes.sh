#!/usr/bin/env bash
# Install the nodes the tests run against (DESIGN.md: real parts):
#   - anvil (Foundry's local Ethereum node) from the npm package that ships its binary,
#     into the project-local .tools/ (not on PATH; tests find it there or via $ANVIL_BIN);
#   - litecoind + litecoin-cli (Debian's litecoind package: Bitcoin Core's codebase and RPC);
#   - nats-server (Debian's package): the cluster-mode tests start their own 3-node cluster;
#   - chromium (Debian's package): the browser tests (tests/test_web.py) drive it with
#     Playwright; Playwright never downloads a browser of its own;
#   - g++ (Debian's package): `kootabase bench engine --workload c` and tests/test_cppbook.py
#     compile the C++ book of bench/cppbook to run it beside the engine.
# Idempotent and quick when all are present. Exits non-zero if any cannot be installed:
# the tests fail, never skip, without their nodes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ANVIL_PKG="@foundry-rs/anvil-linux-amd64"
ANVIL_VERSION="${ANVIL_VERSION:-1.7.1}"
ANVIL_BIN=".tools/node_modules/${ANVIL_PKG}/bin/anvil"

if [[ -x "$ANVIL_BIN" ]] && "$ANVIL_BIN" --version 2>/dev/null | grep -q "$ANVIL_VERSION"; then
  echo "install-nodes: anvil ${ANVIL_VERSION} present (${ANVIL_BIN})"
else
  command -v npm >/dev/null || { echo "install-nodes: ERROR: npm is required for anvil" >&2; exit 1; }
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --no-save "${ANVIL_PKG}@${ANVIL_VERSION}" >/dev/null
  chmod +x "$ANVIL_BIN"
  "$ANVIL_BIN" --version | head -1
fi

# Debian packages. Another apt (an unattended upgrade, a second checkout installing at the
# same time) may hold dpkg's lock: wait for it instead of failing the install.
APT_LOCK_WAIT_S=600
apt_install() {
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_S" update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_S" \
    install -y -qq "$@" >/dev/null
}

if command -v litecoind >/dev/null && command -v litecoin-cli >/dev/null; then
  echo "install-nodes: litecoind present ($(command -v litecoind))"
else
  apt_install litecoind
  litecoind --version | head -1
fi

if command -v nats-server >/dev/null || [[ -x /usr/sbin/nats-server ]]; then
  echo "install-nodes: nats-server present ($(command -v nats-server || echo /usr/sbin/nats-server))"
else
  apt_install nats-server
  /usr/sbin/nats-server --version
fi

if command -v g++ >/dev/null; then
  echo "install-nodes: g++ present ($(command -v g++))"
else
  apt_install g++
  g++ --version | head -1
fi

if [[ -x /usr/bin/chromium ]]; then
  echo "install-nodes: chromium present (/usr/bin/chromium)"
else
  apt_install chromium
  /usr/bin/chromium --version
fi
