#!/usr/bin/env bash
# `npm test`: every test file, then the leak check on its own, last. Node's runner orders the
# files it is given by itself, and the leak check must see the host after all the others (its
# last test asserts that no berth cgroup outlived the suite, then removes berth's parents).
set -u
cd "$(dirname "$0")/.."
node --import tsx --test --test-concurrency=1 test/unit/*.test.ts test/kernel/*.test.ts test/registry/*.test.ts test/cli/*.test.ts test/package/*.test.ts test/examples/*.test.ts
status=$?
node --import tsx --test test/leak-check.test.ts || status=1
exit "$status"
