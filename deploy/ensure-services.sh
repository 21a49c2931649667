#!/usr/bin/env bash
# Makes sure the services PRH's tests and quickstart need are running on this Debian (or
# Ubuntu) machine, installing what is missing:
#
#   RabbitMQ    127.0.0.1:5672, login guest/guest (the broker's default, loopback only)
#   PostgreSQL  127.0.0.1:5432, user postgres with trust auth, database `test`
#
# and that cargo and a C toolchain are present. Idempotent: when everything already runs
# it changes nothing and prints one line per service. A service that already answers on
# its port (a system package, a container) is used as it is; nothing is installed for it.
#
# For development and CI machines only. It opens trust auth on loopback only in a
# PostgreSQL it installed itself, or when PRH_PG_TRUST=1 says so.
#
# Environment:
#   PRH_SKIP_SERVICES=1  do nothing at all (services are managed elsewhere)
#   PRH_SKIP_POSTGRES=1  leave PostgreSQL alone (the quickstart needs only RabbitMQ)
#   PRH_PG_TRUST=1       allow editing pg_hba.conf of a PostgreSQL installed earlier
#   PRH_WAIT_SECONDS     how long to wait for a service to come up (default 60)
set -euo pipefail

if [[ "${PRH_SKIP_SERVICES:-0}" == 1 ]]; then
  echo "services: skipped (PRH_SKIP_SERVICES=1)"
  exit 0
fi

# rabbitmq-server, rabbitmqctl and friends live in /usr/sbin.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

WAIT_SECONDS="${PRH_WAIT_SECONDS:-60}"
RABBITMQ_PORT=5672
POSTGRES_PORT=5432

say() { printf '%s\n' "$*"; }
die() {
  printf 'ensure-services: %s\n' "$*" >&2
  exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run '$*' (run this script as root, or install sudo)"
  fi
}

# Runs a shell command as the postgres OS user (peer auth lets it in on a fresh install).
as_postgres() {
  as_root su postgres -s /bin/sh -c "cd / && $1"
}

port_open() {
  timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" >/dev/null 2>&1
}

# wait_for_port PORT SECONDS: true once 127.0.0.1:PORT accepts connections.
wait_for_port() {
  local port=$1 deadline=$((SECONDS + $2))
  until port_open "$port"; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

# Whether systemd runs this machine (it does not in most containers).
have_systemd() {
  [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 ||
    die "apt-get not found: install $* with this system's package manager, then run again"
  if [[ $APT_UPDATED -eq 0 ]]; then
    say "apt: updating package lists"
    as_root apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  say "apt: installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# --- toolchain -------------------------------------------------------------------------

if ! command -v cargo >/dev/null 2>&1; then
  {
    echo "cargo was not found on PATH."
    if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
      echo "Rust is installed in ~/.cargo but not on PATH; load it with:"
      echo "  . \"\$HOME/.cargo/env\""
    else
      echo "Install Rust (1.88 or newer) with rustup (https://rustup.rs):"
      echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"
      echo "  . \"\$HOME/.cargo/env\""
    fi
    echo "Then run this again."
  } >&2
  exit 1
fi

if ! command -v cc >/dev/null 2>&1; then
  apt_install build-essential pkg-config
fi

# --- RabbitMQ --------------------------------------------------------------------------

ensure_rabbitmq() {
  if port_open "$RABBITMQ_PORT"; then
    say "rabbitmq: running"
    return
  fi

  local installed=0
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
    installed=1
  fi

  # The package may have started the node already; give it a moment before starting one.
  if [[ $installed -eq 1 ]] && wait_for_port "$RABBITMQ_PORT" 5; then
    :
  elif have_systemd; then
    say "rabbitmq: starting (systemctl)"
    as_root systemctl start rabbitmq-server
  else
    say "rabbitmq: starting"
    local log
    log=$(mktemp)
    if ! as_root rabbitmq-server -detached >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      die "rabbitmq-server -detached failed"
    fi
    rm -f "$log"
  fi

  # await_startup returns once the node has booted; the port check is what clients see.
  as_root timeout "$WAIT_SECONDS" rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  wait_for_port "$RABBITMQ_PORT" "$WAIT_SECONDS" ||
    die "RabbitMQ did not accept connections on 127.0.0.1:$RABBITMQ_PORT within ${WAIT_SECONDS}s; see /var/log/rabbitmq/"

  # PRH's quorum queues use at-least-once dead-lettering, which needs RabbitMQ 3.10+.
  local version
  version=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || true)
  if [[ -n $version ]] && dpkg --compare-versions "$version" lt 3.10; then
    say "rabbitmq: warning: version $version is older than 3.10, which PRH's queues need"
  fi
  say "rabbitmq: running (started)"
}

# --- PostgreSQL ------------------------------------------------------------------------

psql_local() {
  psql -w -X -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres "$@"
}

pg_trust_works() {
  psql_local -d postgres -tAc 'select 1' >/dev/null 2>&1
}

# Prints "<version> <cluster> <status>" of the local cluster configured for port 5432.
postgres_cluster() {
  pg_lsclusters -h 2>/dev/null | awk -v port="$POSTGRES_PORT" '$3 == port { print $1, $2, $4; exit }'
}

# Puts trust rules for loopback connections first in pg_hba.conf and reloads.
pg_allow_trust() {
  local version=$1 cluster=$2 hba tmp
  hba=$(as_postgres "psql -X -tAc 'show hba_file'" | tr -d '[:space:]')
  [[ -n $hba ]] || die "could not find the pg_hba.conf of PostgreSQL $version/$cluster"
  say "postgres: allowing trust auth on loopback in $hba"
  tmp=$(mktemp)
  {
    echo "# Added by PRH deploy/ensure-services.sh (development/CI only): trust on loopback."
    echo "local   all   all                  trust"
    echo "host    all   all   127.0.0.1/32   trust"
    echo "host    all   all   ::1/128        trust"
    as_root cat "$hba"
  } >"$tmp"
  as_root cp "$tmp" "$hba"
  rm -f "$tmp"
  as_root pg_ctlcluster "$version" "$cluster" reload
}

ensure_postgres() {
  local installed=0 started=0 version="" cluster="" status="" found

  if ! port_open "$POSTGRES_PORT"; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      apt_install postgresql
      installed=1
    fi
    found=$(postgres_cluster)
    if [[ -z $found ]]; then
      if [[ -n $(pg_lsclusters -h 2>/dev/null) ]]; then
        die "no PostgreSQL cluster is configured for port $POSTGRES_PORT (see pg_lsclusters)"
      fi
      # postgresql-common can be configured not to create a cluster: make one.
      version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
      [[ -n $version ]] || die "PostgreSQL is installed but no server was found in /usr/lib/postgresql"
      say "postgres: creating cluster $version/main"
      as_root pg_createcluster -p "$POSTGRES_PORT" "$version" main >/dev/null
      installed=1
      found="$version main down"
    fi
    read -r version cluster status <<<"$found"

    if [[ $status == online* ]] || { [[ $installed -eq 1 ]] && wait_for_port "$POSTGRES_PORT" 5; }; then
      :
    elif have_systemd; then
      say "postgres: starting $version/$cluster (systemctl)"
      as_root systemctl start "postgresql@$version-$cluster"
    else
      say "postgres: starting $version/$cluster"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
    fi
    wait_for_port "$POSTGRES_PORT" "$WAIT_SECONDS" ||
      die "PostgreSQL did not accept connections on 127.0.0.1:$POSTGRES_PORT within ${WAIT_SECONDS}s; see /var/log/postgresql/"
    started=1
  fi

  if ! command -v psql >/dev/null 2>&1; then
    apt_install postgresql-client
  fi

  # Accepting connections is not yet accepting queries while the server starts.
  if command -v pg_isready >/dev/null 2>&1; then
    local deadline=$((SECONDS + WAIT_SECONDS))
    until pg_isready -q -h 127.0.0.1 -p "$POSTGRES_PORT"; do
      ((SECONDS < deadline)) || die "PostgreSQL on 127.0.0.1:$POSTGRES_PORT is not ready after ${WAIT_SECONDS}s"
      sleep 1
    done
  fi

  if ! pg_trust_works; then
    [[ -n $version ]] || read -r version cluster status <<<"$(postgres_cluster)"
    if [[ -n $version && ($installed -eq 1 || "${PRH_PG_TRUST:-0}" == 1) ]]; then
      pg_allow_trust "$version" "$cluster"
      local deadline=$((SECONDS + 10))
      until pg_trust_works; do
        ((SECONDS < deadline)) || die "trust auth for postgres@127.0.0.1 still fails after editing pg_hba.conf"
        sleep 1
      done
    else
      die "cannot connect as postgres@127.0.0.1:$POSTGRES_PORT without a password.
  Allow trust auth for loopback connections (rerun with PRH_PG_TRUST=1 to let this script
  edit pg_hba.conf of the local cluster), or point the tests at another database with
  PRH_TEST_DATABASE_URL and set PRH_SKIP_POSTGRES=1."
    fi
  fi

  if [[ $(psql_local -d postgres -tAc "select 1 from pg_database where datname = 'test'") != 1 ]]; then
    say "postgres: creating database test"
    psql_local -d postgres -c 'create database test'
  fi

  if [[ $started -eq 1 ]]; then
    say "postgres: running (started)"
  else
    say "postgres: running"
  fi
}

ensure_rabbitmq

if [[ "${PRH_SKIP_POSTGRES:-0}" == 1 ]]; then
  say "postgres: skipped (PRH_SKIP_POSTGRES=1)"
else
  ensure_postgres
fi
