#!/usr/bin/env bash
# Installs what `fabu up` needs at run time and the machine lacks: git (builds fetch with
# it) and bubblewrap (every build stage runs in its sandbox). As root it installs them
# with apt-get; otherwise it says what to install, and fabu refuses builds until then.
set -euo pipefail

need=()
command -v git >/dev/null || need+=(git)
command -v bwrap >/dev/null || need+=(bubblewrap)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "run-deps: missing ${need[*]}: install them (sudo apt-get install -y ${need[*]}); until then fabu refuses to build" >&2
  exit 0
fi
echo "run-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
