// UTF-8 character counting, context trimming arithmetic, hashing and the role
// vocabulary. Header-only, pure C++.
#pragma once
#include "agentcache/core/pure.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace agentcache::core {

// Number of Unicode code points in well-formed UTF-8 (counts every byte that
// is not a continuation byte 10xxxxxx). PostgreSQL has already validated the
// encoding of any text it hands us.
inline std::uint32_t utf8_chars(std::string_view s) noexcept {
  std::uint32_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Given per-turn character counts of the newest `count` turns (oldest first),
// returns how many of the oldest to drop so that the total is <= max_chars:
// keeps the longest suffix whose sum fits. A newest turn longer than
// max_chars alone yields count (everything dropped).
template <class CharsAt>
std::size_t trim_oldest(std::size_t count, std::uint64_t max_chars, CharsAt chars_at) {
  std::uint64_t total = 0;
  std::size_t keep = 0;
  while (keep < count) {
    std::uint64_t c = chars_at(count - 1 - keep);
    if (total + c > max_chars) break;
    total += c;
    ++keep;
  }
  return count - keep;
}

// 64-bit hash: FNV-1a over the bytes, seeded, finished with a murmur3 fmix64
// so that high and low bits are both well distributed (we use top bits for
// the partition and low bits for the bucket).
inline std::uint64_t fmix64(std::uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed = 0) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ fmix64(seed + 0x9e3779b97f4a7c15ULL);
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return fmix64(h ^ s.size());
}

// A session is identified by (database oid, session_id).
inline std::uint64_t session_hash(std::uint32_t db, std::string_view session_id) noexcept {
  return hash_bytes(session_id, db);
}

enum class Role : std::uint8_t { User = 0, Assistant = 1, System = 2, Tool = 3 };

inline std::optional<Role> parse_role(std::string_view s) noexcept {
  if (s == "user") return Role::User;
  if (s == "assistant") return Role::Assistant;
  if (s == "system") return Role::System;
  if (s == "tool") return Role::Tool;
  return std::nullopt;
}

inline std::string_view role_name(Role r) noexcept {
  switch (r) {
    case Role::User:
      return "user";
    case Role::Assistant:
      return "assistant";
    case Role::System:
      return "system";
    case Role::Tool:
      return "tool";
  }
  return "user";
}

}  // namespace agentcache::core
