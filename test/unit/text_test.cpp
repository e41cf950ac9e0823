// Unit tests for include/agentcache/core/text.hpp: UTF-8 character counting,
// context trimming arithmetic, hashing and the role vocabulary.
#include "agentcache/core/text.hpp"

#include <gtest/gtest.h>

#include <array>
#include <bitset>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ac = agentcache::core;
using namespace std::string_view_literals;

namespace {

// trim_oldest over a vector, also recording which indices were looked at.
struct TrimProbe {
  std::vector<std::uint64_t> chars;
  std::vector<std::size_t> asked;
  std::size_t run(std::uint64_t max_chars) {
    asked.clear();
    return ac::trim_oldest(chars.size(), max_chars, [this](std::size_t i) {
      asked.push_back(i);
      return chars.at(i);
    });
  }
};

// Reference: the longest suffix whose sum is <= max, by brute force.
std::size_t brute_trim(const std::vector<std::uint64_t>& c, std::uint64_t max) {
  for (std::size_t drop = 0; drop <= c.size(); ++drop) {
    std::uint64_t sum = 0;
    for (std::size_t i = drop; i < c.size(); ++i) sum += c[i];
    if (sum <= max) return drop;
  }
  return c.size();
}

}  // namespace

// ------------------------------------------------------------- utf8_chars

TEST(TextUtf8Chars, EmptyIsZero) {
  EXPECT_EQ(ac::utf8_chars(""), 0u);
  EXPECT_EQ(ac::utf8_chars(std::string_view()), 0u);
}

TEST(TextUtf8Chars, AsciiCountsBytes) {
  EXPECT_EQ(ac::utf8_chars("a"), 1u);
  EXPECT_EQ(ac::utf8_chars("hello, world"), 12u);
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(ac::utf8_chars(all), 127u);
}

TEST(TextUtf8Chars, EmbeddedNulIsACharacter) {
  EXPECT_EQ(ac::utf8_chars("a\0b"sv), 3u);
  EXPECT_EQ(ac::utf8_chars("\0"sv), 1u);
}

TEST(TextUtf8Chars, TwoByteSequences) {
  EXPECT_EQ(ac::utf8_chars("\xC3\xA9"), 1u);                  // é U+00E9
  EXPECT_EQ(ac::utf8_chars("\xC2\x80"), 1u);                  // U+0080 (lowest)
  EXPECT_EQ(ac::utf8_chars("\xDF\xBF"), 1u);                  // U+07FF (highest)
  EXPECT_EQ(ac::utf8_chars("caf\xC3\xA9"), 4u);               // café
  EXPECT_EQ(ac::utf8_chars("\xD0\x9F\xD1\x80\xD0\xB8"), 3u);  // При
}

TEST(TextUtf8Chars, ThreeByteSequences) {
  EXPECT_EQ(ac::utf8_chars("\xE2\x9C\x93"), 1u);                          // ✓ U+2713
  EXPECT_EQ(ac::utf8_chars("\xE0\xA0\x80"), 1u);                          // U+0800 (lowest)
  EXPECT_EQ(ac::utf8_chars("\xEF\xBF\xBF"), 1u);                          // U+FFFF
  EXPECT_EQ(ac::utf8_chars("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"), 3u);  // 日本語
}

TEST(TextUtf8Chars, FourByteSequences) {
  EXPECT_EQ(ac::utf8_chars("\xF0\x9F\x98\x80"), 1u);  // 😀 U+1F600
  EXPECT_EQ(ac::utf8_chars("\xF0\x90\x80\x80"), 1u);  // U+10000
  EXPECT_EQ(ac::utf8_chars("\xF4\x8F\xBF\xBF"), 1u);  // U+10FFFF
  EXPECT_EQ(ac::utf8_chars("\xF0\x9F\x98\x80\xF0\x9F\x98\x80"), 2u);
}

TEST(TextUtf8Chars, MixedWidths) {
  const std::string_view s = "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80";  // "héllo ✓ 😀"
  EXPECT_EQ(s.size(), 15u);
  EXPECT_EQ(ac::utf8_chars(s), 9u);
  // 1 + 2 + 3 + 4 bytes -> 4 code points.
  EXPECT_EQ(ac::utf8_chars("a\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80"), 4u);
}

TEST(TextUtf8Chars, CountsLeadBytesOfTruncatedSequences) {
  // Documented rule: every byte that is not 10xxxxxx counts.
  EXPECT_EQ(ac::utf8_chars("\xF0\x9F"), 1u);
  EXPECT_EQ(ac::utf8_chars("\x80\x80\x80"), 0u);
}

TEST(TextUtf8Chars, LongStringMatchesPerCharSum) {
  std::string s;
  std::uint32_t expect = 0;
  const std::array<std::string_view, 4> pieces = {"x", "\xC3\xA9", "\xE2\x9C\x93", "\xF0\x9F\x98\x80"};
  for (int i = 0; i < 10000; ++i) {
    s += pieces[static_cast<std::size_t>(i * 7 % 4)];
    ++expect;
  }
  EXPECT_EQ(ac::utf8_chars(s), expect);
}

// ------------------------------------------------------------ trim_oldest

TEST(TextTrimOldest, EmptyDropsNothing) {
  TrimProbe p;
  EXPECT_EQ(p.run(0), 0u);
  EXPECT_EQ(p.run(100), 0u);
  EXPECT_TRUE(p.asked.empty());
}

TEST(TextTrimOldest, EverythingFits) {
  TrimProbe p{{3, 4, 5}, {}};
  EXPECT_EQ(p.run(12), 0u);  // exact fit of the total
  EXPECT_EQ(p.run(1000), 0u);
}

TEST(TextTrimOldest, ExactFitOfASuffix) {
  TrimProbe p{{3, 4, 5}, {}};
  EXPECT_EQ(p.run(9), 1u);   // 4 + 5 == 9
  EXPECT_EQ(p.run(11), 1u);  // 3 + 4 + 5 == 12 > 11
  EXPECT_EQ(p.run(5), 2u);   // only the newest
  EXPECT_EQ(p.run(8), 2u);
}

TEST(TextTrimOldest, MaxZeroDropsAllUnlessZeroLength) {
  TrimProbe p{{3, 4, 5}, {}};
  EXPECT_EQ(p.run(0), 3u);
  TrimProbe z{{5, 0, 0}, {}};
  EXPECT_EQ(z.run(0), 1u);  // the two zero-length newest turns are kept
  TrimProbe allz{{0, 0, 0, 0}, {}};
  EXPECT_EQ(allz.run(0), 0u);
  TrimProbe mid{{0, 7, 0}, {}};
  EXPECT_EQ(mid.run(0), 2u);  // stops at 7, the older zero-length turn is not reached
}

TEST(TextTrimOldest, NewestAloneTooLongDropsAll) {
  TrimProbe p{{1, 1, 10}, {}};
  EXPECT_EQ(p.run(9), 3u);
  EXPECT_EQ(p.asked, (std::vector<std::size_t>{2}));  // stops immediately
  EXPECT_EQ(p.run(10), 2u);
}

TEST(TextTrimOldest, KeepsLongestSuffixWithoutSkipping) {
  // The 10 in the middle does not fit; the older 1 must not be kept by skipping it.
  TrimProbe p{{1, 10, 1}, {}};
  EXPECT_EQ(p.run(5), 2u);
  EXPECT_EQ(p.asked, (std::vector<std::size_t>{2, 1}));
}

TEST(TextTrimOldest, VisitsNewestFirstAndStopsAtFirstMisfit) {
  TrimProbe p{{1, 2, 3, 4, 5}, {}};
  EXPECT_EQ(p.run(12), 2u);  // 5 + 4 + 3 = 12
  EXPECT_EQ(p.asked, (std::vector<std::size_t>{4, 3, 2, 1}));
  EXPECT_EQ(p.run(15), 0u);
  EXPECT_EQ(p.asked, (std::vector<std::size_t>{4, 3, 2, 1, 0}));
}

TEST(TextTrimOldest, HugeValuesDoNotMisbehave) {
  const std::uint64_t big = std::uint64_t(1) << 40;
  TrimProbe p{{big, big, big}, {}};
  EXPECT_EQ(p.run(2 * big), 1u);
  EXPECT_EQ(p.run(big - 1), 3u);
  EXPECT_EQ(p.run(UINT64_MAX), 0u);
}

TEST(TextTrimOldest, MatchesBruteForceOnPseudoRandomInputs) {
  std::uint64_t x = 0x12345678;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int iter = 0; iter < 2000; ++iter) {
    TrimProbe p;
    std::size_t n = next() % 12;
    for (std::size_t i = 0; i < n; ++i) p.chars.push_back(next() % 50);
    std::uint64_t max = next() % 300;
    SCOPED_TRACE(iter);
    ASSERT_EQ(p.run(max), brute_trim(p.chars, max));
  }
}

// ----------------------------------------------------------------- hashing

TEST(TextHash, Fmix64ReferenceValues) {
  EXPECT_EQ(ac::fmix64(0), 0u);  // fmix64 fixes zero
  EXPECT_EQ(ac::fmix64(1), 0xb456bcfc34c2cb2cULL);
  EXPECT_EQ(ac::fmix64(0xdeadbeefULL), 0xd24bd59f862a1dacULL);
}

TEST(TextHash, Fmix64IsInjectiveOnSample) {
  std::set<std::uint64_t> out;
  for (std::uint64_t i = 0; i < 20000; ++i) out.insert(ac::fmix64(i));
  EXPECT_EQ(out.size(), 20000u);
}

TEST(TextHash, HashBytesReferenceValues) {
  // Pinned against an independent implementation of the documented algorithm.
  EXPECT_EQ(ac::hash_bytes(""), 0x9775a911a90dcf7aULL);
  EXPECT_EQ(ac::hash_bytes("abc"), 0x409d11de563ed6a0ULL);
  EXPECT_EQ(ac::hash_bytes("abc", 7), 0xc41aba4dd82db1c7ULL);
}

TEST(TextHash, Deterministic) {
  const std::string a = "session-42";
  const std::string b = std::string("session-") + "42";  // different storage, same bytes
  EXPECT_EQ(ac::hash_bytes(a), ac::hash_bytes(b));
  EXPECT_EQ(ac::hash_bytes(a, 99), ac::hash_bytes(b, 99));
  EXPECT_EQ(ac::session_hash(5, a), ac::session_hash(5, b));
  EXPECT_EQ(ac::hash_bytes(a), ac::hash_bytes(a, 0));  // default seed is 0
}

TEST(TextHash, SessionHashIsHashBytesSeededByDb) {
  for (std::uint32_t db : {0u, 1u, 5u, 16384u, 0xFFFFFFFFu})
    EXPECT_EQ(ac::session_hash(db, "conv"), ac::hash_bytes("conv", db));
}

TEST(TextHash, DifferentDbSeedsGiveDifferentHashes) {
  std::set<std::uint64_t> seen;
  for (std::uint32_t db = 0; db < 1000; ++db) seen.insert(ac::session_hash(db, "same-session"));
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_NE(ac::session_hash(1, ""), ac::session_hash(2, ""));
}

TEST(TextHash, DifferentKeysGiveDifferentHashes) {
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 50000; ++i) seen.insert(ac::session_hash(1, "s" + std::to_string(i)));
  EXPECT_EQ(seen.size(), 50000u);
  EXPECT_NE(ac::hash_bytes("ab"), ac::hash_bytes("ba"));
  EXPECT_NE(ac::hash_bytes(""), ac::hash_bytes("\0"sv));
  EXPECT_NE(ac::hash_bytes("a"), ac::hash_bytes("a\0"sv));  // length is mixed in
  EXPECT_NE(ac::hash_bytes("\0"sv), ac::hash_bytes("\0\0"sv));
}

TEST(TextHash, SingleBitChangeAvalanches) {
  // Flipping one input bit should flip about half of the 64 output bits.
  double total = 0;
  int samples = 0;
  for (int i = 0; i < 500; ++i) {
    std::string s = "key-" + std::to_string(i * 7919);
    std::uint64_t h = ac::hash_bytes(s, 3);
    for (std::size_t byte = 0; byte < s.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string t = s;
        t[byte] = static_cast<char>(t[byte] ^ (1 << bit));
        std::uint64_t d = h ^ ac::hash_bytes(t, 3);
        ASSERT_NE(d, 0u);
        total += static_cast<double>(std::bitset<64>(d).count());
        ++samples;
      }
    }
  }
  double mean = total / samples;
  EXPECT_GT(mean, 30.0);
  EXPECT_LT(mean, 34.0);
}

TEST(TextHash, TopAndLowBitsAreBothDistributed) {
  // Partition uses (h >> 40), buckets use low bits, generation stripes (h >> 20).
  constexpr int kN = 16000;
  std::array<int, 16> top{}, low{}, mid{};
  for (int i = 0; i < kN; ++i) {
    std::uint64_t h = ac::session_hash(7, "conversation/" + std::to_string(i));
    ++top[(h >> 40) % 16];
    ++low[h % 16];
    ++mid[(h >> 20) % 16];
  }
  for (int b = 0; b < 16; ++b) {
    SCOPED_TRACE(b);
    EXPECT_GT(top[b], kN / 16 * 8 / 10);
    EXPECT_LT(top[b], kN / 16 * 12 / 10);
    EXPECT_GT(low[b], kN / 16 * 8 / 10);
    EXPECT_LT(low[b], kN / 16 * 12 / 10);
    EXPECT_GT(mid[b], kN / 16 * 8 / 10);
    EXPECT_LT(mid[b], kN / 16 * 12 / 10);
  }
}

TEST(TextHash, FunctionsAreNoexceptAndSeedSensitive) {
  static_assert(noexcept(ac::fmix64(1)), "fmix64 noexcept");
  static_assert(noexcept(ac::hash_bytes("x")), "hash_bytes noexcept");
  static_assert(noexcept(ac::session_hash(1, "x")), "session_hash noexcept");
  static_assert(noexcept(ac::utf8_chars("x")), "utf8_chars noexcept");
  EXPECT_NE(ac::hash_bytes("x", 1), ac::hash_bytes("x", 2));
}

// ------------------------------------------------------------------- roles

TEST(TextRole, ParsesExactlyTheFourNames) {
  EXPECT_EQ(ac::parse_role("user"), ac::Role::User);
  EXPECT_EQ(ac::parse_role("assistant"), ac::Role::Assistant);
  EXPECT_EQ(ac::parse_role("system"), ac::Role::System);
  EXPECT_EQ(ac::parse_role("tool"), ac::Role::Tool);
}

TEST(TextRole, RejectsEverythingElse) {
  for (std::string_view bad : {"User"sv, "USER"sv, "Assistant"sv, "SYSTEM"sv, "Tool"sv, ""sv, " user"sv, "user "sv,
                               "users"sv, "use"sv, "assist"sv, "assistants"sv, "function"sv, "developer"sv, "user\0"sv,
                               "\0user"sv, "tool\n"sv, "sys tem"sv, "0"sv}) {
    SCOPED_TRACE(std::string(bad));
    EXPECT_FALSE(ac::parse_role(bad).has_value());
  }
}

TEST(TextRole, NamesRoundTrip) {
  for (ac::Role r : {ac::Role::User, ac::Role::Assistant, ac::Role::System, ac::Role::Tool}) {
    auto parsed = ac::parse_role(ac::role_name(r));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_EQ(ac::role_name(ac::Role::User), "user");
  EXPECT_EQ(ac::role_name(ac::Role::Assistant), "assistant");
  EXPECT_EQ(ac::role_name(ac::Role::System), "system");
  EXPECT_EQ(ac::role_name(ac::Role::Tool), "tool");
}

TEST(TextRole, StableNumericValues) {
  // Stored as one byte in TurnRecord::role; the values must not change.
  EXPECT_EQ(static_cast<int>(ac::Role::User), 0);
  EXPECT_EQ(static_cast<int>(ac::Role::Assistant), 1);
  EXPECT_EQ(static_cast<int>(ac::Role::System), 2);
  EXPECT_EQ(static_cast<int>(ac::Role::Tool), 3);
  EXPECT_EQ(sizeof(ac::Role), 1u);
}

TEST(TextRole, OutOfRangeValueNamesUser) {
  EXPECT_EQ(ac::role_name(static_cast<ac::Role>(4)), "user");
  EXPECT_EQ(ac::role_name(static_cast<ac::Role>(255)), "user");
}
