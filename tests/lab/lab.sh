#!/usr/bin/env bash
# Network-namespace test lab: devices (OpenSSH or dropbear) and iperf3 servers, each in its own
# namespace, joined by a bridge in the root namespace (10.203.N.1/24), with tc shaping and
# nftables loss. tests/lab/lab.ts drives this script; people can use it by hand too.
#
#   lab.sh create NAME N OWNER_PID          bridge, state dir, client key
#   lab.sh add-device NAME ID HOST SSH [--rate MBIT] [--no-iperf3] [--env K=V]... [--sshd-option LINE]...
#                                           SSH is openssh|dropbear; password from $IPL_LAB_PASSWORD
#   lab.sh add-server NAME ID HOST PORT [--auth USER]   password from $IPL_LAB_PASSWORD
#   lab.sh set-rate NAME ID MBIT|off        tbf on both ends of the host's link
#   lab.sh set-loss NAME SERVER DEVICE PERCENT upload|download
#   lab.sh stop|start NAME ID               the host's daemon (sshd/dropbear or iperf3 -s)
#   lab.sh rotate-host-key NAME ID          new host key, daemon restarted; prints fingerprint
#   lab.sh destroy NAME                     removes everything of one lab (idempotent)
#   lab.sh cleanup [--all]                  removes labs whose owner process is gone (or all)
#
# Names: lab NAME is [a-z][a-z0-9]{0,6} (interface names are limited to 15 characters);
# namespaces are ipl-NAME-ID, interfaces ipl-NAME-br and ipl-NAME-HOST (HOST = last octet).
# Output for callers: key=value lines on stdout; diagnostics on stderr.
set -euo pipefail

LAB_ROOT=${IPL_LAB_ROOT:-/tmp/ipl-lab}
LAB_USER=ipl
LAB_UID=64203
FULL_PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin

die() { echo "lab.sh: $*" >&2; exit 1; }

# a zombie counts as gone: detached daemons are reaped by init, which may take a while
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }

# sh single-quote quoting, for the generated login shell
shq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

check_name() { [[ $1 =~ ^[a-z][a-z0-9]{0,6}$ ]] || die "lab name '$1' must match [a-z][a-z0-9]{0,6}"; }
check_id() { [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "host id '$1' must match [a-z0-9][a-z0-9-]{0,30}"; }

lab_dir() { echo "$LAB_ROOT/$1"; }
host_dir() { echo "$LAB_ROOT/$1/hosts/$2"; }
need_lab() { [ -d "$(lab_dir "$1")" ] || die "no lab '$1' (create it first)"; }
need_host() {
  need_lab "$1"
  [ -d "$(host_dir "$1" "$2")" ] || die "lab '$1' has no host '$2'"
}
# reads one state value of a host
hget() { cat "$(host_dir "$1" "$2")/$3"; }

subnet_of() { cat "$(lab_dir "$1")/subnet"; }

wait_listening() { # NS PORT PIDFILE LOG
  local i
  for ((i = 0; i < 250; i++)); do
    if [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ]; then return 0; fi
    if ! alive "$(cat "$3")"; then
      die "daemon in $1 exited before listening on port $2: $(tail -n 5 "$4" 2>/dev/null)"
    fi
    sleep 0.02
  done
  die "daemon in $1 is not listening on port $2 after 5 s: $(tail -n 5 "$4" 2>/dev/null)"
}

# Starts a daemon detached (own session, output to a log) so that callers' pipes close.
spawn_daemon() { # PIDFILE LOG NS argv...
  local pidfile=$1 log=$2 ns=$3
  shift 3
  setsid ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
}

stop_pid() { # PIDFILE
  local pid i
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  rm -f "$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || return 0
    sleep 0.02
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_create() {
  local name=$1 n=$2 owner=$3 dir br used
  check_name "$name"
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 254)) || die "subnet number '$n' must be 1-254"
  dir=$(lab_dir "$name")
  if [ -d "$dir" ]; then
    local old
    old=$(cat "$dir/owner" 2>/dev/null || echo 0)
    if [ "$old" != "$owner" ] && alive "$old"; then
      die "lab '$name' is in use by process $old; pick another name"
    fi
  fi
  cmd_destroy "$name" # leftovers of a crashed run
  # check-and-claim of the subnet must be atomic among concurrent creates
  exec 9>"${LAB_ROOT%/*}/ipl-lab.lock"
  flock 9
  used=$(ip -o -4 addr show | awk -v p="10.203.$n." 'index($4, p) == 1 { print $2 }')
  [ -z "$used" ] || die "subnet 10.203.$n.0/24 is already used by interface $used; pass another subnet number"
  mkdir -p "$dir/hosts" "$dir/client"
  echo "$owner" >"$dir/owner"
  echo "$n" >"$dir/subnet"
  br="ipl-$name-br"
  # nf_call_* 0: bridged lab traffic must not depend on the host's firewall
  ip link add "$br" type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0
  ip addr add "10.203.$n.1/24" dev "$br"
  ip link set "$br" up
  flock -u 9
  ssh-keygen -q -t ed25519 -N '' -C "ipl-lab-$name" -f "$dir/client/id_ed25519"
  echo "dir=$dir"
  echo "bridge=$br"
  echo "gateway=10.203.$n.1"
  echo "client_key=$dir/client/id_ed25519"
}

# namespace + veth + address; prints nothing
add_host() { # NAME ID HOST KIND
  local name=$1 id=$2 h=$3 kind=$4 n dir ns veth
  need_lab "$name"
  check_id "$id"
  [[ $h =~ ^[0-9]+$ ]] && ((h >= 2 && h <= 254)) || die "host number '$h' must be 2-254"
  n=$(subnet_of "$name")
  dir=$(host_dir "$name" "$id")
  [ ! -e "$dir" ] || die "lab '$name' already has a host '$id'"
  ns="ipl-$name-$id"
  veth="ipl-$name-$h"
  mkdir -p "$dir"
  echo "$kind" >"$dir/kind"
  echo "$ns" >"$dir/ns"
  echo "$veth" >"$dir/veth"
  echo "10.203.$n.$h" >"$dir/ip"
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "ipl-$name-br" up
  ip -n "$ns" addr add "10.203.$n.$h/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "10.203.$n.1"
}

host_fingerprint() { # NAME ID
  local dir
  dir=$(host_dir "$1" "$2")
  if [ "$(hget "$1" "$2" ssh)" = openssh ]; then
    ssh-keygen -lf "$dir/hostkey.pub" | awk '{ print $2 }'
  else
    dropbearkey -y -f "$dir/hostkey" | grep '^ssh-' | ssh-keygen -lf - | awk '{ print $2 }'
  fi
}

make_host_key() { # NAME ID
  local dir
  dir=$(host_dir "$1" "$2")
  rm -f "$dir/hostkey" "$dir/hostkey.pub"
  if [ "$(hget "$1" "$2" ssh)" = openssh ]; then
    ssh-keygen -q -t ed25519 -N '' -C "ipl-lab-host" -f "$dir/hostkey"
  else
    dropbearkey -t ed25519 -f "$dir/hostkey" >/dev/null 2>&1
  fi
}

cmd_add_device() {
  local name=$1 id=$2 h=$3 ssh=$4
  shift 4
  local rate="" iperf3=1 envs=() sshd_opts=() dir ns path etcdir hash home
  while [ $# -gt 0 ]; do
    case $1 in
      --rate) rate=$2; shift 2 ;;
      --no-iperf3) iperf3=0; shift ;;
      --env) envs+=("$2"); shift 2 ;;
      --sshd-option) sshd_opts+=("$2"); shift 2 ;;
      *) die "add-device: unknown option '$1'" ;;
    esac
  done
  [[ $ssh == openssh || $ssh == dropbear ]] || die "ssh server '$ssh' must be openssh or dropbear"
  add_host "$name" "$id" "$h" device
  dir=$(host_dir "$name" "$id")
  ns=$(hget "$name" "$id" ns)
  echo "$ssh" >"$dir/ssh"
  home="$dir/home"
  mkdir -p "$home/.ssh"
  cp "$(lab_dir "$name")/client/id_ed25519.pub" "$home/.ssh/authorized_keys"
  chmod 700 "$home" "$home/.ssh"
  chmod 600 "$home/.ssh/authorized_keys"
  chown -R "$LAB_UID:$LAB_UID" "$home"

  # The lab user's login shell fixes PATH (so a device can lack iperf3) and extra variables.
  path=$FULL_PATH
  if [ $iperf3 = 0 ]; then
    mkdir -p "$dir/bin"
    cp -s /usr/bin/* "$dir/bin/" 2>/dev/null || true
    rm -f "$dir/bin"/iperf3*
    path="$dir/bin:/usr/sbin:/sbin"
  fi
  {
    echo '#!/bin/sh'
    echo "PATH=$(shq "$path"); export PATH"
    local kv
    for kv in "${envs[@]}"; do
      [[ ${kv%%=*} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env '${kv%%=*}' is not a variable name"
      echo "${kv%%=*}=$(shq "${kv#*=}"); export ${kv%%=*}"
    done
    echo 'exec /bin/sh "$@"'
  } >"$dir/shell"
  chmod 755 "$dir/shell"

  # `ip netns exec` bind-mounts /etc/netns/NS/* over /etc: the user exists only in this namespace.
  etcdir="/etc/netns/$ns"
  mkdir -p "$etcdir"
  hash='*'
  if [ -n "${IPL_LAB_PASSWORD:-}" ]; then
    hash=$(printf '%s' "$IPL_LAB_PASSWORD" | openssl passwd -6 -stdin)
    echo 1 >"$dir/password"
  fi
  { cat /etc/passwd; echo "$LAB_USER:x:$LAB_UID:$LAB_UID:ipl lab:$home:$dir/shell"; } >"$etcdir/passwd"
  { cat /etc/group; echo "$LAB_USER:x:$LAB_UID:"; } >"$etcdir/group"
  { cat /etc/shadow; echo "$LAB_USER:$hash:19000:0:99999:7:::"; } >"$etcdir/shadow"
  chmod 640 "$etcdir/shadow"
  { cat /etc/shells; echo "$dir/shell"; } >"$etcdir/shells"

  if [ "$ssh" = openssh ]; then
    mkdir -p /run/sshd
    chmod 755 /run/sshd
    {
      echo "Port 22"
      echo "HostKey $dir/hostkey"
      echo "PidFile none"
      echo "AuthorizedKeysFile $home/.ssh/authorized_keys"
      echo "StrictModes no"
      echo "UsePAM no"
      echo "PermitRootLogin no"
      echo "AllowUsers $LAB_USER"
      echo "KbdInteractiveAuthentication no"
      if [ -f "$dir/password" ]; then echo "PasswordAuthentication yes"; else echo "PasswordAuthentication no"; fi
      echo "MaxStartups 100:30:200"
      echo "LogLevel VERBOSE"
      local line
      for line in "${sshd_opts[@]}"; do echo "$line"; done
    } >"$dir/sshd_config"
  else
    [ ${#sshd_opts[@]} = 0 ] || die "--sshd-option is for openssh devices only"
  fi
  make_host_key "$name" "$id"
  [ -z "$rate" ] || cmd_set_rate "$name" "$id" "$rate"
  start_daemon "$name" "$id"
  echo "ns=$ns"
  echo "ip=$(hget "$name" "$id" ip)"
  echo "user=$LAB_USER"
  echo "fingerprint=$(host_fingerprint "$name" "$id")"
}

cmd_add_server() {
  local name=$1 id=$2 h=$3 port=$4
  shift 4
  local user="" dir hash
  while [ $# -gt 0 ]; do
    case $1 in
      --auth) user=$2; shift 2 ;;
      *) die "add-server: unknown option '$1'" ;;
    esac
  done
  [[ $port =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) || die "port '$port' must be 1-65535"
  add_host "$name" "$id" "$h" server
  dir=$(host_dir "$name" "$id")
  echo "$port" >"$dir/port"
  if [ -n "$user" ]; then
    [[ $user =~ ^[A-Za-z0-9_.-]+$ ]] || die "iperf3 user '$user' must match [A-Za-z0-9_.-]+"
    [ -n "${IPL_LAB_PASSWORD:-}" ] || die "add-server --auth needs the password in IPL_LAB_PASSWORD"
    openssl genrsa -out "$dir/private.pem" 2048 2>/dev/null
    openssl rsa -in "$dir/private.pem" -pubout -out "$dir/public.pem" 2>/dev/null
    hash=$(printf '{%s}%s' "$user" "$IPL_LAB_PASSWORD" | sha256sum | awk '{ print $1 }')
    echo "$user,$hash" >"$dir/users.csv"
    echo "public_key=$dir/public.pem"
  fi
  start_daemon "$name" "$id"
  echo "ns=$(hget "$name" "$id" ns)"
  echo "ip=$(hget "$name" "$id" ip)"
}

start_daemon() { # NAME ID
  local name=$1 id=$2 dir ns port
  need_host "$name" "$id"
  dir=$(host_dir "$name" "$id")
  ns=$(hget "$name" "$id" ns)
  if [ -f "$dir/daemon.pid" ] && alive "$(cat "$dir/daemon.pid")"; then return 0; fi
  if [ "$(hget "$name" "$id" kind)" = server ]; then
    port=$(hget "$name" "$id" port)
    local auth=()
    if [ -f "$dir/users.csv" ]; then
      auth=(--rsa-private-key-path "$dir/private.pem" --authorized-users-path "$dir/users.csv")
    fi
    # --idle-timeout: a server left in a test whose client vanished (killed mid-start on a loaded
    # machine) says "busy" to everyone until restarted; this restarts it after 10 s of silence
    spawn_daemon "$dir/daemon.pid" "$dir/daemon.log" "$ns" iperf3 -s -p "$port" --idle-timeout 10 "${auth[@]}"
  else
    port=22
    if [ "$(hget "$name" "$id" ssh)" = openssh ]; then
      spawn_daemon "$dir/daemon.pid" "$dir/daemon.log" "$ns" /usr/sbin/sshd -D -e -f "$dir/sshd_config"
    else
      local nopw=()
      [ -f "$dir/password" ] || nopw=(-s)
      spawn_daemon "$dir/daemon.pid" "$dir/daemon.log" "$ns" dropbear -F -E -r "$dir/hostkey" -p 22 "${nopw[@]}"
    fi
  fi
  wait_listening "$ns" "$port" "$dir/daemon.pid" "$dir/daemon.log"
}

cmd_stop() { need_host "$1" "$2"; stop_pid "$(host_dir "$1" "$2")/daemon.pid"; }

cmd_rotate_host_key() {
  need_host "$1" "$2"
  [ "$(hget "$1" "$2" kind)" = device ] || die "host '$2' is not a device"
  cmd_stop "$1" "$2"
  make_host_key "$1" "$2"
  start_daemon "$1" "$2"
  echo "fingerprint=$(host_fingerprint "$1" "$2")"
}

cmd_set_rate() {
  local name=$1 id=$2 rate=$3 ns veth burst
  need_host "$name" "$id"
  ns=$(hget "$name" "$id" ns)
  veth=$(hget "$name" "$id" veth)
  if [ "$rate" = off ]; then
    tc qdisc del dev "$veth" root 2>/dev/null || true
    tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
    return 0
  fi
  [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "rate '$rate' must be a number of Mbit/s or off"
  # burst: at least 10 ms worth of data so the bucket never limits below the rate
  burst=$(awk -v r="$rate" 'BEGIN { b = r * 1e6 / 8 / 100; if (b < 32768) b = 32768; printf "%d", b }')
  # bridge side egress = the device's download; device side egress = its upload
  tc qdisc replace dev "$veth" root tbf rate "${rate}mbit" burst "$burst" latency 50ms
  tc -n "$ns" qdisc replace dev eth0 root tbf rate "${rate}mbit" burst "$burst" latency 50ms
}

cmd_set_loss() {
  local name=$1 server=$2 device=$3 percent=$4 direction=$5 at from
  need_host "$name" "$server"
  need_host "$name" "$device"
  [ "$(hget "$name" "$server" kind)" = server ] || die "host '$server' is not a server"
  [ "$(hget "$name" "$device" kind)" = device ] || die "host '$device' is not a device"
  [[ $percent =~ ^[0-9]+$ ]] && ((percent <= 100)) || die "loss percent '$percent' must be an integer 0-100"
  # Dropped at the receiver's input: dropping in the sender's output hook would make its
  # sendto() fail with EPERM instead of losing the packet.
  case $direction in
    upload) at=$server from=$device ;;
    download) at=$device from=$server ;;
    *) die "direction '$direction' must be upload or download" ;;
  esac
  local dir ns f rules=""
  dir=$(host_dir "$name" "$at")
  ns=$(hget "$name" "$at" ns)
  mkdir -p "$dir/loss"
  if [ "$percent" = 0 ]; then rm -f "$dir/loss/$from"; else echo "$percent" >"$dir/loss/$from"; fi
  # rebuild the host's whole table from its state files, in one atomic nft transaction
  for f in "$dir"/loss/*; do
    [ -e "$f" ] || continue
    rules+="    ip saddr $(hget "$name" "${f##*/}" ip) meta l4proto udp numgen random mod 100 < $(cat "$f") drop"$'\n'
  done
  ip netns exec "$ns" nft -f - <<EOF
table inet ipl_loss {}
delete table inet ipl_loss
table inet ipl_loss {
  chain input {
    type filter hook input priority 0; policy accept;
$rules  }
}
EOF
}

kill_namespace() { # NS
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  ip netns del "$1" 2>/dev/null || true
  rm -rf "/etc/netns/$1"
}

cmd_destroy() {
  local name=$1 ns link
  check_name "$name"
  for ns in $(ip netns list | awk '{ print $1 }' | grep "^ipl-$name-" || true); do
    kill_namespace "$ns"
  done
  for link in $(ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' | grep "^ipl-$name-" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  rm -rf "$(lab_dir "$name")"
}

cmd_cleanup() {
  local all=0 names name owner
  [ "${1:-}" != --all ] || all=1
  names=$( {
    ls "$LAB_ROOT" 2>/dev/null || true
    ip netns list | awk '{ print $1 }' | grep '^ipl-' | cut -d- -f2 || true
    ip -o link show | awk -F': ' '{ print $2 }' | grep '^ipl-' | cut -d- -f2 || true
  } | sort -u)
  for name in $names; do
    [[ $name =~ ^[a-z][a-z0-9]{0,6}$ ]] || continue
    owner=$(cat "$(lab_dir "$name")/owner" 2>/dev/null || echo 0)
    if [ $all = 1 ] || ! alive "$owner"; then
      cmd_destroy "$name"
      echo "removed=$name"
    fi
  done
}

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"
cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  create) [ $# = 3 ] || die "usage: create NAME N OWNER_PID"; cmd_create "$@" ;;
  add-device) [ $# -ge 4 ] || die "usage: add-device NAME ID HOST openssh|dropbear [options]"; cmd_add_device "$@" ;;
  add-server) [ $# -ge 4 ] || die "usage: add-server NAME ID HOST PORT [--auth USER]"; cmd_add_server "$@" ;;
  set-rate) [ $# = 3 ] || die "usage: set-rate NAME ID MBIT|off"; cmd_set_rate "$@" ;;
  set-loss) [ $# = 5 ] || die "usage: set-loss NAME SERVER DEVICE PERCENT upload|download"; cmd_set_loss "$@" ;;
  stop) [ $# = 2 ] || die "usage: stop NAME ID"; cmd_stop "$@" ;;
  start) [ $# = 2 ] || die "usage: start NAME ID"; start_daemon "$@" ;;
  rotate-host-key) [ $# = 2 ] || die "usage: rotate-host-key NAME ID"; cmd_rotate_host_key "$@" ;;
  destroy) [ $# = 1 ] || die "usage: destroy NAME"; cmd_destroy "$@" ;;
  cleanup) cmd_cleanup "$@" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
