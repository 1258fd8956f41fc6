# Sourced by `make check` and `make pytest`: make sure DATABASE_URL points at a running PostgreSQL.
#   1. DATABASE_URL already set: use it.
#   2. A server answers on 127.0.0.1:5432: use it as user postgres.
#   3. Otherwise start a throwaway cluster with the installed PostgreSQL binaries under var/,
#      stopped again when the shell exits; or stop with a message naming what to install.
_pg_ready() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

_find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if [ -z "${DATABASE_URL:-}" ]; then
  PG_BIN=$(_find_pg_bin || true)
  if _pg_ready 127.0.0.1 5432; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  elif [ -n "$PG_BIN" ]; then
    _pg_dir="$(pwd)/var/pgtest"
    _pg_port="${PGTEST_PORT:-54329}"
    _pg_run=()
    if [ "$(id -u)" = 0 ]; then
      # PostgreSQL refuses to run as root; the Debian package's postgres user runs it instead.
      id postgres >/dev/null 2>&1 || { echo "no 'postgres' user to run the throwaway cluster as" >&2; return 1 2>/dev/null || exit 1; }
      _pg_run=(runuser -u postgres --)
    fi
    rm -rf "$_pg_dir" && mkdir -p "$_pg_dir" && chmod 777 "$_pg_dir"
    echo "No PostgreSQL on 127.0.0.1:5432; starting a throwaway cluster in var/pgtest on port $_pg_port"
    "${_pg_run[@]}" "$PG_BIN/initdb" -D "$_pg_dir/data" -U postgres -A trust --no-sync >/dev/null || return 1 2>/dev/null || exit 1
    "${_pg_run[@]}" "$PG_BIN/pg_ctl" -D "$_pg_dir/data" -l "$_pg_dir/log" -w \
      -o "-p $_pg_port -k $_pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null || {
        echo "could not start the throwaway PostgreSQL; see $_pg_dir/log" >&2; return 1 2>/dev/null || exit 1; }
    trap '"${_pg_run[@]}" "$PG_BIN/pg_ctl" -D "$_pg_dir/data" -m fast stop >/dev/null 2>&1' EXIT
    export DATABASE_URL="postgres://postgres@127.0.0.1:$_pg_port/postgres"
  else
    echo "make test needs PostgreSQL: nothing answers on 127.0.0.1:5432 and no server binaries" >&2
    echo "(initdb, pg_ctl) are installed. Set DATABASE_URL, or apt-get install postgresql." >&2
    return 1 2>/dev/null || exit 1
  fi
fi
