# Sourced by the container scripts: podman as it works on a machine without Docker, without
# registry access and with hybrid cgroups. Everything lives under $IPERF3_CONTAINERS_DIR
# (default /var/tmp/iperf3-containers), outside the repository: the containers.conf, podman's
# storage, the network definitions and the cached bases. tests/containers/podman.ts sets the
# same environment for the test.
IPERF3_CONTAINERS_DIR="${IPERF3_CONTAINERS_DIR:-/var/tmp/iperf3-containers}"
export IPERF3_CONTAINERS_DIR
mkdir -p "$IPERF3_CONTAINERS_DIR/storage" "$IPERF3_CONTAINERS_DIR/networks" "$IPERF3_CONTAINERS_DIR/cache"
chmod 0700 "$IPERF3_CONTAINERS_DIR"
# default_ulimits = []: podman's default nofile ulimit exceeds this machine's hard limit.
# runc: crun refuses the host's hybrid (v1 + v2) cgroups. The network definitions stay here too.
cat > "$IPERF3_CONTAINERS_DIR/containers.conf" <<EOF
[containers]
default_ulimits = []
[network]
network_backend = "netavark"
network_config_dir = "$IPERF3_CONTAINERS_DIR/networks"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat > "$IPERF3_CONTAINERS_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$IPERF3_CONTAINERS_DIR/storage"
runroot = "/run/iperf3-containers-$(echo "$IPERF3_CONTAINERS_DIR" | sha256sum | cut -c1-8)"
EOF
export CONTAINERS_CONF="$IPERF3_CONTAINERS_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$IPERF3_CONTAINERS_DIR/storage.conf"
# npm inside builds and containers: nodedir=/usr/local makes node-gyp compile native addons
# (better-sqlite3 in collector/Dockerfile) against the headers in the node image instead of
# downloading them from nodejs.org, which this machine cannot reach (nor GitHub, where the
# prebuilt binaries are); cafile is the host's CA bundle when the host's npm uses one (a
# TLS-inspecting egress proxy). The folder is mounted over /usr/local/etc, which is empty in the
# images, so nothing of it is left in a layer (tests/containers/podman.ts: npmMounts).
npm_etc="$IPERF3_CONTAINERS_DIR/npm-etc"
mkdir -p "$npm_etc"
host_cafile="$(npm config get cafile 2>/dev/null || true)"
case "$host_cafile" in ""|null|undefined) host_cafile="${NODE_EXTRA_CA_CERTS:-}" ;; esac
{
  echo "nodedir=/usr/local"
  if [ -n "$host_cafile" ] && [ -s "$host_cafile" ]; then
    cp "$host_cafile" "$npm_etc/host-ca.crt"
    echo "cafile=/usr/local/etc/host-ca.crt"
  else
    rm -f "$npm_etc/host-ca.crt"
  fi
} > "$npm_etc/npmrc"
npm_mounts=(--volume "$npm_etc:/usr/local/etc:ro")
