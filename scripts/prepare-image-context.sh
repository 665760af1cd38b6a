#!/usr/bin/env bash
# Prepares a Docker build context for `docker build --target from-context`: the compiled agent
# (dist/src) and the production dependencies (node_modules without dev dependencies), so the
# image builds without network access (air-gapped hosts, CI without a package registry).
#
#   scripts/prepare-image-context.sh /tmp/hm-ctx
#   docker build --target from-context --build-arg BASE_IMAGE=node:26-bookworm-slim \
#     -t harbormaster:local /tmp/hm-ctx
#
# Set SKIP_BUILD=1 to reuse an existing dist/. node_modules must already be installed (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/prepare-image-context.sh OUTPUT_DIR}
if [ "${SKIP_BUILD:-}" != 1 ]; then npm run build --silent; fi
[ -f dist/src/cli.js ] || { echo "dist/src/cli.js missing: run npm run build" >&2; exit 1; }
[ -d node_modules ] || { echo "node_modules missing: run npm ci" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out/dist"
cp package.json package-lock.json Dockerfile "$out/"
cp -a dist/src "$out/dist/src"
find "$out/dist" -name '*.map' -delete
cp -a node_modules "$out/node_modules"
# Remove dev dependencies; works offline (it only deletes).
(cd "$out" && npm prune --omit=dev --offline --no-audit --no-fund --silent)
echo "build context ready in $out ($(du -sh "$out" | cut -f1))"
