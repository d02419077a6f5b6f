# One Dockerfile for every Aula image: the six services, the REST gateway and the `aula` CLI.
#
#   SERVICE       binary to package: a service of services/catalogue.toml, or aula (the CLI);
#                 each has its image-<SERVICE> stage at the end (tests/k8s/test_catalogue.py)
#   GRPC_PORT, METRICS_PORT
#                 ports to EXPOSE (services/catalogue.toml; scripts/build-images.sh reads them there).
#                 Each may hold several space-separated ports (the `aula` image exposes all).
#   BINARY        where the binary comes from:
#                   source   (default) compile it here in a pinned Rust image: needs a registry;
#                   prebuilt take bin/<SERVICE> and ca-certificates.crt from the build context
#                            (scripts/build-images.sh stages host-built static binaries): no pull.
#
# From source, on a machine with a registry (context: the repository):
#   docker build --build-arg SERVICE=cursos --build-arg GRPC_PORT=50051 --build-arg METRICS_PORT=9051 -t aula/cursos:dev .
# Offline: scripts/build-images.sh.
#
# Needs BuildKit: it builds only the stages the target uses, so the prebuilt path never touches
# `FROM rust` (the classic builder builds every stage and fails offline). No `# syntax=` line on
# purpose: that would pull a frontend image.
#
# The images are FROM scratch: the static binary at /<SERVICE>, a CA bundle (reqwest's rustls
# reads the system roots: chatbot's Gemini calls), /data owned by the runtime user for SQLite
# (mount a volume there: the root filesystem is meant to run read-only), uid/gid 65532, no shell.
# The HEALTHCHECK runs the binary's own `healthcheck` subcommand (a gRPC health check of itself;
# the gateway's checks /readyz).

ARG SERVICE=cursos
ARG BINARY=source
ARG RUST_IMAGE=rust:1.95-bookworm

# ---------------------------------------------------------------- source path

# A copy of the workspace reduced to its manifests plus stub sources (`fn main() {}` for binaries
# and build scripts, empty libraries): what cargo needs to resolve and compile the dependencies.
# Its content changes only when a manifest or the set of files changes, so the dependency layer
# below stays cached across source edits (cargo-chef's idea, without a tool to download).
FROM ${RUST_IMAGE} AS skeleton
WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir -p /skeleton; \
    find . -path ./target -prune -o \
        \( -name Cargo.toml -o -name Cargo.lock -o -name 'rust-toolchain*' -o -path './.cargo/*' \) \
        -type f -print | while read -r f; do \
        mkdir -p "/skeleton/$(dirname "$f")"; cp "$f" "/skeleton/$f"; \
    done; \
    find . -path ./target -prune -o -name '*.rs' -type f -print | while read -r f; do \
        mkdir -p "/skeleton/$(dirname "$f")"; \
        case "$f" in \
            */main.rs|*/build.rs|*/src/bin/*|*/examples/*|*/benches/*) echo 'fn main() {}' ;; \
            *) : ;; \
        esac > "/skeleton/$f"; \
    done

FROM ${RUST_IMAGE} AS builder
ENV CARGO_TERM_COLOR=never \
    RUSTFLAGS="-C target-feature=+crt-static"
WORKDIR /src
# The dependency layer: every workspace binary's dependencies at once, shared by all images
# (SERVICE is declared only after it, so it does not enter this layer's cache key).
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked --target x86_64-unknown-linux-gnu --workspace --bins
COPY . .
ARG SERVICE
# The stubs were compiled after the real files' modification times: touch the sources so cargo
# rebuilds the workspace crates instead of keeping the stubs.
RUN set -eu; \
    find . -path ./target -prune -o -name '*.rs' -type f -exec touch {} +; \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin "${SERVICE}"; \
    mkdir -p /rootfs/bin /rootfs/etc/ssl/certs /rootfs/data; \
    cp "target/x86_64-unknown-linux-gnu/release/${SERVICE}" "/rootfs/bin/${SERVICE}"; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt

FROM scratch AS files-source
COPY --from=builder /rootfs/ /rootfs/

# ---------------------------------------------------------------- prebuilt path

# Context laid out by scripts/build-images.sh: bin/<SERVICE>, ca-certificates.crt, data/ (empty).
FROM scratch AS files-prebuilt
ARG SERVICE
COPY bin/${SERVICE} /rootfs/bin/${SERVICE}
COPY ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt
COPY data/ /rootfs/data/

# ---------------------------------------------------------------- the image

FROM files-${BINARY} AS files

FROM scratch AS base
ARG SERVICE
ARG GRPC_PORT
ARG METRICS_PORT
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
COPY --from=files /rootfs/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=files --chown=65532:65532 /rootfs/data/ /data/
COPY --from=files /rootfs/bin/${SERVICE} /${SERVICE}
ENV AULA_DATA_DIR=/data \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
VOLUME ["/data"]
EXPOSE ${GRPC_PORT} ${METRICS_PORT}
STOPSIGNAL SIGTERM
LABEL org.opencontainers.image.title="aula-${SERVICE}" \
      org.opencontainers.image.description="Aula ${SERVICE}: a static Rust binary in a scratch image" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/aula-platform/aula" \
      org.opencontainers.image.url="https://github.com/aula-platform/aula" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.vendor="Aula"

# ENTRYPOINT and HEALTHCHECK take no build-time variables in exec form (and a scratch image has
# no shell to expand them), so each binary gets its own three-line stage; `FROM image-${SERVICE}`
# below picks one and BuildKit skips the rest. One stage per service of services/catalogue.toml,
# in its order, then the CLI's: tests/k8s/test_catalogue.py prints the stage a new service needs.
FROM base AS image-cursos
ENTRYPOINT ["/cursos"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/cursos", "healthcheck"]

FROM base AS image-chatbot
ENTRYPOINT ["/chatbot"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/chatbot", "healthcheck"]

FROM base AS image-cpar
ENTRYPOINT ["/cpar"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/cpar", "healthcheck"]

FROM base AS image-notificacoes
ENTRYPOINT ["/notificacoes"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/notificacoes", "healthcheck"]

FROM base AS image-insights
ENTRYPOINT ["/insights"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/insights", "healthcheck"]

FROM base AS image-midia
ENTRYPOINT ["/midia"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/midia", "healthcheck"]

FROM base AS image-gateway
ENTRYPOINT ["/gateway"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/gateway", "healthcheck"]

# The CLI (`aula up`, `aula load`, `aula status`, ...). It has no `healthcheck` subcommand:
# `aula status` (exit 0 when every service answers SERVING at its <NAME>_ADDR) is its probe,
# meaningful when the container serves (`aula up`); compose's `load` service turns it off.
FROM base AS image-aula
ENTRYPOINT ["/aula"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/aula", "status"]

FROM image-${SERVICE} AS image
