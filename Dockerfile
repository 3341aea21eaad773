# zkroute image. Build: docker build -t zkroute .
# Run:   docker run --rm -p 4700:4700 -p 4701:4701 -e ZKROUTE_ZOOKEEPER=zk1:2181,zk2:2181,zk3:2181 \
#          -v "$PWD/admin-token:/run/secrets/admin-token:ro" -e ZKROUTE_ADMIN_TOKEN_FILE=/run/secrets/admin-token zkroute
# The admin port listens on every interface here: /providers and /metrics show addresses,
# metadata and traffic, so give it a token (openssl rand -hex 24 > admin-token); /healthz and
# /readyz stay open for the HEALTHCHECK and orchestrator probes.
# CI checks these steps without a Docker engine: scripts/check-dockerfile.mjs replays them.

# Build stage: the native `zookeeper` addon compiles the ZooKeeper C client (python3, make, g++).
FROM node:20-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's postinstall applies patches/ to the native binding and rebuilds it (patch-package).
COPY patches ./patches
COPY scripts/patch-native.mjs ./scripts/patch-native.mjs
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
COPY dashboard ./dashboard
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: production dependencies and the compiled code only, as a non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
# Inside a container the ports must be reachable from outside it; elsewhere they default to loopback.
ENV ZKROUTE_LISTEN=0.0.0.0:4700
ENV ZKROUTE_ADMIN=0.0.0.0:4701
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/dashboard ./dashboard
RUN ln -s /app/bin/zkroute.js /usr/local/bin/zkroute
USER node
EXPOSE 4700 4701
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:4701/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["zkroute"]
CMD ["proxy"]
