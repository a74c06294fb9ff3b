import Testing
@testable import VaccelCtlKit

@Suite struct StatusFormatTests {
  @Test func agesReadLikeKubectl() {
    #expect(StatusFormat.age(since: 1_000, now: 46_000) == "45s")
    #expect(StatusFormat.age(since: 0, now: 46_000) == "")
  }
}
