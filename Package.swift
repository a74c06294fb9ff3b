// swift-tools-version:6.1
import PackageDescription

// Targets are split by dependency weight (see README "Layout"): generated API code alone,
// configuration without gRPC, the unix-socket transport without our logic, and thin
// executables on top.
let package = Package(
  name: "vaccel-device-plugin",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "vaccel-device-plugin", targets: ["vaccel-device-plugin"]),
    .executable(name: "vaccel-standin-agent", targets: ["vaccel-standin-agent"]),
    .executable(name: "vaccelctl", targets: ["vaccelctl"]),
    .executable(name: "vaccel-demo", targets: ["vaccel-demo"]),
  ],
  dependencies: [
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    // No default traits: BinaryDelimitedStreams imports Foundation, and with it ICU, into
    // everything that links protobuf (the daemon included). grpc-swift-protobuf opts out too.
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0", traits: []),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
  ],
  targets: [
    // Generated from Protos/ by scripts/generate-protos; never edited by hand.
    .target(
      name: "KubeletAPI",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    // Generated from Protos/cri/runtime/v1: the container runtime's CRI, the part we call.
    .target(
      name: "CRIAPI",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    // Pod → VM sandbox → hybrid-vsock socket, asked of the runtime's CRI socket.
    .target(
      name: "CRIClient",
      dependencies: [
        "CRIAPI",
        "NodeSupport",
        "GRPCUnixClient",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
      ]
    ),
    // Generated from Protos/vaccel/deviceplugin/status: our status API (daemon and vaccelctl).
    .target(
      name: "StatusAPI",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    // Generated from Protos/vaccel/agenthost: the agent host's API (daemon ↔ agent host).
    .target(
      name: "AgentHostAPI",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    // Generated from Protos/ttrpc and Protos/vaccel: the agent's ttrpc messages.
    .target(
      name: "VaccelAgentAPI",
      dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
    ),
    // Agent addresses, ttrpc framing, client (readiness probes) and server (stand-in agent).
    .target(
      name: "VaccelRPC",
      dependencies: [
        "NodeSupport",
        "VaccelAgentAPI",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    // posix_spawn with a clean signal mask, pidfd, subreaper: what Swift cannot call directly.
    .target(name: "CVaccelSystem"),
    // libyaml (Debian: libyaml-dev), for the config reader: the daemon links no Yams, and
    // through it no Foundation and no ICU.
    .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
    // YAML read (the config) and written (the manifests) with libyaml.
    .target(name: "VaccelYAML", dependencies: ["CYAML"]),
    .target(
      name: "VaccelConfig",
      dependencies: [
        "DaemonLogging",
        "NodeSupport",
        "VaccelYAML",
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // Prometheus metrics and the /metrics, /healthz, /readyz listener.
    .target(
      name: "VaccelMetrics",
      dependencies: [
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    // The daemon's log lines (key=value or JSON) and its runtime log level.
    .target(
      name: "DaemonLogging",
      dependencies: [.product(name: "Logging", package: "swift-log")]
    ),
    // Filesystem and inotify helpers shared by the plugin and the agents.
    .target(name: "NodeSupport"),
    // Agent processes: spawn, watch (pidfd), probe (ttrpc), supervise, recycle.
    .target(
      name: "VaccelAgents",
      dependencies: [
        "CVaccelSystem", "NodeSupport", "VaccelConfig", "VaccelRPC", "VaccelAgentAPI",
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // Kubernetes objects from typed models: no gRPC, no daemon (vaccelctl manifests, k3s auto-deploy).
    .target(
      name: "VaccelManifests",
      dependencies: ["VaccelConfig", "VaccelYAML", "NodeSupport"]
    ),
    // What vaccelctl does: status client and tables, probe, doctor. No daemon (DevicePlugin).
    .target(
      name: "VaccelCtlKit",
      dependencies: [
        "StatusAPI", "VaccelManifests", "VaccelConfig", "VaccelAgents", "VaccelRPC", "VaccelAgentAPI", "NodeSupport",
        "CRIClient", "AgentHostAPI",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // The demo: the daemon in-process against the kubelet emulation (vaccel-demo, which
    // `vaccelctl demo` runs).
    .target(
      name: "VaccelDemo",
      dependencies: [
        "VaccelCtlKit", "DevicePlugin", "KubeletEmulation", "KubeletAPI", "VaccelAgents", "VaccelConfig", "VaccelRPC", "VaccelAgentAPI",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
      ]
    ),
    // A kubelet in miniature (registration, ListAndWatch, Allocate, pod-resources) over real
    // unix sockets: the tests' double and the demo's cluster.
    .target(
      name: "KubeletEmulation",
      dependencies: [
        "KubeletAPI", "CRIAPI", "GRPCUnixServer",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
      ]
    ),
    .target(
      name: "GRPCUnixServer",
      dependencies: [
        "NodeSupport",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        // On Linux this product is GRPCNIOTransportCore alone (its own sources and NIOTS are Apple-only):
        // the transport without NIOSSL, X509 and swift-crypto. See GRPCUnixClient.
        .product(name: "GRPCNIOTransportHTTP2TransportServices", package: "grpc-swift-nio-transport"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    // A plaintext unix-socket gRPC client: grpc-swift-nio-transport's Posix client without the TLS
    // stack that target links (see UnixClientTransport.swift). It builds on the transport's
    // `package` API, so it is compiled in that package's name.
    .target(
      name: "GRPCUnixClient",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2TransportServices", package: "grpc-swift-nio-transport"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ],
      packageAccess: false,  // SwiftPM then passes no package name of its own for this target
      swiftSettings: [.unsafeFlags(["-package-name", "grpc_swift_nio_transport"])]
    ),
    .target(
      name: "DevicePlugin",
      dependencies: [
        "AgentHostAPI",
        "CVaccelSystem",
        "KubeletAPI",
        "CRIClient",
        "StatusAPI",
        "VaccelManifests",
        "VaccelMetrics",
        "NodeSupport",
        "VaccelAgents",
        "VaccelConfig",
        "GRPCUnixServer",
        "GRPCUnixClient",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2TransportServices", package: "grpc-swift-nio-transport"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
      ]
    ),
    .executableTarget(
      name: "vaccel-device-plugin",
      dependencies: [
        "CVaccelSystem",
        "DevicePlugin",
        "DaemonLogging",
        "VaccelConfig",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    .executableTarget(
      name: "vaccelctl",
      dependencies: ["VaccelCtlKit", "VaccelManifests", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .executableTarget(
      name: "vaccel-demo",
      dependencies: ["VaccelDemo", "VaccelCtlKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .executableTarget(
      name: "vaccel-standin-agent",
      dependencies: ["VaccelRPC", "VaccelAgentAPI"]
    ),
    // Benchmarks: `swift build -c release` then .build/release/vaccel-bench (BENCHMARKS.md).
    .executableTarget(
      name: "vaccel-bench",
      dependencies: [
        "DevicePlugin", "KubeletAPI", "VaccelAgents", "VaccelConfig", "VaccelRPC", "VaccelAgentAPI",
        "KubeletEmulation", "StatusAPI", "VaccelCtlKit",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Benchmarks/VaccelBench"
    ),
    // The chaos soak (RELIABILITY.md): .build/debug/vaccel-chaos --short, or the long run.
    .executableTarget(
      name: "vaccel-chaos",
      dependencies: [
        "DevicePlugin", "KubeletEmulation", "VaccelAgents", "VaccelConfig", "VaccelCtlKit", "VaccelRPC", "VaccelAgentAPI",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Chaos/VaccelChaos"
    ),
    .testTarget(
      name: "VaccelCtlTests",
      dependencies: ["VaccelCtlKit", "VaccelDemo", "VaccelManifests", "StatusAPI", "VaccelConfig", "VaccelAgents", "DevicePlugin", "KubeletEmulation", .product(name: "Yams", package: "Yams")],
      exclude: ["HelmRenderer"]
    ),
    .testTarget(
      name: "VaccelConfigTests",
      dependencies: ["VaccelConfig"]
    ),
    .testTarget(
      name: "DevicePluginTests",
      dependencies: [
        "AgentHostAPI",
        "DevicePlugin",
        "DaemonLogging",
        "VaccelMetrics",
        "NodeSupport",
        "VaccelAgents",
        "VaccelRPC",
        "VaccelAgentAPI",
        "KubeletAPI",
        "CRIAPI",
        "CRIClient",
        "VaccelConfig",
        "GRPCUnixServer",
        "KubeletEmulation",
        "StatusAPI",
        "VaccelCtlKit",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
      ],
      exclude: ["Interop", "Guest"]
    ),
  ]
)
