// Tag templates of invalidate_trigger(); see tag_template.hpp for the syntax.
// Pure C++17: no PostgreSQL headers.
#include "agentcache/core/tag_template.hpp"

#include <string>
#include <utility>

namespace agentcache::core {

namespace {

void set_error(std::string* error, const char* what, std::size_t pos) {
  if (error == nullptr) return;
  *error = what;
  *error += " at position ";
  *error += std::to_string(pos);
}

}  // namespace

std::optional<TagTemplate> TagTemplate::parse(std::string_view tmpl, std::string* error) {
  TagTemplate result;
  std::string literal;
  const std::size_t n = tmpl.size();
  std::size_t i = 0;
  while (i < n) {
    const char c = tmpl[i];
    if (c == '{') {
      if (i + 1 < n && tmpl[i + 1] == '{') {
        literal += '{';
        i += 2;
        continue;
      }
      std::size_t j = i + 1;
      while (j < n && tmpl[j] != '}' && tmpl[j] != '{') ++j;
      if (j == n) {
        set_error(error, "unclosed '{' in tag template", i);
        return std::nullopt;
      }
      if (tmpl[j] == '{') {
        set_error(error, "'{' inside a placeholder of tag template", j);
        return std::nullopt;
      }
      if (j == i + 1) {
        set_error(error, "empty placeholder '{}' in tag template", i);
        return std::nullopt;
      }
      if (!literal.empty()) {
        result.parts_.push_back(Part{false, std::move(literal)});
        literal.clear();
      }
      result.parts_.push_back(Part{true, std::string(tmpl.substr(i + 1, j - i - 1))});
      i = j + 1;
    } else if (c == '}') {
      if (i + 1 < n && tmpl[i + 1] == '}') {
        literal += '}';
        i += 2;
        continue;
      }
      set_error(error, "lone '}' in tag template (write '}}' for a literal brace)", i);
      return std::nullopt;
    } else {
      literal += c;
      ++i;
    }
  }
  if (!literal.empty()) result.parts_.push_back(Part{false, std::move(literal)});
  return result;
}

std::vector<std::string> TagTemplate::columns() const {
  std::vector<std::string> out;
  for (const Part& p : parts_) {
    if (!p.is_column) continue;
    bool seen = false;
    for (const std::string& c : out) {
      if (c == p.text) {
        seen = true;
        break;
      }
    }
    if (!seen) out.push_back(p.text);
  }
  return out;
}

}  // namespace agentcache::core

#include "agentcache/core/pure_check.hpp"
