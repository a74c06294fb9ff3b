import NodeSupport
import Testing

@Suite("Plain-text searches (no _StringProcessing)")
struct PlainTextTests {
  @Test func findsTheFirstOccurrence() throws {
    let text = "unix:///run/a://b"
    let range = try #require(text.firstUTF8Range(of: "://"))
    #expect(text[..<range.lowerBound] == "unix")
    #expect(text[range.upperBound...] == "/run/a://b")
  }

  @Test func aPartialMatchDoesNotHideALaterOne() {
    #expect("aab".includes("ab"))
    #expect("ababac".firstUTF8Range(of: "abac").map { "ababac"[$0] } == "abac")
    #expect(!"abab".includes("abac"))
    #expect(!"ab".includes("abc"))
  }

  @Test func multiByteTextIsMatchedWhole() throws {
    let text = "pod→sandbox→socket"
    let range = try #require(text.firstUTF8Range(of: "→socket"))
    #expect(text[..<range.lowerBound] == "pod→sandbox")
  }

  @Test func emptyTextOccursAtTheStart() {
    #expect("abc".firstUTF8Range(of: "") == "abc".startIndex..<"abc".startIndex)
    #expect("".includes(""))
    #expect(!"".includes("a"))
  }

  @Test func replacesEveryOccurrenceLeftToRight() {
    #expect("--address {address} --again {address}".replacingEvery("{address}", with: "unix:///a.sock")
      == "--address unix:///a.sock --again unix:///a.sock")
    #expect("aaa".replacingEvery("aa", with: "b") == "ba")
    #expect("none here".replacingEvery("{address}", with: "x") == "none here")
    #expect("keep".replacingEvery("", with: "x") == "keep")
    #expect("{id}".replacingEvery("{id}", with: "{id}{id}") == "{id}{id}")
  }

  @Test func worksOnSubstrings() {
    let line = "prefix: the agent panicked at src/main.rs"
    let tail = line.dropFirst(8)
    #expect(tail.includes("panicked"))
    #expect(tail.replacingEvery("agent", with: "vaccel-rpc-agent") == "the vaccel-rpc-agent panicked at src/main.rs")
  }
}
