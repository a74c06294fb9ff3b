import Foundation
import GRPCCore
public import GRPCNIOTransportHTTP2Posix
import GRPCUnixServer
public import KubeletAPI

/// A kubelet in miniature for tests and the demo, speaking the real protocol over real unix sockets, in the order the real
/// one does (kubelet-contract.md §2): Registration server on `<dir>/kubelet.sock`; inside
/// Register it checks the version and name, dials `<dir>/<endpoint>` back and calls
/// `GetDevicePluginOptions`; after Register returns it opens `ListAndWatch`. `restart()` wipes
/// every socket in the folder and serves a new `kubelet.sock`, as a kubelet start does.
public actor KubeletEmulator {
  public enum Authority: Sendable {
    /// What current kubelets send.
    case localhost
    /// What kubelets before ~1.26 sent: the socket path.
    case socketPath
  }

  public struct Plugin: Sendable {
    public var request: V1beta1_RegisterRequest
    public var options: V1beta1_DevicePluginOptions
    public var devices: [V1beta1_Device] = []
    public var updates = 0
    public var streamOpen = false
    public var streamError: String?
  }

  /// Everything a test may wait on.
  public struct State: Sendable {
    public var registrations = 0
    public var rejectedRegistrations: [String] = []
    public var plugins: [String: Plugin] = [:]

    public func healthy(_ resource: String) -> Int {
      plugins[resource]?.devices.filter { $0.health == "Healthy" }.count ?? 0
    }
  }

  public let directory: String
  public let authority: Authority
  public private(set) var state = State()
  private var server: (GRPCServer<HTTP2ServerTransport.Posix>, Task<Void, any Error>)?
  private var clients: [String: (GRPCClient<HTTP2ClientTransport.Posix>, Task<Void, Never>)] = [:]
  private var waiters: [UUID: (predicate: @Sendable (State) -> Bool, continuation: CheckedContinuation<State, any Error>)] = [:]

  public init(directory: String, authority: Authority = .localhost) {
    self.directory = directory
    self.authority = authority
  }

  public var socketPath: String { directory + "/kubelet.sock" }

  public func start() async throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let transport = HTTP2ServerTransport.Posix(
      address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext)
    let server = GRPCServer(transport: transport, services: [RegistrationService(kubelet: self)])
    let task = Task { try await server.serve() }
    self.server = (server, task)
    guard (try? await transport.listeningAddress) != nil else {
      throw TimedOut(what: "the fake kubelet to listen")
    }
  }

  /// As the process dying: connections drop, nothing is cleaned up. The server is shut down
  /// gracefully with a short deadline, never just cancelled (`GRPCServer.stop(serving:deadline:)`).
  public func stop() async {
    if let (server, task) = server {
      await server.stop(serving: task, deadline: .milliseconds(200))
      self.server = nil
    }
    for (client, task) in clients.values {
      client.beginGracefulShutdown()
      task.cancel()
      _ = await task.value
    }
    clients.removeAll()
  }

  /// Stop, then what a starting kubelet does: delete every socket in the folder (keeping the
  /// checkpoint), then serve a new `kubelet.sock`.
  public func restart() async throws {
    await stop()
    let checkpoint = directory + "/kubelet_internal_checkpoint"
    _ = FileManager.default.createFile(atPath: checkpoint, contents: Data("{}".utf8))
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
      let path = directory + "/" + name
      var info = stat()
      if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK {
        unlink(path)
      }
    }
    try await start()
  }

  // MARK: Calls a kubelet makes on a registered plugin

  public func client(_ resource: String) throws -> V1beta1_DevicePlugin.Client<HTTP2ClientTransport.Posix> {
    guard let (client, _) = clients[resource] else { throw TimedOut(what: "\(resource) to be registered") }
    return V1beta1_DevicePlugin.Client(wrapping: client)
  }

  public func allocate(_ resource: String, _ ids: [[String]]) async throws -> V1beta1_AllocateResponse {
    try await client(resource).allocate(.with {
      $0.containerRequests = ids.map { ids in .with { $0.devicesIds = ids } }
    })
  }

  /// `PreStartContainer` for one container's devices, as before every container start.
  public func preStart(_ resource: String, _ ids: [String]) async throws {
    _ = try await client(resource).preStartContainer(.with { $0.devicesIds = ids })
  }

  /// What the kubelet does for a pod's containers with the plugin's options set: `Allocate`
  /// at admission, then `PreStartContainer` with each container's devices before it starts.
  /// Returns the Allocate reply, its agents ready.
  public func admit(_ resource: String, _ ids: [[String]]) async throws -> V1beta1_AllocateResponse {
    let reply = try await allocate(resource, ids)
    let plugin = try client(resource)
    for container in ids {
      _ = try await plugin.preStartContainer(.with { $0.devicesIds = container })
    }
    return reply
  }

  // MARK: Waiting

  /// Returns the first state satisfying `predicate`; fails after `timeout` (a safety net,
  /// never the thing a test waits for).
  public func wait(
    for what: String, timeout: Duration = .seconds(20), _ predicate: @escaping @Sendable (State) -> Bool
  ) async throws -> State {
    if predicate(state) { return state }
    let id = UUID()
    let timer = Task {
      try await Task.sleep(for: timeout)
      self.expire(id, what: what)
    }
    defer { timer.cancel() }
    return try await withCheckedThrowingContinuation { continuation in
      waiters[id] = (predicate, continuation)
    }
  }

  private func expire(_ id: UUID, what: String) {
    waiters.removeValue(forKey: id)?.continuation.resume(throwing: TimedOut(what: what))
  }

  private func changed(_ update: (inout State) -> Void) {
    update(&state)
    for (id, waiter) in waiters where waiter.predicate(state) {
      waiters.removeValue(forKey: id)
      waiter.continuation.resume(returning: state)
    }
  }

  // MARK: Registration, as the kubelet does it

  fileprivate func register(_ request: V1beta1_RegisterRequest) async throws {
    guard request.version == "v1beta1" else {
      changed { $0.rejectedRegistrations.append(request.resourceName) }
      throw RPCError(code: .invalidArgument, message: "unsupported version \(request.version)")
    }
    guard request.resourceName.contains("/"), !request.resourceName.contains("kubernetes.io/") else {
      changed { $0.rejectedRegistrations.append(request.resourceName) }
      throw RPCError(code: .invalidArgument, message: "invalid name \(request.resourceName)")
    }
    let path = directory + "/" + request.endpoint
    let transport = try HTTP2ClientTransport.Posix(
      target: .unixDomainSocket(path: path, authority: authority == .localhost ? "localhost" : path),
      transportSecurity: .plaintext)
    let client = GRPCClient(transport: transport)
    let run = Task { _ = try? await client.runConnections() }
    let plugin = V1beta1_DevicePlugin.Client(wrapping: client)
    let options: V1beta1_DevicePluginOptions
    do {
      options = try await plugin.getDevicePluginOptions(V1beta1_Empty())
    } catch {
      client.beginGracefulShutdown()
      changed { $0.rejectedRegistrations.append(request.resourceName) }
      throw RPCError(code: .unavailable, message: "GetDevicePluginOptions failed: \(error)")
    }
    // A new registration replaces the old endpoint.
    if let (old, oldRun) = clients[request.resourceName] {
      old.beginGracefulShutdown()
      oldRun.cancel()
    }
    clients[request.resourceName] = (client, run)
    changed {
      $0.registrations += 1
      $0.plugins[request.resourceName] = Plugin(request: request, options: options, streamOpen: true)
    }
    let resource = request.resourceName
    Task { await self.consumeListAndWatch(plugin, resource: resource, client: client) }
  }

  private func consumeListAndWatch(
    _ plugin: V1beta1_DevicePlugin.Client<HTTP2ClientTransport.Posix>, resource: String,
    client: GRPCClient<HTTP2ClientTransport.Posix>
  ) async {
    var failure: String?
    do {
      try await plugin.listAndWatch(V1beta1_Empty()) { response in
        for try await message in response.messages {
          await self.devicesArrived(resource, message.devices, client: client)
        }
      }
    } catch {
      failure = "\(error)"
    }
    streamEnded(resource, error: failure, client: client)
  }

  private func isCurrent(_ resource: String, _ client: GRPCClient<HTTP2ClientTransport.Posix>) -> Bool {
    clients[resource].map { $0.0 === client } ?? false
  }

  private func devicesArrived(_ resource: String, _ devices: [V1beta1_Device], client: GRPCClient<HTTP2ClientTransport.Posix>) {
    guard isCurrent(resource, client) else { return }
    changed {
      $0.plugins[resource]?.devices = devices
      $0.plugins[resource]?.updates += 1
    }
  }

  /// As the kubelet: a stream that ends marks every device of the resource unhealthy.
  private func streamEnded(_ resource: String, error: String?, client: GRPCClient<HTTP2ClientTransport.Posix>) {
    guard isCurrent(resource, client) else { return }
    changed {
      $0.plugins[resource]?.streamOpen = false
      $0.plugins[resource]?.streamError = error
      if let devices = $0.plugins[resource]?.devices {
        $0.plugins[resource]?.devices = devices.map { device in
          var device = device
          device.health = "Unhealthy"
          return device
        }
      }
    }
  }
}

private struct RegistrationService: V1beta1_Registration.SimpleServiceProtocol {
  let kubelet: KubeletEmulator

  func register(request: V1beta1_RegisterRequest, context: ServerContext) async throws -> V1beta1_Empty {
    try await kubelet.register(request)
    return V1beta1_Empty()
  }
}

/// A wait that ran out: names what was awaited.
public struct TimedOut: Error, CustomStringConvertible {
  public var what: String
  public init(what: String) { self.what = what }
  public var description: String { "timed out waiting for \(what)" }
}
