#!/bin/bash
# steer.sh: the acceptance run of per-generation steering (traffic gate),
# through real nginx to the app's Unix socket (rename steering) and on TCP
# directly (BPF steering where the supervisor can load it, else shared):
#   1. hey -c 16 for 32 s while three releases answering 500 everywhere are
#      each reloaded and rolled back, then a good one swaps: requests,
#      non-2xx, socket errors, and how long after its first worker booted
#      each failing release was rejected;
#   2. twenty good swaps under unthrottled hey -c 16: median and maximum
#      time from `supctl reload` to the switch, beside the app's boot time
#      (command until its last worker imported the release).
# It runs test/e2e/steer's TestSteerAcceptance (build tag soak), which
# fails on any non-2xx answer or socket error, and prints its RESULT lines.
#
# Usage: bench/steer.sh        (needs gunicorn, flask, nginx, hey: scripts/deps.sh bench)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in go hey; do
	command -v "$tool" >/dev/null || { echo "steer.sh: $tool is missing" >&2; exit 1; }
done
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || { echo "steer.sh: nginx is missing" >&2; exit 1; }
out=$(mktemp /tmp/steerbench.XXXXXX)
trap 'rm -f "$out"' EXIT
status=0
go test -tags soak -count=1 -v -timeout 20m -run 'TestSteerAcceptance' ./test/e2e/steer/ >"$out" 2>&1 || status=$?
grep -E 'RESULT|rejected .* after|^(--- |=== RUN|ok|FAIL|PASS)' "$out" | sed -E 's/^ +//'
if [ "$status" != 0 ]; then
	echo "steer.sh: the run failed (exit $status); its log:" >&2
	cat "$out" >&2
fi
exit "$status"
