# syntax=docker/dockerfile:1
# The zerofn controller image: one binary, non-root, no shell, no package
# manager. The binary links only the C library (TLS is aws-lc-rs, built in).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p zerofn \
 && install -D -m 0755 target/release/zerofn /out/zerofn

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/zerofn /zerofn
USER 65532:65532
ENTRYPOINT ["/zerofn"]
CMD ["run"]
