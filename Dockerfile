# nadguard's image: the webhook (`webhook --kube ...`) and the node enforcer (`enforce --kube ...`)
# run from it; manifests/ sets the arguments.
#   docker build -t nadguard:0.1.0 .
# Two stages: the compiler (typescript) is a devDependency, the runtime needs none of them.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: package.json's `prepare` builds dist/, but the sources are copied below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY webhook ./webhook
COPY certs ./certs
# tsconfig.build.json: src, webhook and certs to dist/ (rootDir "."), so dist/src/cli/main.js.
RUN npm run build

FROM node:20-bookworm-slim
# nft and libnftables for the enforcer's rules (Debian bookworm: nft 1.0.6), nsenter (util-linux)
# to enter pod network namespaces, ip (iproute2) for `ip netns` and interface lookups, python3 for
# the enforcer's libnftables helpers (src/nft/exec.ts; without it applies fall back to nft processes).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables iproute2 util-linux python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# dist/ comes from the build stage; `prepare` (tsc, a devDependency) must not run here.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# `nadguard COMMAND --help` prints the command's section of README.md.
COPY README.md ./
# Numeric, so that the kubelet can enforce runAsNonRoot; the enforcer's DaemonSet runs as root.
USER 1000:1000
ENTRYPOINT ["node", "dist/src/cli/main.js"]
