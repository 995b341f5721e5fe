# meshpilot image: compiled in one stage, production dependencies in another, and only what runs
# (dist/, proto/, ui/) copied into the last. Build: docker build -t meshpilot:0.1.0 .
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm ci` runs `prepare`, which compiles src/ to dist/.
RUN npm ci --no-audit --no-fund

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, without install scripts (prepare would need the compiler).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY proto ./proto
COPY ui ./ui
COPY fixtures ./fixtures
# Non-root; the Deployment also sets runAsNonRoot and a read-only root filesystem (with /tmp an emptyDir).
USER 10001:10001
EXPOSE 15010 15014
ENTRYPOINT ["node", "bin/meshpilot.js"]
CMD ["serve", "--source", "kube", "--xds-host", "0.0.0.0", "--admin-host", "0.0.0.0"]
