# syntax=docker/dockerfile:1
# The congress operator image: the `congress` binary (dynamically linked against glibc and
# libgcc_s only) on distroless cc (no shell, no package manager), running as the non-root user
# 65532. Two stages: build with cargo, then copy the one binary out.
#
# usage: DOCKER_BUILDKIT=1 docker build -t REGISTRY/congress:0.1.0 .
#        docker run --rm REGISTRY/congress:0.1.0 --version
# The default command is `congress operator` (in-cluster config from the pod's ServiceAccount);
# the Helm chart (charts/congress) passes its flags. BuildKit is required (cache mounts).
# Built without default features: `congress bench` (the bench workloads) stays out of the image.

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
# mimalloc and ring compile C code (the cc crate): a C compiler, libc headers and make;
# binutils for strip.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make binutils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and the target directory are BuildKit cache mounts (kept between builds, not in
# the image), so the binary is copied out of target/ inside the same RUN. The release profile
# keeps line tables (debug = 1): --strip-debug drops them but keeps the symbols, so panics
# still print function names, at a fraction of the size.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin congress \
 && install -D -m 0755 target/release/congress /out/congress \
 && strip --strip-debug /out/congress

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="congress" \
      org.opencontainers.image.description="Cloud policy in Datalog: OpenStack Congress rebuilt as a Kubernetes operator and a command-line tool" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /out/congress /congress
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/congress"]
CMD ["operator"]
