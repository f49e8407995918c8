# One Dockerfile, one image per service, chosen with --build-arg SERVICE=auth|social|share-code|storage (or console,
# the web console's server and page):
#
#   docker build --build-arg SERVICE=social -t snapmesh-social:0.1.0 .
#
# The image holds only the service's esbuild bundle (dist/<service>/bin: a CommonJS script and main.mjs, which runs
# it), its migrations (the console: its page) and a Node runtime. It runs as UID 65532, needs no shell, and writes
# nothing but /tmp (mount one there with a read-only root filesystem). `main.mjs migrate` applies the migrations and exits.
#
# BASE_IMAGE: any image with the Node binary at /nodejs/bin/node (the distroless layout) and a UID 65532
# that may run it. `npm run images` builds its own from Debian packages and the official Node binary and
# passes it here, with BUNDLE=prebuilt (the bundles `npm run images` has just built on the host).
# The digests below were resolved by others from the public registries; refresh them with
# `docker buildx imagetools inspect <image>:<tag>` when you bump Node.
ARG BASE_IMAGE=gcr.io/distroless/nodejs22-debian12:nonroot@sha256:13593b7570658e8477de39e2f4a1dd25db2f836d68a0ba771251572d23bb4f8e
ARG BUILD_IMAGE=node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c
# source: bundle inside the build (the default); prebuilt: take dist/ from the build context.
ARG BUNDLE=source

FROM ${BUILD_IMAGE} AS source
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund && npx tsx scripts/src/bundle.ts && npx tsx scripts/src/console/build.ts

FROM scratch AS prebuilt
COPY dist/ /src/dist/

FROM ${BUNDLE} AS bundle

FROM ${BASE_IMAGE}
ARG SERVICE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/snapmesh/snapmesh
LABEL org.opencontainers.image.title="snapmesh-${SERVICE}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Owned by root, read-only to the service: the process cannot change its own code.
COPY --from=bundle /src/dist/${SERVICE}/ /app/
# V8's code for the bundle, made here at build time and read at start (see the README's cold start figures):
# - a service's main.mjs exports writeCodeCache(), which loads its bundle, runs a warm-up start against nothing
#   (no NATS or PostgreSQL is reachable here) and writes V8's code cache of everything that compiled, beside the bundle;
# - Node 22+ keeps the rest (main.mjs, the console's modules) in its compile cache, read from NODE_COMPILE_CACHE.
# On a read-only root neither is ever written at run time.
ENV NODE_ENV=production \
    NODE_COMPILE_CACHE=/app/.compile-cache \
    PORT=8080 \
    SNAPMESH_VERSION=${VERSION} \
    SNAPMESH_REVISION=${REVISION}
# The base images run as 65532; the cache belongs to root like the rest of /app.
USER 0:0
RUN ["/nodejs/bin/node", "--input-type=module", "-e", "\
import fs from 'node:fs'; import m from 'node:module'; \
const entry = await import('/app/bin/main.mjs'); await entry.writeCodeCache?.(); m.flushCompileCache?.(); \
const dir = process.env.NODE_COMPILE_CACHE; \
for (const f of fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }) : []) fs.chmodSync(`${dir}/${f}`, 0o755);"]
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/main.mjs"]
