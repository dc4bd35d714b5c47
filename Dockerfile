# syntax=docker/dockerfile:1
# cadent: the controller and the TypeScript worker in one image (`cadent controller`, `cadent worker`).
#
#   docker build -t cadent .
#   docker run --rm --read-only cadent --version
#
# The runtime stage holds production dependencies, the compiled dist/, crds/ and package.json and
# nothing else. It runs as a numeric non-root user (so runAsNonRoot can verify it) and never writes
# to its file system, so it runs with readOnlyRootFilesystem: true; mount an emptyDir at /tmp if a
# task module needs scratch space. tests/integration/production-layout.test.ts builds the same
# layout without Docker and runs it.

ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies only. No production dependency has an install script, and the one
# devDependency that has one (the project-local `node` binary) is not wanted in an image that
# already has Node 24, hence --ignore-scripts in both stages.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="cadent" \
      org.opencontainers.image.description="Celery-style scheduled and asynchronous tasks as Kubernetes custom resources" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY crds ./crds
# 65532: the conventional "nonroot" id (distroless); numeric so the kubelet can check runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
