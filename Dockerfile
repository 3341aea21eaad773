# Placeholder until the operations issue: the multi-stage image is built there.
FROM node:20-bookworm-slim
WORKDIR /app
COPY . .
RUN echo "zkroute image not built yet" && exit 1
