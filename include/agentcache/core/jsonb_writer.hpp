// Direct encoder of PostgreSQL's jsonb on-disk format for the one shape the
// conversation tier returns: an array of turn objects
//   {"at": string, "seq": numeric, ["meta": any,] "role": string, "content": string}
// written in one pass into a buffer the caller sizes with a dry run.
//
// Format (PostgreSQL src/include/utils/jsonb.h): a varlena header, then the
// root container: uint32 header (count | JB_FARRAY/JB_FOBJECT), one JEntry per
// child (object: all keys, then all values; keys sorted by length, then bytes),
// then the children's data. A JEntry holds type bits and the child's length,
// or, every JB_OFFSET_STRIDE-th child, the end offset (JENTRY_HAS_OFF).
// Numerics and containers are padded to 4-byte alignment measured from the
// start of the datum; the padding counts in their length.
#pragma once
#include "agentcache/core/pure.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace agentcache::core::jsonb {

constexpr std::uint32_t kOffLenMask = 0x0FFFFFFF;
constexpr std::uint32_t kTypeMask = 0x70000000;
constexpr std::uint32_t kHasOff = 0x80000000;
constexpr std::uint32_t kIsString = 0x00000000;
constexpr std::uint32_t kIsNumeric = 0x10000000;
constexpr std::uint32_t kIsBoolFalse = 0x20000000;
constexpr std::uint32_t kIsBoolTrue = 0x30000000;
constexpr std::uint32_t kIsNull = 0x40000000;
constexpr std::uint32_t kIsContainer = 0x50000000;
constexpr std::uint32_t kCountMask = 0x0FFFFFFF;
constexpr std::uint32_t kFScalar = 0x10000000;
constexpr std::uint32_t kFObject = 0x20000000;
constexpr std::uint32_t kFArray = 0x40000000;
constexpr std::uint32_t kOffsetStride = 32;
constexpr std::size_t kVarHdr = 4;

// A value to embed: type bits (kIsString, kIsNumeric, kIsContainer, kIsNull,
// kIsBool*) and its bytes (a numeric varlena, a container, or string bytes).
struct Value {
  std::uint32_t type = kIsNull;
  const char* data = nullptr;
  std::uint32_t len = 0;
};

// Turns a stored jsonb root container (the bytes after a jsonb varlena
// header) into an embeddable Value: a raw scalar (JB_FSCALAR array of one)
// becomes that scalar; any other container is embedded whole.
Value from_root(const char* root, std::uint32_t root_len) noexcept;

struct Turn {
  std::string_view at;  // rendered timestamp
  Value seq;            // numeric
  bool has_meta = false;
  Value meta;
  std::string_view role;
  std::string_view content;
};

// Writes the datum (varlena header left for the caller to set, bytes 0..3)
// into out, or only measures it when out is nullptr. Returns the total size,
// or 0 if a container would exceed jsonb's 256 MB offset limit.
std::size_t write_context(char* out, const Turn* turns, std::size_t n) noexcept;

// An object of n pairs as a whole datum, same conventions. Keys must already
// be in jsonb order (shorter first, then bytewise) and distinct; values are
// embedded as given (containers verbatim).
std::size_t write_object(char* out, const std::string_view* keys, const Value* values, std::size_t n) noexcept;

}  // namespace agentcache::core::jsonb
