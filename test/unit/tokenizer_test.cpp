// The BPE token counter against the reference: gpt-tokenizer's TestPlans.txt
// (OpenAI's own encodings of each sample) and golden vectors generated with
// gpt-tokenizer 4.0.0 (test/tokenizer/gen.mjs --format hex: every script,
// emoji and ZWJ sequences, combining marks, digit runs, whitespace runs,
// contractions in every case, chat-like text in several languages, random
// Unicode mixes), plus 1 MB inputs.
#include "agentcache/core/tokenizer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef AGENTCACHE_SOURCE_DIR
#error "AGENTCACHE_SOURCE_DIR must name the source tree (CMakeLists.txt defines it)"
#endif

namespace {

using agentcache::core::tok::Counter;
using agentcache::core::tok::Encoding;
using agentcache::core::tok::piece_end;
using agentcache::core::tok::RankTable;

std::string read_file(const std::string& rel) {
  std::ifstream in(std::string(AGENTCACHE_SOURCE_DIR) + "/" + rel, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const RankTable& ranks(Encoding e) {
  static RankTable o200k, cl100k;
  static bool loaded = false;
  if (!loaded) {
    std::string error;
    const std::string a = read_file("data/tiktoken/o200k_base.tiktoken");
    const std::string b = read_file("data/tiktoken/cl100k_base.tiktoken");
    // what a server pays once (bench/README.md quotes this line)
    const auto t0 = std::chrono::steady_clock::now();
    if (!o200k.load(a, &error)) ADD_FAILURE() << "o200k_base: " << error;
    const auto t1 = std::chrono::steady_clock::now();
    if (!cl100k.load(b, &error)) ADD_FAILURE() << "cl100k_base: " << error;
    const auto t2 = std::chrono::steady_clock::now();
    using ms = std::chrono::duration<double, std::milli>;
    std::printf(
        "rank tables: o200k_base %zu tokens, %.1f MB, parsed in %.1f ms; cl100k_base %zu tokens, %.1f MB, %.1f ms\n",
        o200k.size(), o200k.memory_bytes() / 1e6, ms(t1 - t0).count(), cl100k.size(), cl100k.memory_bytes() / 1e6,
        ms(t2 - t1).count());
    loaded = true;
  }
  return e == Encoding::O200kBase ? o200k : cl100k;
}

std::size_t count(Encoding e, std::string_view text) {
  static Counter counter;
  return counter.count(ranks(e), e, text);
}

std::vector<std::string> pieces(Encoding e, std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = piece_end(e, text, pos);
    out.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

TEST(Tokenizer, RankTablesLoad) {
  EXPECT_EQ(ranks(Encoding::O200kBase).size(), 199998u);
  EXPECT_EQ(ranks(Encoding::Cl100kBase).size(), 100256u);
  const uint8_t hello[] = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_EQ(ranks(Encoding::Cl100kBase).rank(hello, 5), 15339);  // cl100k "hello"
  EXPECT_EQ(ranks(Encoding::O200kBase).rank(reinterpret_cast<const uint8_t*>("!"), 1), 0);
  EXPECT_LT(ranks(Encoding::O200kBase).memory_bytes(), 16u << 20);
}

TEST(Tokenizer, RankTableRejectsMalformedFiles) {
  RankTable t;
  std::string error;
  EXPECT_FALSE(t.load("IQ== x\n", &error));
  EXPECT_FALSE(t.load("IQ==0\n", &error));
  EXPECT_FALSE(t.load("I@== 0\n", &error));
  EXPECT_FALSE(t.load("IQ== 0\nIQ== 1\n", &error));  // duplicate token
  EXPECT_FALSE(t.load("IQ== 0\n", &error));          // the other 255 bytes are missing
  EXPECT_NE(error.find("not a token"), std::string::npos);
}

TEST(Tokenizer, EncodingNames) {
  Encoding e;
  EXPECT_TRUE(agentcache::core::tok::encoding_from_name("o200k_base", &e));
  EXPECT_EQ(e, Encoding::O200kBase);
  EXPECT_TRUE(agentcache::core::tok::encoding_from_name("cl100k_base", &e));
  EXPECT_EQ(e, Encoding::Cl100kBase);
  EXPECT_FALSE(agentcache::core::tok::encoding_from_name("p50k_base", &e));
  EXPECT_FALSE(agentcache::core::tok::encoding_from_name("O200K_BASE", &e));
}

// gpt-tokenizer's TestPlans.txt: "EncodingName: …\nSample: …\nEncoded: [ids]"
TEST(Tokenizer, TestPlans) {
  const std::string plans = read_file("test/unit/data/TestPlans.txt");
  ASSERT_FALSE(plans.empty());
  std::istringstream in(plans);
  std::string line, enc_name, sample;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.rfind("EncodingName: ", 0) == 0) enc_name = line.substr(14);
    if (line.rfind("Sample: ", 0) == 0) sample = line.substr(8);
    if (line.rfind("Encoded: ", 0) != 0) continue;
    Encoding e;
    if (!agentcache::core::tok::encoding_from_name(enc_name, &e)) continue;
    std::size_t ids = 0;
    for (char c : line.substr(9)) ids += c == ',';
    if (line.find_first_of("0123456789", 9) != std::string::npos) ++ids;
    EXPECT_EQ(count(e, sample), ids) << enc_name << ": " << sample;
    ++checked;
  }
  EXPECT_EQ(checked, 64 + 57);
}

std::string from_hex(const std::string& h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(Tokenizer, GoldenVectors) {
  std::istringstream in(read_file("test/unit/data/golden.tsv"));
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    const std::size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    ASSERT_NE(t2, std::string::npos) << line;
    const std::size_t want_o = std::stoul(line.substr(0, t1));
    const std::size_t want_c = std::stoul(line.substr(t1 + 1, t2 - t1 - 1));
    const std::string text = from_hex(line.substr(t2 + 1));
    EXPECT_EQ(count(Encoding::O200kBase, text), want_o) << "o200k_base: " << text;
    EXPECT_EQ(count(Encoding::Cl100kBase, text), want_c) << "cl100k_base: " << text;
    ++checked;
  }
  EXPECT_GE(checked, 400);
}

// Where tiktoken's regex (Rust) and gpt-tokenizer's (JavaScript) differ,
// agentcache splits as tiktoken: U+0085 is whitespace (Rust's White_Space),
// U+FEFF is not; "'ſ" is a contraction (case folding ſ -> s).
TEST(Tokenizer, SplitsAsTiktoken) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces(Encoding::O200kBase, "x\u0085\u0085y"), (V{"x", "\u0085", "\u0085y"}));
  EXPECT_EQ(pieces(Encoding::O200kBase, "a\uFEFF b"), (V{"a", "\uFEFF", " b"}));
  EXPECT_EQ(pieces(Encoding::Cl100kBase, "'\u017F"), (V{"'\u017F"}));
  EXPECT_EQ(pieces(Encoding::O200kBase, "it'\u017F"), (V{"it'\u017F"}));
  EXPECT_EQ(pieces(Encoding::O200kBase, "Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces(Encoding::O200kBase, "I'M  fine\n\n  ok"), (V{"I'M", " ", " fine", "\n\n", " ", " ok"}));
  EXPECT_EQ(pieces(Encoding::Cl100kBase, "I'M 12345"), (V{"I", "'M", " ", "123", "45"}));
  EXPECT_EQ(pieces(Encoding::O200kBase, "a/b//\n"), (V{"a", "/b", "//\n"}));
  EXPECT_EQ(pieces(Encoding::O200kBase, "CamelCase"), (V{"Camel", "Case"}));
  EXPECT_EQ(pieces(Encoding::O200kBase, "   "), (V{"   "}));
  EXPECT_EQ(pieces(Encoding::O200kBase, "a   b"), (V{"a", "  ", " b"}));
}

// Long inputs: long pieces merge in O(n log n). Counts from gpt-tokenizer
// (test/unit/data/onemb.cmake says how; it cannot encode the one-piece runs
// at 1 MB: quadratic time, or a stack overflow). The 1 MB one-piece runs are
// periodic: their counts are the reference's at the smaller size, scaled.
TEST(Tokenizer, LongInputs) {
  std::string words;
  for (int i = 0; i < 65536; ++i) words += "Ol\xC3\xA1, mundo! 123 ";
  ASSERT_EQ(words.size(), 17u << 16);  // 1.06 MiB
  EXPECT_EQ(count(Encoding::O200kBase, words), AC_1MB_WORDS_O200K);
  EXPECT_EQ(count(Encoding::Cl100kBase, words), AC_1MB_WORDS_CL100K);
  auto emoji = [](std::size_t bytes) {
    std::string s;
    for (std::size_t i = 0; i < bytes / 4; ++i) s += "\xF0\x9F\x98\x80";
    return s;
  };
  struct Case {
    const char* name;
    std::string small;  // the size the reference counted
    std::size_t o200k, cl100k;
    std::string big;  // 1 MB
  };
  const Case cases[] = {
      {"a", std::string(262144, 'a'), AC_1MB_A_O200K, AC_1MB_A_CL100K, std::string(1 << 20, 'a')},
      {"emoji", emoji(65536), AC_1MB_EMOJI_O200K, AC_1MB_EMOJI_CL100K, emoji(1 << 20)},
      {"spaces", std::string(65536, ' '), AC_1MB_SPACES_O200K, AC_1MB_SPACES_CL100K, std::string(1 << 20, ' ')},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(count(Encoding::O200kBase, c.small), c.o200k) << c.name;
    EXPECT_EQ(count(Encoding::Cl100kBase, c.small), c.cl100k) << c.name;
    const std::size_t scale = c.big.size() / c.small.size();
    EXPECT_EQ(count(Encoding::O200kBase, c.big), c.o200k * scale) << c.name << " (1 MB)";
    EXPECT_EQ(count(Encoding::Cl100kBase, c.big), c.cl100k * scale) << c.name << " (1 MB)";
  }
}

}  // namespace
