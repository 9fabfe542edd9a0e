#!/bin/sh
# The Debian packages nadguard's test suites and benchmarks need, in one place: `npm test` and
# `npm run bench` call this first. As root on Debian it installs what is missing (apt-get); anywhere
# else it names what is missing in one line and fails, before any suite can fail cryptically. Then
# it builds the native nft addon (native/nft) if `npm ci` could not (libnftables-dev was missing) or
# its source is newer, so the suites run with the executor nadguard uses; a failed build fails here.
#
#   sh scripts/system-deps.sh          check, and install what is missing when root
#   sh scripts/system-deps.sh --list   print the package list
set -eu

# package:probe — the probe is a command on PATH or an absolute path the package installs.
# gcc and libc6-dev (its libc.a): the node harness compiles its pause image with `gcc -static`.
# libnftables-dev, pkg-config, make (and gcc, python3: node-gyp's): the native nft addon's build.
# python3 also runs test/e2e/sctp-agent.py.
DEPS="
nftables:nft
iproute2:ip
util-linux:nsenter
procps:pkill
iptables:iptables-restore
containernetworking-plugins:/usr/lib/cni/bridge
containerd:containerd
runc:runc
gcc:gcc
libc6-dev:/usr/include/stdio.h
python3:python3
make:make
pkg-config:pkg-config
libnftables-dev:/usr/include/nftables/libnftables.h
curl:curl
ca-certificates:/etc/ssl/certs/ca-certificates.crt
"

if [ "${1:-}" = "--list" ]; then
  for dep in $DEPS; do printf '%s\n' "${dep%%:*}"; done
  exit 0
fi

missing=""
for dep in $DEPS; do
  package=${dep%%:*}
  probe=${dep#*:}
  case $probe in
    /*) [ -e "$probe" ] && continue ;;
    *) command -v "$probe" >/dev/null 2>&1 && continue ;;
  esac
  missing="$missing $package"
done

if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "nadguard: the tests need these Debian packages, missing here:$missing (as root: apt-get install$missing)" >&2
    exit 1
  fi
  echo "nadguard: installing Debian packages the tests need:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Run by npm from the package root (npm test, npm run bench); elsewhere there is no addon to build.
if [ -f scripts/build-addon.sh ]; then
  sh scripts/build-addon.sh --if-missing
fi
