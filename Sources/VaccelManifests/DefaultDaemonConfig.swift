/// The daemon config the manifests ship when no `--config` is given: one resource per way a
/// pod reaches its agent, each paired with what serves it.
public enum DefaultDaemonConfig {
  public static let yaml = """
    # vaccel-device-plugin configuration; every field is described in the README, "Configuration".
    version: v1
    logLevel: info
    logFormat: keyvalue
    metrics:
      address: 0.0.0.0:9464
    # Agents run in the vaccel-agent-host pod (its own DaemonSet, updated OnDelete), so that a
    # rollout of this daemon leaves them serving their pods (README, "Rollouts").
    agentHost:
      socket: /var/run/vaccel/agent-host/agent-host.sock
    agent:
      # The host's vAccel install, mounted read-only at the same path.
      binary: /opt/vaccel/bin/vaccel-rpc-agent
      libraryPath: /opt/vaccel/lib
      plugins: [libvaccel-noop.so]
    resources:
      # Plain containers: each pod gets its own agent on a unix socket in its slot folder.
      - name: vaccel.org/accel
        slots: 8
        warm: 2
      # Kata with Firecracker, Cloud Hypervisor or Dragonball (RuntimeClasses vaccel-kata-fc,
      # vaccel-kata-clh, vaccel-kata-dragonball): each pod's agent listens on its own VM's
      # hybrid-vsock socket, found through the runtime's CRI socket (see sandboxes: below).
      - name: vaccel.org/accel-hvsock
        transport: hybrid-vsock
        slots: 8
      # Kata with QEMU (RuntimeClass kata-qemu-vaccel): agents on the host, reached over vsock.
      # Not isolated: any VM on the node can reach any port (README, "VM sandboxes").
      - name: vaccel.org/accel-vm
        transport: vsock
        slots: 8
      # Kata-vAccel runtimes (RuntimeClass kata-fc-vaccel) start their own agents: counted only.
      - name: vaccel.org/accel-fc
        agents: runtime
        slots: 8

    """
}
