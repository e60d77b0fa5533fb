# Airlock gateway image: multi-stage, runs as a non-root user, only the runtime in the last stage.
# Build: docker build -t airlock .      Run: docker run -v $PWD/airlock.yaml:/etc/airlock/airlock.yaml airlock
# (Not built on the machine this was written on: it has no Docker daemon. See README, "Deploy".)

FROM node:20-bookworm-slim AS build
WORKDIR /src
# Native modules (better-sqlite3) build here if no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY . .
RUN npm run build --silent && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production AIRLOCK_CONFIG=/etc/airlock/airlock.yaml
WORKDIR /app
COPY --from=build --chown=root:root /src/package.json ./
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/bin ./bin
COPY --from=build --chown=root:root /src/dist ./dist
COPY --from=build --chown=root:root /src/schema ./schema
# The gateway writes only its dataDir (keys, local audit log, recordings).
RUN mkdir -p /var/lib/airlock/keys && chown -R node:node /var/lib/airlock && chmod 700 /var/lib/airlock/keys
USER node
VOLUME ["/var/lib/airlock"]
EXPOSE 8780 15432
# Liveness: GET /healthz; readiness: GET /readyz (503 while starting or draining).
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8780/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains (instance.drainTimeout), then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/airlock.js"]
CMD ["gateway"]
