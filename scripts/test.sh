#!/usr/bin/env bash
# What `npm test` runs (and so what CI runs through .ci/run): system programs, typecheck, lint,
# every vitest suite, then ONE closing line `N passed, N failed[, N skipped]`, counted from
# vitest's JSON report by scripts/summarize-vitest.mjs, which also sets the exit status.
#
# A failed stage does not stop the run: typecheck and lint failures (and a failed system-deps
# step) are each counted as 1 failed entry in the closing line, and the tests still run, so one
# run shows everything that is wrong. The closing line is the last thing printed; stage
# time-stamps go to stderr before it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

t0=$(date +%s)
stamp() { printf '[test %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - t0))" "$*" >&2; }
failed_stages=()

stamp "system dependencies"
if ! bash scripts/ensure-system-deps.sh; then
  failed_stages+=("system-deps")
fi

# tsc and eslint are single-threaded and independent: on 2 cores they run side by side. Their
# output is kept and printed in order afterwards so the log stays readable.
stamp "typecheck and lint (in parallel)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx tsc -p tsconfig.json --noEmit >"$tmp/tsc.out" 2>&1 &
tsc_pid=$!
npx eslint . >"$tmp/eslint.out" 2>&1 &
eslint_pid=$!
wait "$tsc_pid"
tsc_rc=$?
wait "$eslint_pid"
eslint_rc=$?
if [[ $tsc_rc -ne 0 ]]; then
  cat "$tmp/tsc.out"
  echo "typecheck failed (tsc exit $tsc_rc)"
  failed_stages+=("typecheck")
fi
if [[ $eslint_rc -ne 0 ]]; then
  cat "$tmp/eslint.out"
  echo "lint failed (eslint exit $eslint_rc)"
  failed_stages+=("lint")
fi
stamp "typecheck $([[ $tsc_rc -eq 0 ]] && echo ok || echo FAILED), lint $([[ $eslint_rc -eq 0 ]] && echo ok || echo FAILED)"

# The web console (web/): typecheck and build into dist/web, which the API serves and the
# browser tests (test/console.browser.test.ts) load.
stamp "web console build"
if ! (npx tsc -p web/tsconfig.json && npx vite build --config web/vite.config.ts); then
  echo "web console build failed"
  failed_stages+=("web-build")
fi

stamp "vitest"
# A stale report from an earlier run must never be summarized as this run's result.
rm -f test-results.json
npx vitest run --reporter=default --reporter=json --outputFile=test-results.json
vitest_rc=$?
stamp "vitest exited $vitest_rc; total $(($(date +%s) - t0))s"

stage_args=()
for s in "${failed_stages[@]}"; do stage_args+=(--failed-stage "$s"); done
# Last line of the run; its exit status is ours.
exec node scripts/summarize-vitest.mjs test-results.json --vitest-exit "$vitest_rc" "${stage_args[@]}"
