// Tests of the direct jsonb encoder: the output is decoded by an independent
// reader written from PostgreSQL's documented format (utils/jsonb.h).
#include "agentcache/core/jsonb_writer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace jb = agentcache::core::jsonb;

namespace {

std::uint32_t u32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Decoded view of one container child.
struct Child {
  std::uint32_t type;
  std::size_t start;  // offset of its data (incl. padding) from the container's data start
  std::size_t len;
};

// Decodes the JEntries of the container at `c`; returns children and where the data area starts.
std::vector<Child> children(const char* c, std::size_t* data_off) {
  std::uint32_t header = u32(c);
  std::uint32_t count = header & jb::kCountMask;
  std::size_t nent = (header & jb::kFObject) ? 2 * count : count;
  std::vector<Child> out;
  std::size_t end = 0;
  for (std::size_t i = 0; i < nent; ++i) {
    std::uint32_t je = u32(c + 4 + 4 * i);
    std::size_t start = end;
    if (je & jb::kHasOff) {
      EXPECT_EQ(i % jb::kOffsetStride, 0u) << "offsets only every stride-th entry";
      end = je & jb::kOffLenMask;
    } else {
      EXPECT_NE(i % jb::kOffsetStride, 0u) << "stride-th entries must carry an offset";
      end = start + (je & jb::kOffLenMask);
    }
    out.push_back(Child{je & jb::kTypeMask, start, end - start});
  }
  *data_off = 4 + 4 * nent;
  return out;
}

std::string str(const char* c, std::size_t data_off, const Child& ch) {
  EXPECT_EQ(ch.type, jb::kIsString);
  return std::string(c + data_off + ch.start, ch.len);
}

// A fake "numeric varlena": any bytes work for the encoder, which copies them.
std::string fake_numeric(int seq) {
  std::string s(8, '\0');
  std::uint32_t hdr = 8u << 2;
  std::memcpy(&s[0], &hdr, 4);
  std::memcpy(&s[4], &seq, 4);
  return s;
}

std::vector<char> encode(const std::vector<jb::Turn>& turns) {
  std::size_t n = jb::write_context(nullptr, turns.data(), turns.size());
  EXPECT_GT(n, 0u);
  std::vector<char> buf(n + 16, '\x7f');
  EXPECT_EQ(jb::write_context(buf.data(), turns.data(), turns.size()), n);
  EXPECT_EQ(buf[n], '\x7f') << "wrote past the measured size";
  buf.resize(n);
  return buf;
}

jb::Turn turn(const std::string& at, const std::string& num, const char* role, const std::string& content) {
  jb::Turn t;
  t.at = at;
  t.seq = jb::Value{jb::kIsNumeric, num.data(), static_cast<std::uint32_t>(num.size())};
  t.role = role;
  t.content = content;
  return t;
}

}  // namespace

TEST(JsonbWriter, EmptyArray) {
  auto buf = encode({});
  ASSERT_EQ(buf.size(), 8u);  // varlena header + container header
  EXPECT_EQ(u32(buf.data() + 4), jb::kFArray | 0u);
}

TEST(JsonbWriter, OneTurnHasSortedKeysAndValues) {
  std::string at = "2026-11-23T10:00:00+00:00", num = fake_numeric(7), content = "héllo";
  auto buf = encode({turn(at, num, "user", content)});
  const char* root = buf.data() + 4;
  EXPECT_EQ(u32(root), jb::kFArray | 1u);
  std::size_t d = 0;
  auto elems = children(root, &d);
  ASSERT_EQ(elems.size(), 1u);
  EXPECT_EQ(elems[0].type, jb::kIsContainer);
  EXPECT_EQ(d + elems[0].start + elems[0].len, buf.size() - 4) << "container length covers the rest";
  // the object starts int-aligned (after any padding counted in its length)
  std::size_t obj_abs = 4 + d + elems[0].start;
  obj_abs = (obj_abs + 3) & ~std::size_t(3);
  const char* obj = buf.data() + obj_abs;
  EXPECT_EQ(u32(obj), jb::kFObject | 4u);
  std::size_t od = 0;
  auto kv = children(obj, &od);
  ASSERT_EQ(kv.size(), 8u);
  EXPECT_EQ(str(obj, od, kv[0]), "at");
  EXPECT_EQ(str(obj, od, kv[1]), "seq");
  EXPECT_EQ(str(obj, od, kv[2]), "role");
  EXPECT_EQ(str(obj, od, kv[3]), "content");
  EXPECT_EQ(str(obj, od, kv[4]), at);
  EXPECT_EQ(kv[5].type, jb::kIsNumeric);
  // numeric data is int-aligned from the datum start; padding counts in its length
  std::size_t num_abs = obj_abs + od + kv[5].start;
  std::size_t pad = ((num_abs + 3) & ~std::size_t(3)) - num_abs;
  EXPECT_EQ(kv[5].len, pad + num.size());
  EXPECT_EQ(std::string(buf.data() + num_abs + pad, num.size()), num);
  EXPECT_EQ(str(obj, od, kv[6]), "user");
  EXPECT_EQ(str(obj, od, kv[7]), content);
}

TEST(JsonbWriter, MetaSortsBetweenSeqAndRole) {
  std::string at = "a", num = fake_numeric(1);
  // a stored container: an empty object
  std::uint32_t empty_obj = jb::kFObject | 0u;
  jb::Turn t = turn(at, num, "tool", "x");
  t.has_meta = true;
  t.meta = jb::from_root(reinterpret_cast<const char*>(&empty_obj), 4);
  EXPECT_EQ(t.meta.type, jb::kIsContainer);
  auto buf = encode({t});
  const char* root = buf.data() + 4;
  std::size_t d = 0;
  auto elems = children(root, &d);
  std::size_t obj_abs = (4 + d + elems[0].start + 3) & ~std::size_t(3);
  const char* obj = buf.data() + obj_abs;
  std::size_t od = 0;
  auto kv = children(obj, &od);
  ASSERT_EQ(kv.size(), 10u);
  EXPECT_EQ(str(obj, od, kv[0]), "at");
  EXPECT_EQ(str(obj, od, kv[1]), "seq");
  EXPECT_EQ(str(obj, od, kv[2]), "meta");
  EXPECT_EQ(str(obj, od, kv[3]), "role");
  EXPECT_EQ(str(obj, od, kv[4]), "content");
  EXPECT_EQ(kv[7].type, jb::kIsContainer);
  std::size_t m_abs = obj_abs + od + kv[7].start;
  std::size_t pad = ((m_abs + 3) & ~std::size_t(3)) - m_abs;
  EXPECT_EQ(kv[7].len, pad + 4);
  EXPECT_EQ(u32(buf.data() + m_abs + pad), empty_obj);
}

TEST(JsonbWriter, FromRootUnwrapsRawScalars) {
  // raw scalar string "hi": header (1 | FARRAY | FSCALAR), JEntry (string, offset 2), data
  char root[12] = {};
  std::uint32_t h = 1u | jb::kFArray | jb::kFScalar, je = jb::kIsString | jb::kHasOff | 2u;
  std::memcpy(root, &h, 4);
  std::memcpy(root + 4, &je, 4);
  std::memcpy(root + 8, "hi", 2);
  jb::Value v = jb::from_root(root, 10);
  EXPECT_EQ(v.type, jb::kIsString);
  EXPECT_EQ(v.len, 2u);
  EXPECT_EQ(std::string(v.data, v.len), "hi");
  // raw scalar null
  je = jb::kIsNull | jb::kHasOff | 0u;
  std::memcpy(root + 4, &je, 4);
  v = jb::from_root(root, 8);
  EXPECT_EQ(v.type, jb::kIsNull);
  EXPECT_EQ(v.len, 0u);
  // a non-scalar array is embedded whole
  h = 0u | jb::kFArray;
  std::memcpy(root, &h, 4);
  v = jb::from_root(root, 4);
  EXPECT_EQ(v.type, jb::kIsContainer);
  EXPECT_EQ(v.len, 4u);
}

TEST(JsonbWriter, StrideOffsetsBeyond32Elements) {
  std::vector<std::string> nums, contents;
  std::vector<jb::Turn> turns;
  nums.reserve(70);
  contents.reserve(70);
  for (int i = 0; i < 70; ++i) {
    nums.push_back(fake_numeric(i));
    contents.push_back(std::string(static_cast<std::size_t>(i % 7), 'a' + i % 26));
  }
  std::string at = "t";
  for (int i = 0; i < 70; ++i) turns.push_back(turn(at, nums[i], "assistant", contents[i]));
  auto buf = encode(turns);
  const char* root = buf.data() + 4;
  std::size_t d = 0;
  auto elems = children(root, &d);  // checks HAS_OFF exactly at 0, 32, 64
  ASSERT_EQ(elems.size(), 70u);
  for (int i = 0; i < 70; ++i) {
    std::size_t obj_abs = (4 + d + elems[i].start + 3) & ~std::size_t(3);
    const char* obj = buf.data() + obj_abs;
    std::size_t od = 0;
    auto kv = children(obj, &od);
    ASSERT_EQ(kv.size(), 8u);
    EXPECT_EQ(str(obj, od, kv[7]), contents[i]) << "element " << i;
    EXPECT_EQ(str(obj, od, kv[6]), "assistant");
  }
}

TEST(JsonbWriter, MeasureEqualsWrite) {
  std::string at = "2026", num = fake_numeric(3), big(100000, 'z');
  std::vector<jb::Turn> t = {turn(at, num, "user", big), turn(at, num, "system", "")};
  std::size_t n = jb::write_context(nullptr, t.data(), t.size());
  std::vector<char> buf(n);
  EXPECT_EQ(jb::write_context(buf.data(), t.data(), t.size()), n);
  EXPECT_GT(n, big.size());
}

TEST(JsonbWriter, OverflowIsReportedNotWritten) {
  // The dry run never reads string bytes, so a view longer than jsonb's
  // 256 MB offset field can be measured without allocating it.
  static const char small[1] = {'x'};
  std::string at = "t", num = fake_numeric(1);
  jb::Turn t = turn(at, num, "user", "");
  t.content = std::string_view(small, std::size_t(jb::kOffLenMask) + 1);
  EXPECT_EQ(jb::write_context(nullptr, &t, 1), 0u);
  t.content = std::string_view(small, std::size_t(jb::kOffLenMask) / 4);
  std::vector<jb::Turn> four(4, t);
  EXPECT_EQ(jb::write_context(nullptr, four.data(), four.size()), 0u) << "sum over the limit";
  std::vector<jb::Turn> two(2, t);
  EXPECT_GT(jb::write_context(nullptr, two.data(), two.size()), 0u);
}

TEST(JsonbWriter, ObjectEmbedsContainersVerbatim) {
  // {"dedup": "acquired", "route": null, "context": <empty array>}
  std::uint32_t empty_arr = jb::kFArray | 0u;
  std::string_view keys[3] = {"dedup", "route", "context"};
  jb::Value vals[3] = {jb::Value{jb::kIsString, "acquired", 8}, jb::Value{jb::kIsNull, nullptr, 0},
                       jb::from_root(reinterpret_cast<const char*>(&empty_arr), 4)};
  std::size_t n = jb::write_object(nullptr, keys, vals, 3);
  ASSERT_GT(n, 0u);
  std::vector<char> buf(n);
  ASSERT_EQ(jb::write_object(buf.data(), keys, vals, 3), n);
  const char* obj = buf.data() + 4;  // the root container follows the varlena header
  EXPECT_EQ(u32(obj), jb::kFObject | 3u);
  std::size_t od = 0;
  auto kv = children(obj, &od);
  ASSERT_EQ(kv.size(), 6u);
  EXPECT_EQ(str(obj, od, kv[0]), "dedup");
  EXPECT_EQ(str(obj, od, kv[1]), "route");
  EXPECT_EQ(str(obj, od, kv[2]), "context");
  EXPECT_EQ(str(obj, od, kv[3]), "acquired");
  EXPECT_EQ(kv[4].type, jb::kIsNull);
  EXPECT_EQ(kv[4].len, 0u);
  EXPECT_EQ(kv[5].type, jb::kIsContainer);
  std::size_t c_abs = 4 + od + kv[5].start;
  std::size_t pad = ((c_abs + 3) & ~std::size_t(3)) - c_abs;
  EXPECT_EQ(u32(buf.data() + c_abs + pad), empty_arr);
  EXPECT_EQ(c_abs + pad + 4, buf.size()) << "the container is the last thing written";
}
