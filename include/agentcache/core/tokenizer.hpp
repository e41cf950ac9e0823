// Exact token counts of OpenAI's byte-pair encodings o200k_base and
// cl100k_base, as tiktoken's encode_ordinary counts them (special-token text
// is ordinary text): the text is split by the encoding's pre-tokenization
// pattern (implemented by hand, below, with the regex's leftmost-first,
// backtracking semantics; Unicode general categories from ICU), and each
// piece's bytes are merged pair by pair, lowest rank first, leftmost on
// ties.
//
// A RankTable is built once from the encoding's .tiktoken file (one
// "base64-token rank" per line) and is read-only afterwards: it can be
// shared by every caller (and by processes forked after it was built).
// Counting allocates nothing per token: a Counter keeps its buffers between
// calls.
#pragma once
#include "agentcache/core/pure.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agentcache::core::tok {

enum class Encoding : uint8_t { O200kBase, Cl100kBase };

// "o200k_base" / "cl100k_base"; false for any other name.
bool encoding_from_name(std::string_view name, Encoding* out);
const char* encoding_name(Encoding e);

// The mergeable ranks of one encoding: byte string -> rank.
class RankTable {
 public:
  // Parses a .tiktoken file. False (with a message) on a malformed line, a
  // duplicate token or rank, or a missing single byte (every byte must be a
  // token, so that any input has an encoding).
  bool load(std::string_view tiktoken, std::string* error);
  // The rank of `n` bytes at `p`, or -1.
  int32_t rank(const uint8_t* p, std::size_t n) const noexcept;
  std::size_t size() const noexcept { return n_tokens_; }
  std::size_t memory_bytes() const noexcept;

 private:
  struct Token {
    uint32_t offset;  // into bytes_
    uint32_t length;
    uint32_t rank;
  };
  std::string bytes_;            // every token's bytes, back to back
  std::vector<Token> tokens_;    // by insertion order
  std::vector<uint32_t> slots_;  // open addressing: index into tokens_ + 1; 0 = empty
  uint64_t mask_ = 0;
  std::size_t n_tokens_ = 0;
};

// Pre-tokenization: the end (byte offset) of the piece of valid UTF-8
// `text` that starts at byte `pos` (< text.size()). Every position starts a
// piece (each pattern matches any character), so pieces tile the text.
std::size_t piece_end(Encoding e, std::string_view text, std::size_t pos);

// Counts tokens. Not thread-safe (its buffers are reused); one per thread.
class Counter {
 public:
  // Tokens of valid UTF-8 `text` (the caller validates it: PostgreSQL text
  // in a UTF-8 database always is).
  std::size_t count(const RankTable& ranks, Encoding e, std::string_view text);
  // Tokens of one piece's bytes (the byte-pair merge). Exposed for tests.
  std::size_t count_piece(const RankTable& ranks, const uint8_t* p, std::size_t n);

 private:
  struct Part {
    uint32_t start;
    int32_t prev;
    int32_t next;
    uint32_t version;
    int32_t rank;  // of this part merged with the next; -1: none
  };
  struct Entry {
    int32_t rank;
    uint32_t start;
    int32_t part;
    uint32_t version;
  };
  std::vector<Part> parts_;
  std::vector<Entry> heap_;
};

}  // namespace agentcache::core::tok
