#!/usr/bin/env bash
# Installs and starts what fabu's tests need that this machine lacks: git, OpenSSH server,
# bubblewrap, Chromium, PostgreSQL and Redis (Debian packages, when running as root), and the browser
# test's npm packages. Safe to run again; it changes nothing that is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v pg_isready >/dev/null || need+=(postgresql-client)
command -v docker-compose >/dev/null || need+=(docker-compose)
# Build stages run in a bubblewrap sandbox (services/builder/execx/sandbox.go).
command -v bwrap >/dev/null || need+=(bubblewrap)
# Docker projects' tests: rootful podman with runc, Debian's registry, a static busybox to
# put in FROM-scratch images (Docker Hub is not reachable from tests).
if [ "$(id -u)" = 0 ]; then
  command -v podman >/dev/null || need+=(podman)
  command -v runc >/dev/null || need+=(runc)
  command -v docker-registry >/dev/null || need+=(docker-registry)
  ldd /bin/busybox 2>&1 | grep -q "not a dynamic" || need+=(busybox-static)
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if [ -n "${FABU_TEST_POSTGRES:-}" ]; then :; elif ! command -v pg_isready >/dev/null || ! pg_up; then
  command -v pg_ctlcluster >/dev/null || need+=(postgresql)
fi
if [ -z "${FABU_TEST_REDIS:-}" ] && ! redis_up; then
  command -v redis-server >/dev/null || need+=(redis-server)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-deps: missing ${need[*]}; install them (apt-get install -y ${need[*]}) or run as root" >&2
    exit 1
  fi
  echo "test-deps: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PostgreSQL on 127.0.0.1:5432 with trust for local TCP, as the tests expect.
if [ -z "${FABU_TEST_POSTGRES:-}" ] && ! pg_up; then
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  grep -q '^host all postgres 127.0.0.1/32 trust' "$hba" || sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  for _ in $(seq 50); do pg_up && break; sleep 0.2; done
  pg_up || { echo "test-deps: PostgreSQL did not start" >&2; exit 1; }
fi
if [ -z "${FABU_TEST_REDIS:-}" ] && ! redis_up; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do redis_up && break; sleep 0.2; done
fi

# Podman in a container or VM without CAP_SYS_RESOURCE and with hybrid cgroups (this CI
# machine): crun cannot raise rlimits or use the hybrid hierarchy, runc can; default ulimits
# at or below the hard limits podman would otherwise raise.
if [ "$(id -u)" = 0 ] && command -v podman >/dev/null && [ ! -e /etc/containers/containers.conf.d/50-fabu-test.conf ]; then
  mkdir -p /etc/containers/containers.conf.d
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' \
    > /etc/containers/containers.conf.d/50-fabu-test.conf
fi

# sshd's privilege separation directory.
[ "$(id -u)" != 0 ] || mkdir -p /run/sshd

# The browser test's packages (playwright-core drives Debian's Chromium; no browser download).
if [ ! -d e2e/browser/node_modules/playwright-core ] || [ e2e/browser/package-lock.json -nt e2e/browser/node_modules ]; then
  (cd e2e/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
