#!/usr/bin/env bash
# Debian's PostgreSQL server binaries, for the tests only: the replica tests start a throwaway
# cluster (initdb + pg_ctl on a temporary folder) as the DuckLake catalog. The dashboard itself
# needs none (its default catalog is an SQLite file); a replica deployment brings its own server.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
