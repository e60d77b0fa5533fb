#!/usr/bin/env bash
# Installs the system programs the integration tests run for real: PostgreSQL 15 server
# (initdb, pg_ctl, postgres, pgbench), psql, PgBouncer, OpenSSH server and client, MariaDB
# server and client, psycopg 3. Target: Debian 12 (the README's fresh machine).
#
# Idempotent and cheap when everything is present: it checks binaries first and only then
# touches apt (one `apt-get update`, one `apt-get install`), so a provisioned machine never
# waits on the network. Prints one line per action it takes and nothing otherwise.
# As root it installs; as anyone else it prints what to install and exits 1.
set -euo pipefail

log() { printf 'ensure-system-deps: %s\n' "$*"; }

PG_BIN=/usr/lib/postgresql/15/bin

# "package|binary|binary…": a package is wanted when any of its binaries is missing.
# Binaries are absolute paths or names looked up on PATH (plus /usr/sbin, which a non-root
# PATH may lack).
REQUIREMENTS=(
  "postgresql-15|$PG_BIN/postgres|$PG_BIN/initdb|$PG_BIN/pg_ctl|$PG_BIN/pgbench"
  "postgresql-client-15|$PG_BIN/psql|psql"
  "pgbouncer|pgbouncer"
  "openssh-server|sshd"
  "openssh-client|ssh|ssh-keygen"
  "mariadb-server|mariadbd|mariadb-install-db"
  "mariadb-client|mariadb"
  # --- Redis engine tests (test/redis.test.ts, test/conformance/redis.test.ts) ---
  "redis-server|redis-server"
  "redis-tools|redis-cli|redis-benchmark"
  # --- chromium: browser login tests (test/identity.browser.test.ts) via playwright-core ---
  "chromium|chromium"
  # --- audit export to a real syslog receiver (test/audit-export.test.ts) ---
  "rsyslog|rsyslogd"
  "rsyslog-openssl|/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so"
  # --- psycopg 3 under Debian's python (test/postgres-frontdoor.test.ts: cancel timing) ---
  "python3-psycopg|py:psycopg"
  # --- psycopg2 and pgjdbc: everyday-client regression tests (test/clients-*.test.ts) ---
  "python3-psycopg2|py:psycopg2"
  # --- MySQLdb (mysqlclient) under Debian's python (test/mysql.test.ts) ---
  "python3-mysqldb|py:MySQLdb"
  "libpostgresql-jdbc-java|/usr/share/java/postgresql.jar"
  "default-jre-headless|java"
)

has_binary() {
  local b=$1
  if [[ $b == py:* ]]; then
    # A Python module, importable by the system python (not a pyenv one).
    [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c "import ${b#py:}" >/dev/null 2>&1
  elif [[ $b == /* ]]; then
    [[ -x $b ]] || { [[ $b == *.jar || $b == *.so ]] && [[ -f $b ]]; }
  else
    command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || [[ -x /usr/bin/$b ]]
  fi
}

missing=()
for req in "${REQUIREMENTS[@]}"; do
  IFS='|' read -r -a parts <<<"$req"
  pkg=${parts[0]}
  for bin in "${parts[@]:1}"; do
    if ! has_binary "$bin"; then
      missing+=("$pkg")
      break
    fi
  done
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing packages: ${missing[*]}"
    log "install them as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing packages: ${missing[*]} (no apt-get here: install them with this system's package manager)"
    exit 1
  fi
  # apt's output is long; keep it in a file and show it only when something fails.
  apt_log=$(mktemp -t ensure-system-deps.XXXXXX.log)
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get update"
  if ! apt-get -o DPkg::Lock::Timeout=300 update >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    log "apt-get update failed"
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  # Debian's maintainer scripts may try to start the services they install (a `main` cluster,
  # pgbouncer, sshd, mariadb). Tests never use those: every test starts its own throwaway
  # servers on free loopback ports, so a started system service is harmless.
  if ! apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    log "apt-get install failed"
    exit 1
  fi
  rm -f "$apt_log"
  # Verify rather than trust: a package that installed without the binary we look for
  # (renamed, moved) must fail here, not as a confusing test failure later.
  for req in "${REQUIREMENTS[@]}"; do
    IFS='|' read -r -a parts <<<"$req"
    for bin in "${parts[@]:1}"; do
      if ! has_binary "$bin"; then
        log "still missing after install: $bin (package ${parts[0]})"
        exit 1
      fi
    done
  done
fi

# sshd refuses to start without its privilege-separation directory; /run is a tmpfs on many
# machines, so this is needed after every boot, not only after install.
if [[ ! -d /run/sshd ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    mkdir -p /run/sshd
    chmod 0755 /run/sshd
    log "created /run/sshd"
  else
    # Not fatal: only sshd started as root needs it, and a non-root user cannot start that.
    log "note: /run/sshd is missing (sshd as root needs it): as root, mkdir -p /run/sshd"
  fi
fi
