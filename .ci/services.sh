#!/usr/bin/env bash
# PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and Redis (127.0.0.1:6379) for the distributed
# tests, and Chromium for the browser tests: left alone when they already answer, otherwise installed (apt-get) if missing and started.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
wait_for() { for _ in $(seq 60); do "$1" && return 0; sleep 0.5; done; echo "$2 did not come up" >&2; return 1; }
packages=()
pg_up || compgen -G "/etc/postgresql/*/main" >/dev/null || packages+=(postgresql)
redis_up || command -v redis-server >/dev/null || packages+=(redis-server redis-tools)
# Headless Chromium for the browser tests of the posture page (Playwright drives the system browser).
[ -x /usr/bin/chromium ] || packages+=(chromium fonts-dejavu-core)
if [ ${#packages[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if ! pg_up; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # Local test clusters only: trust connections from this machine, as the tests connect without a password.
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for pg_up PostgreSQL
fi

if ! redis_up; then
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis_up Redis
fi
echo "PostgreSQL, Redis and Chromium are ready"
