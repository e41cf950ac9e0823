// Direct jsonb encoder; see include/agentcache/core/jsonb_writer.hpp.
#include "agentcache/core/jsonb_writer.hpp"

#include <cstring>

namespace agentcache::core::jsonb {

namespace {

class Writer {
 public:
  explicit Writer(char* out) noexcept : out_(out) {}
  std::size_t pos() const noexcept { return pos_; }
  bool overflow() const noexcept { return overflow_; }

  void put(const void* p, std::size_t n) noexcept {
    if (out_ != nullptr && n != 0) std::memcpy(out_ + pos_, p, n);
    pos_ += n;
  }
  std::size_t pad() noexcept {
    std::size_t padlen = ((pos_ + 3) & ~std::size_t(3)) - pos_;
    if (out_ != nullptr && padlen != 0) std::memset(out_ + pos_, 0, padlen);
    pos_ += padlen;
    return padlen;
  }
  std::size_t reserve(std::size_t n) noexcept {
    std::size_t at = pos_;
    pos_ += n;
    return at;
  }
  void set_u32(std::size_t at, std::uint32_t v) noexcept {
    if (out_ != nullptr) std::memcpy(out_ + at, &v, sizeof v);
  }
  // Writes a child's data; returns its JEntry (type | length incl. padding).
  std::uint32_t value(const Value& v) noexcept {
    std::size_t len = 0;
    if (v.type == kIsNumeric || v.type == kIsContainer) {
      len = pad();
      put(v.data, v.len);
      len += v.len;
    } else if (v.type == kIsString) {
      put(v.data, v.len);
      len = v.len;
    }
    return v.type | checked(len);
  }
  std::uint32_t string(std::string_view s) noexcept {
    put(s.data(), s.size());
    return kIsString | checked(s.size());
  }
  // Turns running child lengths into the JEntry stored at index i.
  std::uint32_t entry(std::uint32_t meta, std::size_t i, std::size_t& total) noexcept {
    total += meta & kOffLenMask;
    checked(total);
    if (i % kOffsetStride == 0) meta = (meta & kTypeMask) | static_cast<std::uint32_t>(total & kOffLenMask) | kHasOff;
    return meta;
  }
  std::uint32_t checked(std::size_t n) noexcept {
    if (n > kOffLenMask) overflow_ = true;
    return static_cast<std::uint32_t>(n & kOffLenMask);
  }

 private:
  char* out_;
  std::size_t pos_ = 0;
  bool overflow_ = false;
};

// An object container of n pairs (keys already in jsonb order); returns its JEntry.
std::uint32_t write_pairs(Writer& w, const std::string_view* keys, const Value* vals, std::size_t n) noexcept {
  const std::size_t base = w.pos();
  w.pad();
  std::uint32_t header = static_cast<std::uint32_t>(n) | kFObject;
  w.put(&header, sizeof header);
  const std::size_t entries = w.reserve(sizeof(std::uint32_t) * 2 * n);
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) w.set_u32(entries + 4 * i, w.entry(w.string(keys[i]), i, total));
  for (std::size_t i = 0; i < n; ++i) w.set_u32(entries + 4 * (n + i), w.entry(w.value(vals[i]), n + i, total));
  return kIsContainer | w.checked(w.pos() - base);
}

std::uint32_t write_turn(Writer& w, const Turn& t) noexcept {
  // keys in jsonb order: shorter first, then bytewise
  std::string_view keys[5];
  Value vals[5];
  std::size_t n = 0;
  keys[n] = "at";
  vals[n++] = Value{kIsString, t.at.data(), static_cast<std::uint32_t>(t.at.size())};
  keys[n] = "seq";
  vals[n++] = t.seq;
  if (t.has_meta) {
    keys[n] = "meta";
    vals[n++] = t.meta;
  }
  keys[n] = "role";
  vals[n++] = Value{kIsString, t.role.data(), static_cast<std::uint32_t>(t.role.size())};
  keys[n] = "content";
  vals[n++] = Value{kIsString, t.content.data(), static_cast<std::uint32_t>(t.content.size())};
  return write_pairs(w, keys, vals, n);
}

}  // namespace

Value from_root(const char* root, std::uint32_t root_len) noexcept {
  std::uint32_t header;
  std::memcpy(&header, root, sizeof header);
  if ((header & kFScalar) != 0 && (header & kCountMask) == 1) {
    std::uint32_t je;
    std::memcpy(&je, root + 4, sizeof je);
    Value v;
    v.type = je & kTypeMask;
    v.data = root + 8;         // int-aligned in the source datum: no padding precedes it
    v.len = je & kOffLenMask;  // for child 0 the end offset equals the length
    return v;
  }
  return Value{kIsContainer, root, root_len};
}

std::size_t write_context(char* out, const Turn* turns, std::size_t n) noexcept {
  Writer w(out);
  w.reserve(kVarHdr);
  w.pad();
  std::uint32_t header = static_cast<std::uint32_t>(n) | kFArray;
  w.put(&header, sizeof header);
  const std::size_t entries = w.reserve(sizeof(std::uint32_t) * n);
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) w.set_u32(entries + 4 * i, w.entry(write_turn(w, turns[i]), i, total));
  if (w.overflow() || n > kCountMask) return 0;
  return w.pos();
}

std::size_t write_object(char* out, const std::string_view* keys, const Value* values, std::size_t n) noexcept {
  Writer w(out);
  w.reserve(kVarHdr);
  // the root object is written as the datum's container (no JEntry above it)
  (void)write_pairs(w, keys, values, n);
  if (w.overflow() || n > kCountMask) return 0;
  return w.pos();
}

}  // namespace agentcache::core::jsonb

#include "agentcache/core/pure_check.hpp"
