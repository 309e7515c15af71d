#!/usr/bin/env bash
# The README's test command: on a fresh Debian machine, as root, installs everything the tests
# need (apt, pip, npm ci, the Go host), builds, type-checks, lints and runs `npm test`, then
# prints `N passed, N failed`. CI (.ci/run) runs this same script. Not root: skips apt.
set -uo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

step() { echo; echo "=== $*"; }
fail() { echo "CI step failed: $*"; echo "0 passed, 1 failed"; exit 1; }

step "Debian packages"
if [ "$(id -u)" = 0 ]; then
  # arm64 libraries let qemu-user run the arm64 plugin executable (src/backend/arm64.test.ts);
  # prometheus (and its promtool) judges the collector's /metrics (collector/latestGauges.test.ts);
  # podman, runc, debootstrap, uidmap and iptables serve `npm run test:containers` and musl-tools the
  # iperf3 capture script: neither runs in CI, both are ready on a machine this script prepared
  dpkg --add-architecture arm64
  apt-get -o DPkg::Lock::Timeout=900 update -qq || fail "apt-get update"
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
    iperf3 openssh-server openssh-client dropbear-bin nftables iproute2 procps chromium postgresql prometheus \
    podman runc debootstrap uidmap iptables musl-tools \
    qemu-user-static libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64 \
    >/dev/null || fail "apt-get install"
fi

# Grafana's client side (grafana-plugin-sdk-go + hashicorp/go-plugin) that the plugin tests
# launch the executable with; modules come from the Go proxy, pinned by go.mod/go.sum. A cold
# compile takes minutes, so it runs in the background while npm installs and builds.
gohost_log=$(mktemp)
(cd tests/grafana-host && go build -buildvcs=false -o bin/grafana-host . && go build -buildvcs=false -o /dev/null ./testdata/sdkplugin \
  && go test -count=1 -run '^$' ./...) >"$gohost_log" 2>&1 &
gohost_build=$!
trap 'kill "$gohost_build" 2>/dev/null' EXIT

step "Python tools"
# schemathesis fuzzes the collector API from docs/openapi.json (tests/fuzz)
python3 -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5 || fail "pip install schemathesis"
command -v st >/dev/null || fail "schemathesis installed, but its st command is not on the PATH"

step "npm ci"
npm ci --no-audit --no-fund || fail "npm ci"

step "build"
npm run build || fail "npm run build"

step "grafana-host (go build, go test)"
wait "$gohost_build" || { cat "$gohost_log"; fail "go build in tests/grafana-host"; }
(cd tests/grafana-host && go test ./...) || fail "go test in tests/grafana-host"

step "typecheck"
npm run typecheck || fail "npm run typecheck"

step "lint"
npm run lint || fail "npm run lint"

step "tests (npm test)"
npm test
test_rc=$?

node scripts/coverage-summary.mjs || true
node scripts/junit-summary.mjs test-output/junit.xml
summary_rc=$?
if [ $test_rc -ne 0 ] || [ $summary_rc -ne 0 ]; then exit 1; fi
