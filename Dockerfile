# The three Tooken images, one target each:
#   docker build --target tooken-server   -t ghcr.io/tooken/tooken-server:0.1.0 .
#   docker build --target tooken-operator -t ghcr.io/tooken/tooken-operator:0.1.0 .
#   docker build --target tooken-sidecar  -t ghcr.io/tooken/tooken-sidecar:0.1.0 .
# (No Docker engine runs on the development machines, so these builds are untested there.)

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tooken-api-server -p tooken-operator -p tooken-sidecar \
    && mkdir -p /out \
    && cp target/release/tooken-server target/release/tooken-operator target/release/tooken-sidecar /out/

# distroless/cc: glibc and libgcc only, no shell; "nonroot" runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS tooken-server
COPY --from=build /out/tooken-server /usr/local/bin/tooken-server
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tooken-server"]

FROM gcr.io/distroless/cc-debian12:nonroot AS tooken-operator
COPY --from=build /out/tooken-operator /usr/local/bin/tooken-operator
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/tooken-operator"]

FROM gcr.io/distroless/cc-debian12:nonroot AS tooken-sidecar
COPY --from=build /out/tooken-sidecar /usr/local/bin/tooken-sidecar
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tooken-sidecar"]
