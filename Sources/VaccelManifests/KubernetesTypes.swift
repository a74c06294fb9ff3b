/// The Kubernetes object shapes the manifests use: only the fields we set, named as the API
/// names them, so that encoding one gives the object's YAML. Rendering sorts keys, as kubectl does.
public struct ObjectMeta: Codable, Sendable, Equatable {
  public var name: String
  public var namespace: String?
  public var labels: [String: String]?
  public var annotations: [String: String]?
}

public struct Namespace: Codable, Sendable, Equatable {
  public var apiVersion = "v1"
  public var kind = "Namespace"
  public var metadata: ObjectMeta
}

public struct ServiceAccount: Codable, Sendable, Equatable {
  public var apiVersion = "v1"
  public var kind = "ServiceAccount"
  public var metadata: ObjectMeta
  public var automountServiceAccountToken: Bool?
}

public struct ConfigMap: Codable, Sendable, Equatable {
  public var apiVersion = "v1"
  public var kind = "ConfigMap"
  public var metadata: ObjectMeta
  public var data: [String: String]
}

public struct RuntimeClass: Codable, Sendable, Equatable {
  public struct Overhead: Codable, Sendable, Equatable {
    public var podFixed: [String: String]
  }
  public struct Scheduling: Codable, Sendable, Equatable {
    public var nodeSelector: [String: String]?
    public var tolerations: [Toleration]?
  }
  public var apiVersion = "node.k8s.io/v1"
  public var kind = "RuntimeClass"
  public var metadata: ObjectMeta
  public var handler: String
  public var overhead: Overhead?
  public var scheduling: Scheduling?
}

public struct DaemonSet: Codable, Sendable, Equatable {
  public struct Spec: Codable, Sendable, Equatable {
    public var selector: LabelSelector
    public var updateStrategy: UpdateStrategy
    public var template: PodTemplate
  }
  public struct UpdateStrategy: Codable, Sendable, Equatable {
    public struct RollingUpdate: Codable, Sendable, Equatable {
      public var maxSurge: Int
      public var maxUnavailable: Int
    }
    public var type = "RollingUpdate"
    /// nil with `type: OnDelete`.
    public var rollingUpdate: RollingUpdate?
  }
  public var apiVersion = "apps/v1"
  public var kind = "DaemonSet"
  public var metadata: ObjectMeta
  public var spec: Spec
}

public struct LabelSelector: Codable, Sendable, Equatable {
  public var matchLabels: [String: String]
}

public struct PodTemplate: Codable, Sendable, Equatable {
  public var metadata: ObjectMeta
  public var spec: PodSpec
}

public struct Pod: Codable, Sendable, Equatable {
  public var apiVersion = "v1"
  public var kind = "Pod"
  public var metadata: ObjectMeta
  public var spec: PodSpec
}

public struct PodSpec: Codable, Sendable, Equatable {
  public var serviceAccountName: String?
  public var automountServiceAccountToken: Bool?
  public var priorityClassName: String?
  public var runtimeClassName: String?
  public var nodeSelector: [String: String]?
  public var tolerations: [Toleration]?
  public var securityContext: PodSecurityContext?
  public var terminationGracePeriodSeconds: Int?
  public var restartPolicy: String?
  public var containers: [Container]
  public var volumes: [Volume]?
}

public struct PodSecurityContext: Codable, Sendable, Equatable {
  public var seccompProfile: SeccompProfile?
}

public struct SeccompProfile: Codable, Sendable, Equatable {
  public var type: String
}

public struct Toleration: Codable, Sendable, Equatable {
  public var key: String?
  public var `operator`: String
  public var effect: String?
}

public struct Container: Codable, Sendable, Equatable {
  public var name: String
  public var image: String
  public var imagePullPolicy: String?
  public var command: [String]?
  public var args: [String]?
  public var env: [EnvVar]?
  public var ports: [ContainerPort]?
  public var resources: Resources?
  public var securityContext: SecurityContext?
  public var livenessProbe: Probe?
  public var readinessProbe: Probe?
  public var startupProbe: Probe?
  public var volumeMounts: [VolumeMount]?
}

public struct EnvVar: Codable, Sendable, Equatable {
  public struct Source: Codable, Sendable, Equatable {
    public struct FieldRef: Codable, Sendable, Equatable {
      public var fieldPath: String
    }
    public var fieldRef: FieldRef
  }
  public var name: String
  public var value: String?
  public var valueFrom: Source?
}

public struct ContainerPort: Codable, Sendable, Equatable {
  public var name: String
  public var containerPort: Int
  public var `protocol` = "TCP"
}

public struct Resources: Codable, Sendable, Equatable {
  public var requests: [String: String]?
  public var limits: [String: String]?
}

public struct SecurityContext: Codable, Sendable, Equatable {
  public struct Capabilities: Codable, Sendable, Equatable {
    public var drop: [String]?
    public var add: [String]?
  }
  public var runAsUser: Int?
  public var runAsNonRoot: Bool?
  public var privileged: Bool?
  public var allowPrivilegeEscalation: Bool?
  public var readOnlyRootFilesystem: Bool?
  public var capabilities: Capabilities?
  public var seccompProfile: SeccompProfile?
}

public struct Probe: Codable, Sendable, Equatable {
  public struct HTTPGet: Codable, Sendable, Equatable {
    public var path: String
    public var port: String
  }
  public var httpGet: HTTPGet
  public var initialDelaySeconds: Int?
  public var periodSeconds: Int?
  public var timeoutSeconds: Int?
  public var failureThreshold: Int?
}

public struct VolumeMount: Codable, Sendable, Equatable {
  public var name: String
  public var mountPath: String
  public var readOnly: Bool?
  public var mountPropagation: String?

  public init(name: String, mountPath: String, readOnly: Bool? = nil, mountPropagation: String? = nil) {
    self.name = name
    self.mountPath = mountPath
    self.readOnly = readOnly
    self.mountPropagation = mountPropagation
  }
}

public struct Volume: Codable, Sendable, Equatable {
  public struct HostPath: Codable, Sendable, Equatable {
    public var path: String
    public var type: String
  }
  public struct ConfigMapSource: Codable, Sendable, Equatable {
    public var name: String
  }
  public struct EmptyDir: Codable, Sendable, Equatable {
    public var medium: String?
    public var sizeLimit: String?
  }
  public var name: String
  public var hostPath: HostPath?
  public var configMap: ConfigMapSource?
  public var emptyDir: EmptyDir?
}
