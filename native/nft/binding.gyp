# The native nft executor of src/nft/addon.ts, built by scripts/build-addon.sh (package.json's
# `install` script, so `npm ci` runs it) against Debian's libnftables-dev (pkg-config libnftables).
{
  "targets": [
    {
      "target_name": "nadguard_nft",
      "sources": ["nft.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"],
      "include_dirs": ["<!@(pkg-config --cflags-only-I libnftables | sed 's/-I//g')"],
      "libraries": ["<!@(pkg-config --libs libnftables)"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
