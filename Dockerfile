# syntax=docker/dockerfile:1
# wharf: a pull-through OCI registry mirror.
#   docker build -t wharf .
#   docker run -p 5000:5000 -v wharf-data:/var/lib/wharf wharf

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

# --- runtime ----------------------------------------------------------------------------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production
RUN groupadd --system --gid 10001 wharf \
 && useradd --system --uid 10001 --gid wharf --home-dir /var/lib/wharf --shell /usr/sbin/nologin wharf \
 && mkdir -p /var/lib/wharf \
 && chown wharf:wharf /var/lib/wharf
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# migrations/ sits beside dist/: src/store/database.ts finds it at ../../migrations from dist.
COPY migrations ./migrations
COPY package.json config.example.yaml ./
USER wharf
VOLUME /var/lib/wharf
EXPOSE 5000
# wharf handles SIGTERM/SIGINT itself (src/cli/main.ts), so it can run as PID 1 without an init.
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--listen", "0.0.0.0:5000", "--data", "/var/lib/wharf"]
