// Building small jsonb documents (health()) with PostgreSQL's own
// pushJsonbValue: keys are sorted and de-duplicated when the object closes.
#pragma once
#include "pg/common/pg.hpp"

#include <cstring>

namespace agentcache::pg::json {

inline JsonbValue string(const char* s) {
  JsonbValue v;
  v.type = jbvString;
  v.val.string.val = const_cast<char*>(s);
  v.val.string.len = static_cast<int>(std::strlen(s));
  return v;
}
inline JsonbValue integer(int64 n) {
  JsonbValue v;
  v.type = jbvNumeric;
  v.val.numeric = int64_to_numeric(n);
  return v;
}
inline JsonbValue boolean(bool b) {
  JsonbValue v;
  v.type = jbvBool;
  v.val.boolean = b;
  return v;
}
inline JsonbValue null() {
  JsonbValue v;
  v.type = jbvNull;
  return v;
}
// timestamptz_to_str() formats into a static buffer: copied, since a string
// of a JsonbValue is only read when the document is serialised. 0 -> null.
inline JsonbValue time(TimestampTz t) { return t ? string(pstrdup(timestamptz_to_str(t))) : null(); }

inline void kv(JsonbParseState** st, const char* key, JsonbValue val) {
  JsonbValue k = string(key);
  pushJsonbValue(st, WJB_KEY, &k);
  pushJsonbValue(st, WJB_VALUE, &val);
}
// Opens an object under `key`; close it with end_object().
inline void begin_object(JsonbParseState** st, const char* key) {
  JsonbValue k = string(key);
  pushJsonbValue(st, WJB_KEY, &k);
  pushJsonbValue(st, WJB_BEGIN_OBJECT, nullptr);
}
inline JsonbValue* end_object(JsonbParseState** st) { return pushJsonbValue(st, WJB_END_OBJECT, nullptr); }

}  // namespace agentcache::pg::json
