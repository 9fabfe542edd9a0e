# nadguard's image: the webhook (`webhook --kube ...`) and the node enforcer (`enforce --kube ...`)
# run from it; manifests/ sets the arguments.
#   docker build -t nadguard:0.1.0 .
# Two stages: the compiler (typescript) and the native addon's build tools stay in the first; the
# runtime needs none of them.

FROM node:20-bookworm-slim AS build
# The native nft addon (native/nft, node-gyp): a C compiler, make, python3 (gyp), pkg-config and
# libnftables-dev; node-gyp builds against the headers of this image's node (scripts/build-addon.sh).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make python3 pkg-config libnftables-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: package.json's `prepare` builds dist/ and `install` the addon, but their sources are copied below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY webhook ./webhook
COPY certs ./certs
COPY native ./native
COPY scripts/build-addon.sh ./scripts/
# tsconfig.build.json: src, webhook and certs to dist/ (rootDir "."), so dist/src/cli/main.js. The
# addon must build here: an image without it would apply through nft processes.
RUN npm run build && npm run build:addon

FROM node:20-bookworm-slim
# libnftables1 for the native addon the enforcer applies through (Debian bookworm: nftables 1.0.6);
# nft (nftables, which depends on libnftables1) and nsenter (util-linux) for `nadguard status` and
# for the fallback where the addon cannot load; ip (iproute2) for `ip netns` and interface lookups.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnftables1 nftables iproute2 util-linux \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
# libuv's thread pool runs the addon's applies: 8 at once (the enforcer's default parallelism) and
# one thread left for file system work (src/nft/addon.ts addonConcurrency).
ENV UV_THREADPOOL_SIZE=9
COPY package.json package-lock.json ./
# dist/ comes from the build stage; `prepare` (tsc, a devDependency) must not run here.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/nft/build/Release/nadguard_nft.node ./native/nft/build/Release/
COPY bin ./bin
# `nadguard COMMAND --help` prints the command's section of README.md.
COPY README.md ./
# Numeric, so that the kubelet can enforce runAsNonRoot; the enforcer's DaemonSet runs as root.
USER 1000:1000
ENTRYPOINT ["node", "dist/src/cli/main.js"]
