# syntax=docker/dockerfile:1.7
#
# CRM Pulse container image: a static binary on distroless.
#
#   docker build -t crmpulse .
#   docker run --rm -e CRMPULSE_KAFKA_BROKERS=kafka:9092 -p 9464:9464 crmpulse
#
# The image carries a default configuration (deploy/docker/crmpulse.yaml, at
# /etc/crmpulse/crmpulse.yaml) and the example rules (/etc/crmpulse/rules.yaml);
# mount your own over them (deploy/compose and deploy/k8s do). Every key can
# also be set with its CRMPULSE_* environment variable (docs/run.md).
#
# GO_VERSION must match the `go` line of go.mod (deploy/deploytest checks it);
# GOTOOLCHAIN=local makes a mismatch fail instead of downloading a toolchain.
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
# `docker build --build-arg VERSION=$(git describe --tags --always) --build-arg
# REVISION=$(git rev-parse HEAD)`: what `crmpulse version` and
# crmpulse_build_info report (the build context has no .git).
ARG VERSION=devel
ARG REVISION=unknown
ENV GOTOOLCHAIN=local CGO_ENABLED=0
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION}" -o /out/crmpulse ./cmd/crmpulse
# An empty state directory for the final stage to hand to the nonroot user:
# distroless has no shell to mkdir or chown, and a named volume mounted there
# takes over this ownership (the compose demo writes generated data to it).
RUN mkdir -p /out/state

# distroless/static has CA certificates, an /etc/passwd with the nonroot user
# (65532) and the IANA time zone database; the binary embeds its own copy too
# (time/tzdata), so rule and recipient time zones resolve on any base image.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/crmpulse /usr/local/bin/crmpulse
COPY --from=build --chown=65532:65532 /out/state /var/lib/crmpulse
COPY examples/rules.yaml /etc/crmpulse/rules.yaml
COPY deploy/docker/crmpulse.yaml /etc/crmpulse/crmpulse.yaml
USER 65532:65532
EXPOSE 9464
# No HEALTHCHECK: distroless has no shell, curl or wget to run one, and
# crmpulse has no probe subcommand. Orchestrators probe over HTTP themselves:
# /healthz (alive) and /readyz (in the consumer group, partitions restored) on
# port 9464, as deploy/k8s does. Compose orders start-up with a one-shot
# topic-init service instead of health checks.
ENTRYPOINT ["/usr/local/bin/crmpulse"]
CMD ["run", "--config", "/etc/crmpulse/crmpulse.yaml"]
