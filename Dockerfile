# syntax=docker/dockerfile:1
#
# Switchyard's image: the `switchyard` binary (CLI and sidecar) and the filter (.wasm).
#
#   docker build -t switchyard .                                  # the runtime image
#   docker build --target wasm --output type=local,dest=out .     # just out/switchyard.wasm
#
# docker-compose.yaml runs the sidecar from this image, and copies the .wasm from it into a
# volume that the stock Envoy image loads it from.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
RUN rustup target add wasm32-wasip1
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p switchyard-sidecar \
 && cargo build --release --locked --target wasm32-wasip1 -p switchyard-filter \
 && mkdir -p /out \
 && cp target/release/switchyard /out/switchyard \
 && cp target/wasm32-wasip1/release/switchyard_filter.wasm /out/switchyard.wasm

# The filter alone, for `--target wasm --output`.
FROM scratch AS wasm
COPY --from=build /out/switchyard.wasm /switchyard.wasm

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchyard \
 && mkdir -p /wasm && chown switchyard /wasm
COPY --from=build /out/switchyard /usr/local/bin/switchyard
COPY --from=build /out/switchyard.wasm /usr/local/share/switchyard/switchyard.wasm
USER switchyard
EXPOSE 4001
CMD ["switchyard", "sidecar", "--config", "/etc/switchyard/config.yaml", "--host", "0.0.0.0", "--port", "4001"]
