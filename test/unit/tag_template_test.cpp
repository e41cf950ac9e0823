// GoogleTest suite for tag templates (src/core/tag_template.cpp).
#include "agentcache/core/tag_template.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using agentcache::core::TagTemplate;
using Part = TagTemplate::Part;

TagTemplate must_parse(std::string_view t) {
  std::string err;
  std::optional<TagTemplate> tt = TagTemplate::parse(t, &err);
  EXPECT_TRUE(tt.has_value()) << "template '" << t << "': " << err;
  return tt ? *tt : *TagTemplate::parse("");
}

// Renders with values from a map; a missing key is NULL.
std::optional<std::string> render_map(const TagTemplate& tt, const std::map<std::string, std::string>& m) {
  return tt.render([&](const std::string& col) -> std::optional<std::string> {
    auto it = m.find(col);
    if (it == m.end()) return std::nullopt;
    return it->second;
  });
}

std::string bracket(const std::string& col) { return "<" + col + ">"; }

std::optional<std::string> render_bracket(const TagTemplate& tt) {
  return tt.render([](const std::string& col) -> std::optional<std::string> { return bracket(col); });
}

void expect_parts(const TagTemplate& tt, const std::vector<Part>& want) {
  ASSERT_EQ(tt.parts().size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(tt.parts()[i].is_column, want[i].is_column) << "part " << i;
    EXPECT_EQ(tt.parts()[i].text, want[i].text) << "part " << i;
  }
}

void expect_error(std::string_view t) {
  std::string err;
  EXPECT_FALSE(TagTemplate::parse(t, &err).has_value()) << "template '" << t << "'";
  EXPECT_FALSE(err.empty()) << "template '" << t << "'";
  EXPECT_FALSE(TagTemplate::parse(t).has_value()) << "no error pointer: '" << t << "'";
}

TEST(TagTemplateParse, SinglePlaceholder) {
  TagTemplate tt = must_parse("tenant:{tenant_id}");
  expect_parts(tt, {{false, "tenant:"}, {true, "tenant_id"}});
  EXPECT_EQ(tt.columns(), std::vector<std::string>{"tenant_id"});
  EXPECT_EQ(render_map(tt, {{"tenant_id", "42"}}), std::optional<std::string>("tenant:42"));
}

TEST(TagTemplateParse, TwoPlaceholders) {
  TagTemplate tt = must_parse("sku:{sku}:{region}");
  expect_parts(tt, {{false, "sku:"}, {true, "sku"}, {false, ":"}, {true, "region"}});
  EXPECT_EQ(tt.columns(), (std::vector<std::string>{"sku", "region"}));
  EXPECT_EQ(render_map(tt, {{"sku", "A-1"}, {"region", "eu"}}), std::optional<std::string>("sku:A-1:eu"));
}

TEST(TagTemplateParse, AdjacentPlaceholders) {
  TagTemplate tt = must_parse("{a}{b}");
  expect_parts(tt, {{true, "a"}, {true, "b"}});
  EXPECT_EQ(tt.columns(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(render_map(tt, {{"a", "1"}, {"b", "2"}}), std::optional<std::string>("12"));
}

TEST(TagTemplateParse, RepeatedColumnListedOnce) {
  TagTemplate tt = must_parse("{a}{a}");
  expect_parts(tt, {{true, "a"}, {true, "a"}});
  EXPECT_EQ(tt.columns(), std::vector<std::string>{"a"});
  EXPECT_EQ(render_map(tt, {{"a", "x"}}), std::optional<std::string>("xx"));
  TagTemplate tt2 = must_parse("{b}-{a}-{b}-{c}-{a}");
  EXPECT_EQ(tt2.columns(), (std::vector<std::string>{"b", "a", "c"}));
}

TEST(TagTemplateParse, LiteralOnly) {
  TagTemplate tt = must_parse("global:all-sessions");
  expect_parts(tt, {{false, "global:all-sessions"}});
  EXPECT_TRUE(tt.columns().empty());
  EXPECT_EQ(render_map(tt, {}), std::optional<std::string>("global:all-sessions"));
}

TEST(TagTemplateParse, EmptyTemplate) {
  TagTemplate tt = must_parse("");
  EXPECT_TRUE(tt.parts().empty());
  EXPECT_TRUE(tt.columns().empty());
  EXPECT_EQ(render_map(tt, {}), std::optional<std::string>(""));
}

TEST(TagTemplateParse, EscapedBraces) {
  TagTemplate tt = must_parse("{{literal}}");
  expect_parts(tt, {{false, "{literal}"}});
  EXPECT_TRUE(tt.columns().empty());
  EXPECT_EQ(render_map(tt, {}), std::optional<std::string>("{literal}"));

  TagTemplate tt2 = must_parse("x{{{col}}}y");
  expect_parts(tt2, {{false, "x{"}, {true, "col"}, {false, "}y"}});
  EXPECT_EQ(render_map(tt2, {{"col", "V"}}), std::optional<std::string>("x{V}y"));

  TagTemplate tt3 = must_parse("a}}b{{c");
  expect_parts(tt3, {{false, "a}b{c"}});
  TagTemplate tt4 = must_parse("{{}}");
  expect_parts(tt4, {{false, "{}"}});
}

TEST(TagTemplateParse, UnusualColumnNames) {
  TagTemplate sp = must_parse("t:{ my col }");
  expect_parts(sp, {{false, "t:"}, {true, " my col "}});
  EXPECT_EQ(render_map(sp, {{" my col ", "v"}}), std::optional<std::string>("t:v"));
  EXPECT_EQ(render_map(sp, {{"my col", "v"}}), std::nullopt);  // spaces are significant

  TagTemplate uni = must_parse("{ação}/{日本}");
  EXPECT_EQ(uni.columns(), (std::vector<std::string>{"ação", "日本"}));
  EXPECT_EQ(render_map(uni, {{"ação", "1"}, {"日本", "2"}}), std::optional<std::string>("1/2"));

  TagTemplate q = must_parse("{\"Quoted\"}:{it's}:{a:b}");
  EXPECT_EQ(q.columns(), (std::vector<std::string>{"\"Quoted\"", "it's", "a:b"}));
  EXPECT_EQ(render_map(q, {{"\"Quoted\"", "q"}, {"it's", "i"}, {"a:b", "c"}}), std::optional<std::string>("q:i:c"));

  TagTemplate blank = must_parse("{ }");
  expect_parts(blank, {{true, " "}});
}

TEST(TagTemplateParse, Errors) {
  expect_error("a{b");
  expect_error("{");
  expect_error("x{{{col");
  expect_error("a}b");
  expect_error("}");
  expect_error("{a}}");
  expect_error("a}}}b");
  expect_error("{}");
  expect_error("x{}y");
  expect_error("{{{}}}");
  expect_error("{a{b}");
  expect_error("{a{{b}}");
  // Sanity: the non-error neighbours of those.
  EXPECT_TRUE(TagTemplate::parse("a}}b").has_value());
  EXPECT_TRUE(TagTemplate::parse("{a}}}").has_value());
}

TEST(TagTemplateParse, ErrorMessagesDiffer) {
  std::string unclosed, lone, empty, nested;
  TagTemplate::parse("a{b", &unclosed);
  TagTemplate::parse("a}b", &lone);
  TagTemplate::parse("{}", &empty);
  TagTemplate::parse("{a{b}", &nested);
  EXPECT_NE(unclosed.find("unclosed"), std::string::npos) << unclosed;
  EXPECT_NE(lone.find("lone"), std::string::npos) << lone;
  EXPECT_NE(empty.find("empty"), std::string::npos) << empty;
  EXPECT_NE(nested, unclosed);
  EXPECT_NE(nested, lone);
  EXPECT_NE(nested, empty);
}

TEST(TagTemplateParse, SuccessLeavesErrorUntouched) {
  std::string err = "untouched";
  EXPECT_TRUE(TagTemplate::parse("ok:{x}", &err).has_value());
  EXPECT_EQ(err, "untouched");
}

TEST(TagTemplateRender, NullValueYieldsNoTag) {
  TagTemplate tt = must_parse("sku:{sku}:{region}");
  EXPECT_EQ(render_map(tt, {{"sku", "A"}}), std::nullopt);
  EXPECT_EQ(render_map(tt, {{"region", "eu"}}), std::nullopt);
  EXPECT_EQ(render_map(tt, {}), std::nullopt);
  // An empty string is not NULL.
  EXPECT_EQ(render_map(tt, {{"sku", ""}, {"region", ""}}), std::optional<std::string>("sku::"));
}

TEST(TagTemplateRender, ValuesInsertedVerbatim) {
  TagTemplate tt = must_parse("k:{c}");
  const std::string nasty = std::string("{x}}{{:\"'\\ \n") + '\0' + "end";
  EXPECT_EQ(render_map(tt, {{"c", nasty}}), std::optional<std::string>("k:" + nasty));
}

TEST(TagTemplateRender, CallbackCalledOnlyForColumns) {
  TagTemplate tt = must_parse("lit{{{a}}}:{b}:{a}tail");
  std::vector<std::string> calls;
  auto r = tt.render([&](const std::string& col) -> std::optional<std::string> {
    calls.push_back(col);
    return "[" + col + "]";
  });
  EXPECT_EQ(r, std::optional<std::string>("lit{[a]}:[b]:[a]tail"));
  EXPECT_EQ(calls, (std::vector<std::string>{"a", "b", "a"}));

  int count = 0;
  TagTemplate lit = must_parse("{{only}} literal");
  auto r2 = lit.render([&](const std::string&) -> std::optional<std::string> {
    ++count;
    return std::string("X");
  });
  EXPECT_EQ(r2, std::optional<std::string>("{only} literal"));
  EXPECT_EQ(count, 0);
}

TEST(TagTemplateRender, LongTemplates) {
  std::string tmpl, want;
  std::map<std::string, std::string> values;
  for (int i = 0; i < 1000; ++i) {
    const std::string col = "c" + std::to_string(i);
    tmpl += "{" + col + "}-";
    want += "v" + std::to_string(i) + "-";
    values[col] = "v" + std::to_string(i);
  }
  TagTemplate tt = must_parse(tmpl);
  EXPECT_EQ(tt.parts().size(), 2000u);
  EXPECT_EQ(tt.columns().size(), 1000u);
  EXPECT_EQ(tt.columns().front(), "c0");
  EXPECT_EQ(tt.columns().back(), "c999");
  EXPECT_EQ(render_map(tt, values), std::optional<std::string>(want));

  std::string same;
  for (int i = 0; i < 1000; ++i) same += "{x}";
  TagTemplate tt2 = must_parse(same);
  EXPECT_EQ(tt2.parts().size(), 1000u);
  EXPECT_EQ(tt2.columns(), std::vector<std::string>{"x"});
  int calls = 0;
  auto r = tt2.render([&](const std::string&) -> std::optional<std::string> {
    ++calls;
    return std::string("ab");
  });
  EXPECT_EQ(calls, 1000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->size(), 2000u);

  std::string braces;
  for (int i = 0; i < 1000; ++i) braces += "{{}}";
  TagTemplate tt3 = must_parse(braces);
  ASSERT_EQ(tt3.parts().size(), 1u);
  EXPECT_EQ(tt3.parts()[0].text.size(), 2000u);
}

// Reference renderer, written independently of the parser as a character-class
// state machine: returns nullopt for malformed templates, else the rendering
// with every column replaced by bracket(column).
std::optional<std::string> reference_render(const std::string& t) {
  enum State { kText, kOpen, kClose, kName } s = kText;
  std::string out, name;
  for (char c : t) {
    switch (s) {
      case kText:
        if (c == '{')
          s = kOpen;
        else if (c == '}')
          s = kClose;
        else
          out += c;
        break;
      case kOpen:  // after a '{' in text
        if (c == '{') {
          out += '{';
          s = kText;
        } else if (c == '}') {
          return std::nullopt;  // "{}"
        } else {
          name.assign(1, c);
          s = kName;
        }
        break;
      case kClose:  // after a '}' in text
        if (c != '}') return std::nullopt;
        out += '}';
        s = kText;
        break;
      case kName:
        if (c == '{') return std::nullopt;
        if (c == '}') {
          out += bracket(name);
          s = kText;
        } else {
          name += c;
        }
        break;
    }
  }
  if (s != kText) return std::nullopt;
  return out;
}

TEST(TagTemplateRandom, MatchesReferenceRenderer) {
  std::mt19937 rng(20240611);
  const char alphabet[] = {'a', 'b', ' ', ':', '{', '}', '{', '}'};
  int ok = 0, bad = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const int len = static_cast<int>(rng() % 13);
    std::string t;
    for (int i = 0; i < len; ++i) t += alphabet[rng() % sizeof alphabet];
    std::string err;
    std::optional<TagTemplate> tt = TagTemplate::parse(t, &err);
    std::optional<std::string> ref = reference_render(t);
    ASSERT_EQ(tt.has_value(), ref.has_value()) << "template '" << t << "' err=" << err;
    if (!tt) {
      EXPECT_FALSE(err.empty()) << t;
      ++bad;
      continue;
    }
    ++ok;
    EXPECT_EQ(render_bracket(*tt), ref) << "template '" << t << "'";
    // Structure invariants: no empty parts, no two adjacent literals, columns
    // distinct and drawn from the parts.
    for (std::size_t i = 0; i < tt->parts().size(); ++i) {
      EXPECT_FALSE(tt->parts()[i].text.empty()) << t;
      if (i > 0) {
        EXPECT_FALSE(!tt->parts()[i].is_column && !tt->parts()[i - 1].is_column) << t;
      }
    }
    std::vector<std::string> cols = tt->columns();
    for (std::size_t i = 0; i < cols.size(); ++i)
      for (std::size_t j = i + 1; j < cols.size(); ++j) {
        EXPECT_NE(cols[i], cols[j]) << t;
      }
  }
  // The alphabet must exercise both outcomes.
  EXPECT_GT(ok, 1000);
  EXPECT_GT(bad, 1000);
}

TEST(TagTemplateRandom, GeneratedPartsRoundTrip) {
  std::mt19937 rng(7);
  const char lit_chars[] = {'x', '{', '}', ':', ' '};
  const char col_chars[] = {'c', 'd', ' ', ':'};
  for (int iter = 0; iter < 5000; ++iter) {
    // Build the expected part list (merged literals), then its template text.
    std::vector<Part> want;
    std::string tmpl;
    const int nparts = static_cast<int>(rng() % 6);
    for (int p = 0; p < nparts; ++p) {
      std::string text;
      const int n = 1 + static_cast<int>(rng() % 4);
      if (rng() % 2) {
        for (int i = 0; i < n; ++i) text += col_chars[rng() % sizeof col_chars];
        tmpl += "{" + text + "}";
        want.push_back({true, text});
      } else {
        for (int i = 0; i < n; ++i) text += lit_chars[rng() % sizeof lit_chars];
        for (char c : text) tmpl += (c == '{' || c == '}') ? std::string(2, c) : std::string(1, c);
        if (!want.empty() && !want.back().is_column)
          want.back().text += text;
        else
          want.push_back({false, text});
      }
    }
    SCOPED_TRACE("template '" + tmpl + "'");
    TagTemplate tt = must_parse(tmpl);
    expect_parts(tt, want);
    std::string expect_render;
    for (const Part& p : want) expect_render += p.is_column ? bracket(p.text) : p.text;
    EXPECT_EQ(render_bracket(tt), std::optional<std::string>(expect_render));
  }
}

}  // namespace
