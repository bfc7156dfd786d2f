#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks, from Debian's packages:
#   Scripts/postgres.sh start DIR   -> initdb into DIR, start on a free loopback port, print the port
#   Scripts/postgres.sh pause DIR   -> stop the server, keeping its data and port
#   Scripts/postgres.sh resume DIR  -> start it again after a pause
#   Scripts/postgres.sh stop DIR    -> stop it (by the PID in DIR/data/postmaster.pid) and remove DIR
#   Scripts/postgres.sh createdb DIR NAME / dropdb DIR NAME -> another database on the cluster in DIR
# Listens on 127.0.0.1 only; trust authentication (loopback, a scratch cluster); fsync stays on
# (synchronous_commit is what the durability claims are measured with). As root it runs the
# server as the `postgres` user, since PostgreSQL refuses to run as root.
set -euo pipefail
command=${1:?usage: postgres.sh start|pause|resume|stop|createdb|dropdb DIR [NAME]}
dir=${2:?usage: postgres.sh start|pause|resume|stop|createdb|dropdb DIR [NAME]}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 69; }
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$command" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U chat -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # The settings go in the cluster's own file, so a later `resume` starts it the same way.
    printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nmax_connections = 200\nshared_buffers = 128MB\n" \
      "$port" "$dir" | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    # PG_SETTINGS="name = value; ..." adds settings (for experiments: benchmarks with one changed).
    [ -z "${PG_SETTINGS:-}" ] || tr ';' '\n' <<<"$PG_SETTINGS" | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U chat chat
    echo "$port" > "$dir/port"
    echo "$port"
    ;;
  pause)
    # Stops the server, keeping its data: the clients' connections are cut, as a database
    # restart or failover cuts them.
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    ;;
  resume)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
        || kill -TERM "$(head -1 "$dir/data/postmaster.pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  createdb|dropdb)
    name=${3:?usage: postgres.sh createdb|dropdb DIR NAME}
    port=$(cat "$dir/port")
    if [ "$command" = createdb ]; then
      as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U chat "$name"
    else
      # --force: a node's connections that outlived it (a killed process) do not keep it.
      as_owner "$bin/dropdb" -h 127.0.0.1 -p "$port" -U chat --force --if-exists "$name"
    fi
    ;;
  *) echo "usage: postgres.sh start|pause|resume|stop|createdb|dropdb DIR [NAME]" >&2; exit 64 ;;
esac
