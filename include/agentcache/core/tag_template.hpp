// Tag templates of invalidate_trigger(): 'tenant:{tenant_id}', 'sku:{sku}:{region}'.
//
// A template is literal text with {column} placeholders. "{{" and "}}" stand
// for literal braces. A placeholder names a column (any characters but '{'
// and '}'; surrounding spaces are kept as part of the name, because
// PostgreSQL column names may contain them). Parsing reports malformed
// templates (an unclosed '{', a lone '}', an empty "{}").
#pragma once
#include "agentcache/core/pure.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentcache::core {

class TagTemplate {
 public:
  struct Part {
    bool is_column;
    std::string text;  // literal text, or the column name
  };

  // Parses a template; on error returns nullopt and sets *error (if given) to
  // a short English description.
  static std::optional<TagTemplate> parse(std::string_view tmpl, std::string* error = nullptr);

  const std::vector<Part>& parts() const noexcept { return parts_; }
  // Distinct column names in order of first appearance.
  std::vector<std::string> columns() const;

  // Renders the template. `value(column)` returns the column's text, or
  // nullopt when it is NULL: then the template yields no tag (nullopt).
  template <class ValueFn>
  std::optional<std::string> render(ValueFn&& value) const {
    std::string out;
    for (const Part& p : parts_) {
      if (!p.is_column) {
        out += p.text;
        continue;
      }
      std::optional<std::string> v = value(p.text);
      if (!v) return std::nullopt;
      out += *v;
    }
    return out;
  }

 private:
  std::vector<Part> parts_;
};

}  // namespace agentcache::core
