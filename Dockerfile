# syntax=docker/dockerfile:1
# popconnect images: `docker build --target manager` (the operator),
# `--target gateway` (the data plane) and `--target popdb-sim` (the synthetic
# population database used by the demo). `make docker-build` builds the first
# two. Static binaries on distroless, run as 65532 (nonroot), so the pods
# meet the "restricted" Pod Security Standard.

FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace
ENV CGO_ENABLED=0
# Modules first, so source changes reuse the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY gateway/ gateway/
COPY internal/ internal/
COPY main.go ./
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    export GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} && \
    go build -trimpath -ldflags="-s -w" -o /out/manager . && \
    go build -trimpath -ldflags="-s -w" -o /out/gateway ./cmd/gateway && \
    go build -trimpath -ldflags="-s -w" -o /out/popdb-sim ./cmd/popdb-sim

FROM gcr.io/distroless/static:nonroot AS manager
LABEL org.opencontainers.image.title="popconnect-manager" \
      org.opencontainers.image.source="https://github.com/popconnect/popconnect"
WORKDIR /
COPY --from=builder /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]

FROM gcr.io/distroless/static:nonroot AS gateway
LABEL org.opencontainers.image.title="popconnect-gateway" \
      org.opencontainers.image.source="https://github.com/popconnect/popconnect"
WORKDIR /
COPY --from=builder /out/gateway /gateway
USER 65532:65532
ENTRYPOINT ["/gateway"]

FROM gcr.io/distroless/static:nonroot AS popdb-sim
LABEL org.opencontainers.image.title="popconnect-popdb-sim" \
      org.opencontainers.image.source="https://github.com/popconnect/popconnect"
WORKDIR /
COPY --from=builder /out/popdb-sim /popdb-sim
USER 65532:65532
ENTRYPOINT ["/popdb-sim"]
