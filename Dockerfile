# syntax=docker/dockerfile:1
# Dhara as a container: `docker build -t dhara:local .` (see deploy/README-ops.md).
#
# Stage 1 builds the release binary. indexes/*.json and templates/email/ are compiled into it by
# build.rs, and config/default.toml by src/config/layers.rs; config/<DHARA_ENV>.toml is read from
# disk at start (DHARA_CONFIG_DIR, and a named environment's file must exist), so config/ is
# copied into the runtime image.
FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependencies first, against stub sources, so that a change to src/ does not rebuild them:
# the manifest names a lib, a bin, a build script and two benches, so each gets a stub.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > build.rs \
    && echo 'fn main() {}' > benches/slots.rs \
    && echo 'fn main() {}' > benches/cache_http.rs \
    && cargo build --release --locked \
    && rm -rf src benches build.rs \
        target/release/dhara target/release/deps/dhara-* target/release/deps/libdhara-* \
        target/release/.fingerprint/dhara-* target/release/build/dhara-*

COPY build.rs ./
COPY benches ./benches
COPY indexes ./indexes
COPY templates ./templates
COPY config ./config
COPY src ./src
RUN cargo build --release --locked --bin dhara \
    && strip target/release/dhara

# Stage 2: Debian slim with CA certificates only (TLS to SMTP, MongoDB Atlas, rediss://).
FROM debian:bookworm-slim AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 dhara \
    && useradd --system --uid 10001 --gid dhara --home-dir /opt/dhara --shell /usr/sbin/nologin dhara \
    && mkdir -p /opt/dhara /var/lib/dhara/mail \
    && chown dhara:dhara /var/lib/dhara /var/lib/dhara/mail

COPY --from=builder /src/target/release/dhara /usr/local/bin/dhara
COPY --chown=root:root config /opt/dhara/config

WORKDIR /opt/dhara
# Production by default: the service refuses to start without a real JWT_SECRET (exit 2), and
# config/production.toml applies. Listen on every interface of the container (production.toml
# says 127.0.0.1, right for systemd behind a local NGINX, wrong inside a container).
ENV DHARA_ENV=production \
    DHARA_CONFIG_DIR=/opt/dhara/config \
    DHARA_HTTP__HOST=0.0.0.0 \
    PORT=5000 \
    DHARA_MAIL__FILE_DIR=/var/lib/dhara/mail
EXPOSE 5000
USER 10001:10001

# Liveness on /health without adding curl to the image: bash (already in bookworm-slim) opens a
# TCP connection with its /dev/tcp redirection, sends a plain HTTP/1.0 request and requires a
# 200 status line. `dhara worker` serves no HTTP: compose disables this check for it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-5000} && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r -t 2 status <&3 && [[ $status == *' 200 '* ]]"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["dhara"]
CMD ["serve", "--no-worker"]
