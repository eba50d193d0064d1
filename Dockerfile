# syntax=docker/dockerfile:1
# The Hearth image (ghcr.io/hearth-dev/hearth:<version>): one static binary,
# /hearth, run as `hearth server` (the default) or `hearth operator run`
# (the Helm chart's Deployment). docs/image.md describes building it.

# --- builder ---------------------------------------------------------------
# A fully static binary for x86_64-unknown-linux-musl: musl links statically
# by default (libc included, no loader, no NSS), and the C parts of the
# dependencies (ring, zstd) are compiled with musl-gcc, so the result runs on
# an image with no libc at all. A glibc "static" binary would still try to
# dlopen NSS modules for name lookups, which distroless/static lacks.
FROM docker.io/library/rust:1.95-bookworm AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build directory between builds
# (BuildKit); the binary is copied out of the cached target directory and
# stripped: the release profile keeps line tables for local profiling,
# which would make the image 180 MB instead of 30 MB.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin hearth \
 && cp target/x86_64-unknown-linux-musl/release/hearth /hearth \
 && strip /hearth
# The storage directory, owned by the runtime user (distroless has no shell
# to create it later).
RUN mkdir -p /data && chown 65532:65532 /data

# --- runtime ---------------------------------------------------------------
# distroless/static: CA certificates (remote write, scraping over TLS, the
# Kubernetes API), /etc/passwd with the user nonroot (65532), tzdata; no
# shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /hearth /hearth
COPY --from=builder --chown=65532:65532 /data /data
USER 65532:65532
# `hearth server` stores its WAL and blocks here; mount a volume to keep them.
VOLUME ["/data"]
EXPOSE 9090
ENTRYPOINT ["/hearth"]
CMD ["server", "--storage.tsdb.path=/data"]
