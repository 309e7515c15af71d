#!/bin/sh
# Generates the demo stack's secrets on first start (compose service `secrets-init`) into a
# shared volume: the collector API token, the collector's SSH key pair, the demo device's
# SSH host key and the PostgreSQL password of the scale-out profile. Existing files are kept,
# so restarts and recreated containers reuse them.
# Nothing here is ever committed: every `docker compose up` on a new host makes its own.
#   generate-secrets.sh <dir> [collector-uid]
set -eu
dir="${1:?usage: generate-secrets.sh <dir> [collector-uid]}"
collector_uid="${2:-1000}" # the `node` user of the collector image (its group has the same id)
umask 077
mkdir -p "$dir"
if [ ! -s "$dir/api-token" ]; then
  # 32 random bytes as hex; written to a temporary name first so a crash leaves no half token
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$dir/api-token.tmp"
  mv "$dir/api-token.tmp" "$dir/api-token"
  echo "generated the collector API token"
fi
if [ ! -s "$dir/pg-password" ]; then
  # the PostgreSQL password of the scale-out profile (unused by the default stack)
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$dir/pg-password.tmp"
  mv "$dir/pg-password.tmp" "$dir/pg-password"
  echo "generated the PostgreSQL password"
fi
if [ ! -s "$dir/id_ed25519" ]; then
  rm -f "$dir/id_ed25519.pub"
  ssh-keygen -q -t ed25519 -N '' -C iperf3-collector-demo -f "$dir/id_ed25519"
  echo "generated the collector's SSH key"
fi
if [ ! -s "$dir/ssh_host_ed25519_key" ]; then
  rm -f "$dir/ssh_host_ed25519_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C demo-device -f "$dir/ssh_host_ed25519_key"
  echo "generated the demo device's SSH host key"
fi
# Grafana (uid 472) and the collector (uid 1000) read the token; only the collector reads its key;
# sshd insists on a host key readable by root only. The folder itself must be traversable.
chmod 0755 "$dir"
chmod 0444 "$dir/api-token" "$dir/id_ed25519.pub" "$dir/ssh_host_ed25519_key.pub"
chown "$collector_uid" "$dir/id_ed25519"
chmod 0400 "$dir/id_ed25519"
chown 0:0 "$dir/ssh_host_ed25519_key"
chmod 0600 "$dir/ssh_host_ed25519_key"
# PostgreSQL (uid 999 in the official image) reads its password as owner, the collectors
# (gid 1000, the `node` group) as group; nobody else.
chown 999:"$collector_uid" "$dir/pg-password"
chmod 0440 "$dir/pg-password"
