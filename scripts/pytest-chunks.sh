#!/usr/bin/env bash
# The whole suite in a few pytest processes, one after the other, each on a contiguous slice of
# the test files (alphabetical order, as one process would run them).
#
# Why: every stopped test server leaves its engine tables (~230 MB) resident in the process
# (not Python objects: numpy buffers still referenced after the server is gone; the cause is not
# found yet), so the suite's ~750 tests in one process grew past the machine's 24 GB and were
# OOM-killed. Separate processes return that memory between slices. Any failing slice fails the
# run; the others still run so one failure does not hide the rest.
#
# With arguments (make test PYTEST_ARGS="..."), runs one pytest with exactly those arguments.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest "$@"
fi
chunks=${KOOTABASE_TEST_CHUNKS:-6}
mapfile -t files < <(ls tests/test_*.py | LC_ALL=C sort)
n=${#files[@]}
[ "$n" -gt 0 ] || { echo "pytest-chunks: no test files found" >&2; exit 1; }
per=$(( (n + chunks - 1) / chunks ))
status=0
for ((start = 0; start < n; start += per)); do
    part=("${files[@]:start:per}")
    echo "pytest-chunks: files $((start + 1))-$((start + ${#part[@]})) of $n"
    .venv/bin/python -m pytest -q "${part[@]}" || status=$?
done
exit "$status"
