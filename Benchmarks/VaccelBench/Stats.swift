/// Medians and percentiles of a sample of durations.
struct Sample {
  var values: [Duration] = []

  mutating func add(_ value: Duration) { values.append(value) }

  func percentile(_ p: Double) -> Duration {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .zero }
    let rank = Int((Double(sorted.count - 1) * p).rounded())
    return sorted[rank]
  }

  var median: Duration { percentile(0.5) }
  var p99: Duration { percentile(0.99) }
}

extension Duration {
  var milliseconds: Double {
    Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
  }
}

func ms(_ duration: Duration) -> String {
  let value = duration.milliseconds
  return value < 10 ? String(format: "%.3f ms", value) : String(format: "%.1f ms", value)
}

func ratio(_ a: Duration, _ b: Duration) -> String {
  String(format: "%.2f", a.milliseconds / max(b.milliseconds, 0.000_001))
}
