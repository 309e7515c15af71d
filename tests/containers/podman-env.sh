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
runroot = "/run/iperf3-containers"
EOF
export CONTAINERS_CONF="$IPERF3_CONTAINERS_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$IPERF3_CONTAINERS_DIR/storage.conf"
