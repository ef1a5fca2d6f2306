#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the PostgreSQL store.
#
#   bash .ci/postgres.sh          installs PostgreSQL if it is missing (Debian packages), starts
#                                 a cluster on a free port on 127.0.0.1, and prints
#                                 `export VIEWLOG_TEST_POSTGRES_URL=...` and
#                                 `export VIEWLOG_TEST_POSTGRES_CA=...` on stdout (for eval);
#   bash .ci/postgres.sh stop     stops that cluster.
#
# Run as root (CI is). The cluster belongs to an unprivileged system user (`viewlogci`, created
# if missing; PostgreSQL refuses to run as root), lives in $VIEWLOG_PG_DIR (default
# /tmp/viewlog-ci-postgres), listens on 127.0.0.1 only and trusts local connections: it is for
# tests, never for data. The tests connect as the role `viewlog`, which may create databases
# but is no superuser; `pg_trgm` is a trusted extension, so the owner of a database creates it.
# The cluster also accepts TLS (ssl=on), with a certificate for 127.0.0.1 and localhost signed
# by a throwaway authority made here, whose certificate is VIEWLOG_TEST_POSTGRES_CA (openssl is
# installed if missing).
# Running the script again reuses a cluster that is still running, and replaces one that is not.
# Everything but the export line goes to stderr; any failure exits non-zero.
set -euo pipefail

DIR="${VIEWLOG_PG_DIR:-/tmp/viewlog-ci-postgres}"
OS_USER="${VIEWLOG_PG_OS_USER:-viewlogci}"
ROLE=viewlog

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (I install packages and start the cluster as $OS_USER)"

pg_bin() {
    # The newest installed server version's binaries.
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$bin" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && echo "$bin"
}

as_user() { runuser -u "$OS_USER" -- "$@"; }

if [ "${1:-}" = stop ]; then
    if BIN="$(pg_bin)" && [ -f "$DIR/data/PG_VERSION" ]; then
        as_user "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
    fi
    exit 0
fi

# ----- the server, from the distribution's packages -----
if ! pg_bin >/dev/null || ! ls /usr/share/postgresql/*/extension/pg_trgm.control >/dev/null 2>&1; then
    log "installing postgresql and postgresql-contrib"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql postgresql-contrib >&2
fi
BIN="$(pg_bin)" || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin after installing"
ls /usr/share/postgresql/*/extension/pg_trgm.control >/dev/null 2>&1 || die "pg_trgm is not installed"
log "using $("$BIN/postgres" --version)"

# ----- the unprivileged owner -----
if ! id -u "$OS_USER" >/dev/null 2>&1; then
    log "creating system user $OS_USER"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER"
fi

psql_admin() {
    # As the cluster's superuser, over the cluster's own socket directory.
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$1" -U postgres -d postgres "${@:2}"
}

url_for() { echo "postgres://$ROLE@127.0.0.1:$1/postgres"; }

exports() {
    echo "export VIEWLOG_TEST_POSTGRES_URL=$(url_for "$1")"
    echo "export VIEWLOG_TEST_POSTGRES_CA=$DIR/ca.pem"
}

# ----- reuse a running cluster -----
if [ -f "$DIR/port" ] && [ -f "$DIR/data/PG_VERSION" ] && as_user "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    PORT="$(cat "$DIR/port")"
    # Reused only if it serves TLS with a certificate good for another day.
    if [ -f "$DIR/ca.pem" ] && [ "$(psql_admin "$PORT" -tAc 'SHOW ssl' 2>/dev/null)" = on ] \
        && openssl x509 -checkend 86400 -noout -in "$DIR/ca.pem" >/dev/null 2>&1 \
        && openssl x509 -checkend 86400 -noout -in "$DIR/data/server.crt" >/dev/null 2>&1; then
        log "reusing the cluster running in $DIR on port $PORT"
        exports "$PORT"
        exit 0
    fi
    as_user "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >&2 || true
fi

# ----- a new cluster -----
rm -rf "$DIR"
mkdir -p "$DIR"
chown "$OS_USER:" "$DIR"
# Others may pass through (to read ca.pem, for tests run as another user), not list it; the
# data directory inside stays private.
chmod 711 "$DIR"
# The C locale on purpose: the store must not depend on the database's locale for its text
# filter (it folds case in Rust), and C is where PostgreSQL's own lower() would fail it.
as_user "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
cat >>"$DIR/data/postgresql.conf" <<EOF

# viewlog CI: a throwaway cluster for tests.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 300
# The tests never crash the machine; syncing each of their thousands of commits would only
# slow them down. (synchronous_commit stays on: the store insists on it.)
fsync = off
full_page_writes = off
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
EOF

# ----- TLS: a throwaway authority, and a certificate it signs for 127.0.0.1 and localhost -----
if ! command -v openssl >/dev/null; then
    log "installing openssl"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj "/CN=viewlog CI authority" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>"$DIR/openssl.log" \
    || { cat "$DIR/openssl.log" >&2; die "could not make the test authority"; }
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$DIR/data/server.key" -out "$DIR/server.csr" 2>>"$DIR/openssl.log" \
    || { cat "$DIR/openssl.log" >&2; die "could not make the server's key"; }
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$DIR/server.ext"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -days 90 \
    -extfile "$DIR/server.ext" -out "$DIR/data/server.crt" 2>>"$DIR/openssl.log" \
    || { cat "$DIR/openssl.log" >&2; die "could not sign the server's certificate"; }
chmod 644 "$DIR/ca.pem"
chown "$OS_USER:" "$DIR/data/server.key" "$DIR/data/server.crt"
chmod 600 "$DIR/data/server.key"

started=""
for PORT in $(seq 54320 54399); do
    # Skip ports someone listens on already; a race is caught by pg_ctl failing below.
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        continue
    fi
    if as_user "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -o "-p $PORT" -w -t 60 start >&2; then
        started=yes
        break
    fi
    log "could not start on port $PORT, trying the next"
done
[ -n "$started" ] || { tail -n 30 "$DIR/server.log" >&2 || true; die "PostgreSQL did not start on any port of 54320-54399"; }
echo "$PORT" >"$DIR/port"

psql_admin "$PORT" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'viewlog') THEN
        CREATE ROLE viewlog LOGIN CREATEDB NOSUPERUSER NOCREATEROLE;
    END IF;
END
$$;
SQL
log "cluster in $DIR listening on 127.0.0.1:$PORT (role $ROLE, trust auth, TLS with $DIR/ca.pem)"
exports "$PORT"
