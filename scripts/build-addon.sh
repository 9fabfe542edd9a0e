#!/bin/sh
# Builds nadguard's native nft executor (native/nft, see src/nft/addon.ts) with node-gyp, against
# libnftables-dev and the Node headers installed beside this node (never downloaded).
#
#   sh scripts/build-addon.sh             package.json's `install` script (so `npm ci` runs it): a
#                                         machine that cannot build it gets one line and a zero exit,
#                                         and nadguard applies through `nft -f` processes instead
#   sh scripts/build-addon.sh --required  scripts/system-deps.sh: a failed build fails, with node-gyp's output
#   sh scripts/build-addon.sh --if-missing  as --required, but only when the addon is missing or older than its source
set -u
cd "$(dirname "$0")/.." || exit 1
mode=${1:-}
dir=native/nft
addon=$dir/build/Release/nadguard_nft.node
log=$dir/build-addon.log

if [ "$mode" = "--if-missing" ]; then
  if [ -f "$addon" ] && [ ! "$dir/nft.c" -nt "$addon" ] && [ ! "$dir/binding.gyp" -nt "$addon" ]; then exit 0; fi
  mode=--required
fi

skip() {
  if [ "$mode" = "--required" ]; then
    echo "nadguard: cannot build the native nft addon ($dir): $1" >&2
    [ -f "$log" ] && tail -n 30 "$log" >&2
    exit 1
  fi
  echo "nadguard: native nft addon not built ($1); nadguard will apply rules through nft -f processes" >&2
  exit 0
}

if ! pkg-config --exists libnftables 2>/dev/null; then
  skip "libnftables-dev or pkg-config is not installed: apt-get install libnftables-dev pkg-config, then npm run build:addon"
fi

# The headers of the running node: <prefix>/include/node (Debian and the official tarballs alike).
nodedir=$(node -p 'require("node:path").resolve(process.execPath, "..", "..")')
if [ ! -f "$nodedir/include/node/common.gypi" ]; then
  nodedir=${npm_config_nodedir:-}
  [ -n "$nodedir" ] && [ -f "$nodedir/include/node/common.gypi" ] || skip "the Node headers are not installed beside $(command -v node) (include/node/common.gypi)"
fi

# node-gyp ships inside npm: on PATH in npm's scripts, else found beside npm itself.
if command -v node-gyp >/dev/null 2>&1; then
  gyp="node-gyp"
elif [ -n "${npm_config_node_gyp:-}" ]; then
  gyp="node $npm_config_node_gyp"
else
  npmdir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npmdir/node_modules/node-gyp/bin/node-gyp.js" ] || skip "node-gyp was not found (it ships inside npm)"
  gyp="node $npmdir/node_modules/node-gyp/bin/node-gyp.js"
fi

if ! (cd "$dir" && $gyp rebuild --nodedir="$nodedir") >"$log" 2>&1; then
  skip "node-gyp failed, see $log"
fi
rm -f "$log"
exit 0
