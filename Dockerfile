# syntax=docker/dockerfile:1
# wharf: a pull-through OCI registry mirror.
#   docker build -t wharf .
#   docker run -p 5000:5000 -v wharf-data:/var/lib/wharf wharf
# Not built in the environment this was written in (no image builds there): check with a build.

# --- build: compile TypeScript and better-sqlite3, then drop dev dependencies ------------------
FROM node:24-bookworm-slim AS build
# better-sqlite3 falls back to a source build (node-gyp) when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# The image ships Node's headers in /usr/local/include/node: build against them, no download.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
# The package's `prepare` script compiles src/, which is not copied yet: skip scripts here so
# this layer is reused while only sources change, then run the one install script needed.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund
# Keep only the compiled addon of better-sqlite3: its SQLite sources (deps/), C++ sources (src/) and
# the object files of the build are ~40 MB the runtime never reads (bindings finds build/Release).
RUN cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node /tmp/ \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv /tmp/better_sqlite3.node build/Release/

# --- runtime ----------------------------------------------------------------------------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production
# The home directory (where ~/.docker/config.json would live, for upstreams with dockerConfig: true)
# is outside the data volume: credentials do not belong beside the cache.
RUN groupadd --system --gid 10001 wharf \
 && useradd --system --uid 10001 --gid wharf --home-dir /home/wharf --create-home --shell /usr/sbin/nologin wharf \
 && mkdir -p /var/lib/wharf \
 && chown wharf:wharf /var/lib/wharf
# The default data directory is the volume: `wharf serve` with no --data writes there.
ENV WHARF_DATA=/var/lib/wharf
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# migrations/ sits beside dist/: src/store/database.ts finds it at ../../migrations from dist.
COPY migrations ./migrations
COPY package.json config.example.yaml ./
USER wharf
VOLUME /var/lib/wharf
EXPOSE 5000
# /healthz answers 200 while the process serves (plain HTTP; with tls.cert set, probe https and
# accept the certificate, or use /readyz from an orchestrator instead). No curl in the image: node.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:5000/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# wharf handles SIGTERM/SIGINT itself (src/cli/main.ts), so it can run as PID 1 without an init.
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--listen", ":5000"]
