# meshpilot image: dependencies installed in one stage, only what runs copied into the next.
# Build: docker build -t meshpilot:0.1.0 .
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; install scripts are not needed (esbuild's binary comes as a package).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY proto ./proto
COPY fixtures ./fixtures
# Non-root; the Deployment also sets runAsNonRoot and a read-only root filesystem (with /tmp an emptyDir).
USER 10001:10001
EXPOSE 15010 15014
ENTRYPOINT ["node", "bin/meshpilot.js"]
CMD ["serve", "--source", "kube", "--xds-host", "0.0.0.0", "--admin-host", "0.0.0.0"]
