# The DaemonSet's image: vaccel-device-plugin and vaccelctl on a slim Debian, the Swift runtime
# and every other library linked in (static-pie), stripped. The host's vAccel install is mounted
# at run time, not baked in.
# For machines with Docker. scripts/build-image builds the same contents without Docker
# (debootstrap, umoci) as an OCI archive; that one is what the tests run (ImageTests).
FROM swift:6.3-bookworm AS build
WORKDIR /src
COPY . .
# scripts/release-flags: the layout flags (function sections, the standard library split into
# them by scripts/stdlib-function-sections in Python, lld with the link order, RELR) and
# -static-pie (glibc, libyaml, zlib and libstdc++ linked in).
RUN apt-get update && apt-get install -y --no-install-recommends libyaml-dev zlib1g-dev python3 \
 && swift build -c release --static-swift-stdlib $(scripts/release-flags) --product vaccel-device-plugin \
 && swift build -c release --static-swift-stdlib $(scripts/release-flags) --product vaccelctl \
 && install -D -m 0755 .build/release/vaccel-device-plugin /out/vaccel-device-plugin \
 && install -D -m 0755 .build/release/vaccelctl /out/vaccelctl \
 && strip /out/vaccel-device-plugin /out/vaccelctl

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/vaccel-device-plugin"]
