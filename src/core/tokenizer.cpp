// Token counts of o200k_base and cl100k_base (see tokenizer.hpp).
#include "agentcache/core/tokenizer.hpp"

#include <unicode/uchar.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace agentcache::core::tok {

bool encoding_from_name(std::string_view name, Encoding* out) {
  if (name == "o200k_base") {
    *out = Encoding::O200kBase;
    return true;
  }
  if (name == "cl100k_base") {
    *out = Encoding::Cl100kBase;
    return true;
  }
  return false;
}

const char* encoding_name(Encoding e) { return e == Encoding::O200kBase ? "o200k_base" : "cl100k_base"; }

// ------------------------------------------------------------------ rank table

namespace {

uint64_t hash_bytes(const uint8_t* p, std::size_t n) noexcept {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * 0x94d049bb133111ebull;
  h ^= h >> 32;
  return h;
}

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with '=' padding; appends to *out. False when malformed.
bool base64_decode(std::string_view in, std::string* out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad > 0) return false;
        v[k] = base64_value(c);
        if (v[k] < 0) return false;
      }
    }
    const uint32_t triple = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out->push_back(static_cast<char>((triple >> 16) & 0xff));
    if (pad < 2) out->push_back(static_cast<char>((triple >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(triple & 0xff));
  }
  return true;
}

}  // namespace

bool RankTable::load(std::string_view text, std::string* error) {
  bytes_.clear();
  tokens_.clear();
  std::size_t lines = 0;
  for (char c : text) lines += c == '\n';
  tokens_.reserve(lines + 1);
  bytes_.reserve(text.size() * 3 / 4);
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 >= line.size()) {
      *error = "line " + std::to_string(line_no) + ": expected \"base64-token rank\"";
      return false;
    }
    uint64_t rank = 0;
    for (char c : line.substr(sp + 1)) {
      if (c < '0' || c > '9' || rank > std::numeric_limits<int32_t>::max() / 10) {
        *error = "line " + std::to_string(line_no) + ": bad rank";
        return false;
      }
      rank = rank * 10 + static_cast<uint64_t>(c - '0');
    }
    const std::size_t before = bytes_.size();
    if (!base64_decode(line.substr(0, sp), &bytes_) || bytes_.size() == before) {
      *error = "line " + std::to_string(line_no) + ": bad base64 token";
      return false;
    }
    tokens_.push_back(Token{static_cast<uint32_t>(before), static_cast<uint32_t>(bytes_.size() - before),
                            static_cast<uint32_t>(rank)});
  }
  n_tokens_ = tokens_.size();
  std::size_t cap = 16;
  while (cap < n_tokens_ * 2) cap <<= 1;
  slots_.assign(cap, 0);
  mask_ = cap - 1;
  std::vector<bool> rank_seen;
  for (std::size_t i = 0; i < n_tokens_; ++i) {
    const Token& t = tokens_[i];
    const auto* p = reinterpret_cast<const uint8_t*>(bytes_.data()) + t.offset;
    if (rank(p, t.length) >= 0) {
      *error = "duplicate token at rank " + std::to_string(t.rank);
      return false;
    }
    if (t.rank >= rank_seen.size()) rank_seen.resize(t.rank + 1, false);
    if (rank_seen[t.rank]) {
      *error = "duplicate rank " + std::to_string(t.rank);
      return false;
    }
    rank_seen[t.rank] = true;
    uint64_t h = hash_bytes(p, t.length) & mask_;
    while (slots_[h] != 0) h = (h + 1) & mask_;
    slots_[h] = static_cast<uint32_t>(i + 1);
  }
  for (int b = 0; b < 256; ++b) {
    const uint8_t byte = static_cast<uint8_t>(b);
    if (rank(&byte, 1) < 0) {
      *error = "byte " + std::to_string(b) + " is not a token";
      return false;
    }
  }
  return true;
}

int32_t RankTable::rank(const uint8_t* p, std::size_t n) const noexcept {
  if (slots_.empty()) return -1;
  uint64_t h = hash_bytes(p, n) & mask_;
  for (;;) {
    const uint32_t s = slots_[h];
    if (s == 0) return -1;
    const Token& t = tokens_[s - 1];
    if (t.length == n && std::memcmp(bytes_.data() + t.offset, p, n) == 0) return static_cast<int32_t>(t.rank);
    h = (h + 1) & mask_;
  }
}

std::size_t RankTable::memory_bytes() const noexcept {
  return bytes_.capacity() + tokens_.capacity() * sizeof(Token) + slots_.capacity() * sizeof(uint32_t);
}

// ------------------------------------------------------------------ character classes

namespace {

enum : uint16_t {
  kLu = 1 << 0,
  kLl = 1 << 1,
  kLt = 1 << 2,
  kLm = 1 << 3,
  kLo = 1 << 4,
  kM = 1 << 5,   // Mn, Mc, Me
  kN = 1 << 6,   // Nd, Nl, No
  kWS = 1 << 7,  // the White_Space property (the regex's \s)
  kCR = 1 << 8,
  kLF = 1 << 9,
};
constexpr uint16_t kL = kLu | kLl | kLt | kLm | kLo;
constexpr uint16_t kUpperish = kLu | kLt | kLm | kLo | kM;  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
constexpr uint16_t kLowerish = kLl | kLm | kLo | kM;        // [\p{Ll}\p{Lm}\p{Lo}\p{M}]

uint16_t classify(UChar32 c) noexcept {
  uint16_t f = 0;
  switch (u_charType(c)) {
    case U_UPPERCASE_LETTER:
      f = kLu;
      break;
    case U_LOWERCASE_LETTER:
      f = kLl;
      break;
    case U_TITLECASE_LETTER:
      f = kLt;
      break;
    case U_MODIFIER_LETTER:
      f = kLm;
      break;
    case U_OTHER_LETTER:
      f = kLo;
      break;
    case U_NON_SPACING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_ENCLOSING_MARK:
      f = kM;
      break;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      f = kN;
      break;
    default:
      break;
  }
  if (u_isUWhiteSpace(c)) f |= kWS;
  if (c == '\r') f |= kCR;
  if (c == '\n') f |= kLF;
  return f;
}

// The Basic Multilingual Plane's classes, computed once per process.
struct BmpClasses {
  std::array<uint16_t, 0x10000> cls;
  BmpClasses() {
    for (UChar32 c = 0; c < 0x10000; ++c) cls[static_cast<std::size_t>(c)] = classify(c);
  }
};

const BmpClasses& bmp() {
  static const BmpClasses table;
  return table;
}

// Decodes the (valid) UTF-8 character at s[i]: its classes and byte length.
struct Char {
  uint16_t cls;
  uint8_t len;
  uint32_t cp;
};

class Scanner {
 public:
  Scanner(std::string_view text) noexcept
      : s_(reinterpret_cast<const uint8_t*>(text.data())), n_(text.size()), bmp_(bmp().cls) {}
  std::size_t size() const noexcept { return n_; }
  Char at(std::size_t i) const noexcept {
    const uint8_t b = s_[i];
    uint32_t cp;
    uint8_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if (i + len > n_) return Char{0, static_cast<uint8_t>(n_ - i), 0xFFFD};  // truncated (not valid UTF-8): no overrun
    if (b < 0x80) {
      cp = b;
    } else if (b < 0xE0) {
      cp = (uint32_t(b & 0x1F) << 6) | (s_[i + 1] & 0x3F);
    } else if (b < 0xF0) {
      cp = (uint32_t(b & 0x0F) << 12) | (uint32_t(s_[i + 1] & 0x3F) << 6) | (s_[i + 2] & 0x3F);
    } else {
      cp = (uint32_t(b & 0x07) << 18) | (uint32_t(s_[i + 1] & 0x3F) << 12) | (uint32_t(s_[i + 2] & 0x3F) << 6) |
           (s_[i + 3] & 0x3F);
    }
    const uint16_t cls = cp < 0x10000 ? bmp_[cp] : classify(static_cast<UChar32>(cp));
    return Char{cls, len, cp};
  }
  uint8_t byte(std::size_t i) const noexcept { return s_[i]; }

  // The end of the run of characters from i whose classes intersect `any`.
  std::size_t run(std::size_t i, uint16_t any) const noexcept {
    while (i < n_) {
      const Char c = at(i);
      if (!(c.cls & any)) break;
      i += c.len;
    }
    return i;
  }

 private:
  const uint8_t* s_;
  std::size_t n_;
  const std::array<uint16_t, 0x10000>& bmp_;
};

constexpr std::size_t kNo = std::numeric_limits<std::size_t>::max();

bool is_p1(uint16_t cls) noexcept { return !(cls & (kCR | kLF | kL | kN)); }  // [^\r\n\p{L}\p{N}]
bool is_p2(uint16_t cls) noexcept { return !(cls & (kWS | kL | kN)); }        // [^\s\p{L}\p{N}]

// (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: its end, or kNo. Case-insensitive as
// the regex crate folds (simple case folding: 's' also matches U+017F ſ).
std::size_t contraction(const Scanner& s, std::size_t i) noexcept {
  if (i >= s.size() || s.byte(i) != '\'') return kNo;
  std::size_t j = i + 1;
  if (j >= s.size()) return kNo;
  const Char c1 = s.at(j);
  auto lower = [](uint32_t cp) -> uint32_t {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp == 0x017F) return 's';
    return cp;
  };
  const uint32_t a = lower(c1.cp);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return j + c1.len;
  if (a != 'r' && a != 'v' && a != 'l') return kNo;
  const std::size_t k = j + c1.len;
  if (k >= s.size()) return kNo;
  const Char c2 = s.at(k);
  const uint32_t b = lower(c2.cp);
  if ((a == 'r' || a == 'v') && b == 'e') return k + c2.len;
  if (a == 'l' && b == 'l') return k + c2.len;
  return kNo;
}

std::size_t with_contraction(const Scanner& s, std::size_t e) noexcept {
  const std::size_t c = contraction(s, e);
  return c == kNo ? e : c;
}

// o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:contraction)?
// from j: the upper-ish run backs off to the last place a lower-ish
// character can start the mandatory run.
std::size_t o200k_rest1(const Scanner& s, std::size_t j) noexcept {
  std::size_t best = kNo;  // the farthest lower-ish start reachable through upper-ish characters
  std::size_t i = j;
  while (i < s.size()) {
    const Char c = s.at(i);
    if (c.cls & kLowerish) best = i;
    if (!(c.cls & kUpperish)) break;
    i += c.len;
  }
  if (best == kNo) return kNo;
  return with_contraction(s, s.run(best, kLowerish));
}

// o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:contraction)?
std::size_t o200k_rest2(const Scanner& s, std::size_t j) noexcept {
  const std::size_t e = s.run(j, kUpperish);
  if (e == j) return kNo;
  return with_contraction(s, s.run(e, kLowerish));
}

// [^\r\n\p{L}\p{N}]? then `rest`: with the optional character first.
template <class Rest>
std::size_t optional_p1(const Scanner& s, std::size_t i, Rest rest) noexcept {
  const Char c = s.at(i);
  if (is_p1(c.cls)) {
    const std::size_t r = rest(s, i + c.len);
    if (r != kNo) return r;
  }
  return rest(s, i);
}

// \p{N}{1,3}
std::size_t digits(const Scanner& s, std::size_t i) noexcept {
  std::size_t e = i;
  for (int k = 0; k < 3 && e < s.size(); ++k) {
    const Char c = s.at(e);
    if (!(c.cls & kN)) break;
    e += c.len;
  }
  return e == i ? kNo : e;
}

// ' ?[^\s\p{L}\p{N}]+' then a run of `tail` characters ([\r\n] or [\r\n/])
std::size_t punctuation(const Scanner& s, std::size_t i, bool slash) noexcept {
  std::size_t j = i;
  if (s.byte(i) == ' ' && i + 1 < s.size() && is_p2(s.at(i + 1).cls)) j = i + 1;
  if (!is_p2(s.at(j).cls)) return kNo;
  std::size_t e = j;
  while (e < s.size()) {
    const Char c = s.at(e);
    if (!is_p2(c.cls)) break;
    e += c.len;
  }
  while (e < s.size() && (s.byte(e) == '\r' || s.byte(e) == '\n' || (slash && s.byte(e) == '/'))) ++e;
  return e;
}

// \s*[\r\n]+ | \s+(?!\S) | \s+ — in that order, on the whitespace run at i.
std::size_t whitespace(const Scanner& s, std::size_t i) noexcept {
  std::size_t e = i, last_crlf = kNo, last_start = kNo;
  std::size_t chars = 0;
  while (e < s.size()) {
    const Char c = s.at(e);
    if (!(c.cls & kWS)) break;
    if (c.cls & (kCR | kLF)) last_crlf = e;
    last_start = e;
    e += c.len;
    ++chars;
  }
  if (chars == 0) return kNo;
  if (last_crlf != kNo) return last_crlf + 1;  // \s*[\r\n]+: up to the run's last line break
  if (e == s.size()) return e;                 // \s+(?!\S) at the end of the text
  if (chars >= 2) return last_start;           // \s+(?!\S): all but the last
  return e;                                    // \s+
}

std::size_t o200k_piece(const Scanner& s, std::size_t i) noexcept {
  std::size_t r = optional_p1(s, i, o200k_rest1);
  if (r != kNo) return r;
  r = optional_p1(s, i, o200k_rest2);
  if (r != kNo) return r;
  if ((r = digits(s, i)) != kNo) return r;
  if ((r = punctuation(s, i, true)) != kNo) return r;
  return whitespace(s, i);
}

// cl100k: [^\r\n\p{L}\p{N}]?\p{L}+
std::size_t cl100k_letters(const Scanner& s, std::size_t j) noexcept {
  const std::size_t e = s.run(j, kL);
  return e == j ? kNo : e;
}

std::size_t cl100k_piece(const Scanner& s, std::size_t i) noexcept {
  std::size_t r = contraction(s, i);
  if (r != kNo) return r;
  if ((r = optional_p1(s, i, cl100k_letters)) != kNo) return r;
  if ((r = digits(s, i)) != kNo) return r;
  if ((r = punctuation(s, i, false)) != kNo) return r;
  return whitespace(s, i);
}

}  // namespace

std::size_t piece_end(Encoding e, std::string_view text, std::size_t pos) {
  const Scanner s(text);
  std::size_t r = e == Encoding::O200kBase ? o200k_piece(s, pos) : cl100k_piece(s, pos);
  if (r == kNo || r <= pos) r = pos + s.at(pos).len;  // unreachable for valid UTF-8: every character matches
  return r;
}

// ------------------------------------------------------------------ byte-pair merge

std::size_t Counter::count_piece(const RankTable& ranks, const uint8_t* p, std::size_t n) {
  if (n <= 1) return n;
  if (ranks.rank(p, n) >= 0) return 1;
  parts_.resize(n);
  heap_.clear();
  for (std::size_t i = 0; i < n; ++i)
    parts_[i] = Part{static_cast<uint32_t>(i), static_cast<int32_t>(i) - 1,
                     i + 1 < n ? static_cast<int32_t>(i + 1) : -1, 0, -1};
  // min-heap on (rank, start): the lowest rank, leftmost on ties
  auto later = [](const Entry& a, const Entry& b) { return a.rank != b.rank ? a.rank > b.rank : a.start > b.start; };
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const int32_t r = ranks.rank(p + i, 2);
    parts_[i].rank = r;
    if (r >= 0) heap_.push_back(Entry{r, static_cast<uint32_t>(i), static_cast<int32_t>(i), 0});
  }
  std::make_heap(heap_.begin(), heap_.end(), later);
  // the rank of part k merged with its next part (-1: none), pushed when there is one
  auto update = [&](int32_t k) {
    if (k < 0) return;
    Part& pk = parts_[static_cast<std::size_t>(k)];
    ++pk.version;
    pk.rank = -1;
    if (pk.next < 0) return;
    const int32_t after = parts_[static_cast<std::size_t>(pk.next)].next;
    const std::size_t end = after < 0 ? n : parts_[static_cast<std::size_t>(after)].start;
    pk.rank = ranks.rank(p + pk.start, end - pk.start);
    if (pk.rank >= 0) {
      heap_.push_back(Entry{pk.rank, pk.start, k, pk.version});
      std::push_heap(heap_.begin(), heap_.end(), later);
    }
  };
  std::size_t count = n;
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const Entry top = heap_.back();
    heap_.pop_back();
    Part& pt = parts_[static_cast<std::size_t>(top.part)];
    if (pt.version != top.version || pt.rank != top.rank || pt.next < 0) continue;  // stale
    const int32_t gone = pt.next;
    Part& pg = parts_[static_cast<std::size_t>(gone)];
    pt.next = pg.next;
    if (pg.next >= 0) parts_[static_cast<std::size_t>(pg.next)].prev = top.part;
    ++pg.version;
    pg.rank = -1;
    pg.next = -1;
    --count;
    update(top.part);
    update(pt.prev);
  }
  return count;
}

std::size_t Counter::count(const RankTable& ranks, Encoding e, std::string_view text) {
  const Scanner s(text);
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  std::size_t total = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t end = e == Encoding::O200kBase ? o200k_piece(s, pos) : cl100k_piece(s, pos);
    if (end == kNo || end <= pos) end = pos + s.at(pos).len;
    total += count_piece(ranks, bytes + pos, end - pos);
    pos = end;
  }
  return total;
}

}  // namespace agentcache::core::tok

#include "agentcache/core/pure_check.hpp"
