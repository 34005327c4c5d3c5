#!/usr/bin/env bash
# Installs the system tools the test suite uses, when they are missing: the suite runs real
# kernels features and real peers (a registry, skopeo, umoci), never mocks of them.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have busybox || [ -x /bin/busybox ] || need+=(busybox-static)
have skopeo || need+=(skopeo)
have umoci || need+=(umoci)
# issue 16: the fuse-overlayfs storage driver (conformance suite, test/kernel/storage-fuse.test.ts)
have fuse-overlayfs || need+=(fuse-overlayfs)
have docker-registry || need+=(docker-registry)
have htpasswd || need+=(apache2-utils)
have nft || [ -x /usr/sbin/nft ] || need+=(nftables)
have iptables || [ -x /usr/sbin/iptables ] || need+=(iptables)
have zstd || need+=(zstd)
have mkfs.ext4 || [ -x /sbin/mkfs.ext4 ] || need+=(e2fsprogs)
[ -e /usr/include/zstd.h ] || need+=(libzstd-dev)
# pull's fast gzip inflater (src-native/gzip-napi.cc): ISA-L's header to build it, the library
# (libisal2, a dependency of libisal-dev) to use it; test/unit/image-gzip-inflate.test.ts
[ -e /usr/include/isa-l/igzip_lib.h ] || need+=(libisal-dev)
have g++ || need+=(g++)
have make || need+=(make)
have python3 || need+=(python3)
# issue 15 (rootless): test users (useradd/userdel), setpriv, newuidmap/newgidmap; bench peers
[ -x /usr/sbin/useradd ] || need+=(passwd)
have setpriv || need+=(util-linux)
have newuidmap || need+=(uidmap)
# issue 15 (rootless networking): the user-mode network stacks
have pasta || need+=(passt)
have slirp4netns || need+=(slirp4netns)
# issue 17 (embedded DNS): an upstream name server on loopback for the forwarding tests
have dnsmasq || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
# issue 14: the compose differential test runs Debian's docker-compose against a private dockerd.
have dockerd || need+=(docker.io)
have docker-compose || need+=(docker-compose)
# issue 16 (berth inside containers): test/kernel/inside-container.test.ts runs berth inside a
# private dockerd's containers (docker.io, above) and podman's
have podman || need+=(podman)
# builds: test/registry/build-differential.test.ts compares berth's build with `buildah bud`
have buildah || need+=(buildah)
# issue 18: the pool control-socket attack test runs its probe with the host's python3 ({ host: true }).
[ -x /usr/bin/python3 ] || need+=(python3)
# issue 16 (btrfs storage driver): the conformance suite mounts a loop btrfs made with mkfs.btrfs
# and lists its subvolumes with `btrfs subvolume list` (berth itself uses the ioctls, not these)
have mkfs.btrfs || [ -x /sbin/mkfs.btrfs ] || need+=(btrfs-progs)
# issue 17 (density): the hot-path test watches file accesses with inotifywait
have inotifywait || need+=(inotify-tools)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! have apt-get; then
  echo "test-deps: missing ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "test-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
