#!/usr/bin/env bash
# Check that the services the test suite requires are reachable. A missing service is a
# failure (non-zero exit naming it), never a skip.
set -euo pipefail

TIMEOUT="${CHECK_SERVICES_TIMEOUT:-3}"

# name host port
SERVICES=(
  "PostgreSQL 127.0.0.1 5432"
  "NATS 127.0.0.1 4222"
)

missing=0
for entry in "${SERVICES[@]}"; do
  read -r name host port <<<"$entry"
  if timeout "$TIMEOUT" bash -c "exec 3<>/dev/tcp/${host}/${port}" 2>/dev/null; then
    echo "check-services: ${name} reachable at ${host}:${port}"
  else
    echo "check-services: ERROR: ${name} is not reachable at ${host}:${port}" \
         "(required by the test suite; start it before running the tests)" >&2
    missing=1
  fi
done

exit "$missing"
