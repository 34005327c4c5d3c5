#!/usr/bin/env bash
# Before `npm install` compiles the native core from source: make sure the compiler and the
# libzstd headers (zstd image layers are decompressed by libzstd in the core) are present.
# Nothing to do when a prebuilt addon for this platform ships in prebuilds/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ls prebuilds/linux-x64/*.node >/dev/null 2>&1; then exit 0; fi

need=()
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -e /usr/include/zstd.h ] || need+=(libzstd-dev)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "berth: building the native core needs: ${need[*]} (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "berth: installing build dependencies: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
