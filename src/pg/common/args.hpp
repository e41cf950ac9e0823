// Arguments and text datums, shared by the SQL-callable functions of every tier.
#pragma once
#include "pg/common/boundary.hpp"
#include "pg/common/format.hpp"

#include <string_view>

namespace agentcache::pg {

inline std::string_view text_view(const text* t) {
  auto* v = const_cast<text*>(t);
  return {VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v)};
}

// A palloc'd text datum holding `s`.
inline Datum text_datum(std::string_view s) {
  return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

// A palloc'd NUL-terminated copy of `s`.
inline char* cstr(std::string_view s) { return pnstrdup(s.data(), s.size()); }

// SQLSTATE 22004 naming the argument.
[[noreturn]] inline void null_arg(const char* name) {
  throw sql_error(ERRCODE_NULL_VALUE_NOT_ALLOWED, textf(FMT_STRING("{} must not be null"), name).c_str());
}

// A text argument that must not be NULL (22004 naming it).
inline std::string_view text_arg(FunctionCallInfo fcinfo, int i, const char* name) {
  if (PG_ARGISNULL(i)) null_arg(name);
  return text_view(PG_GETARG_TEXT_PP(i));
}

// 54000 when `s` is longer than `limit` bytes.
inline void check_length(std::string_view s, std::size_t limit, const char* what) {
  if (s.size() > limit)
    throw sql_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, textf(FMT_STRING("{} is too long"), what).c_str(),
                    textf(FMT_STRING("It is {} bytes long; the limit is {}."), s.size(), limit).c_str());
}

// The TriggerData of a trigger function; 39P01 when it was not called as a
// trigger.
inline TriggerData* trigger_data(FunctionCallInfo fcinfo, const char* fn) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                    textf(FMT_STRING("{}() must be called as a trigger"), fn).c_str());
  return reinterpret_cast<TriggerData*>(fcinfo->context);
}

// 39P01 unless an internal trigger function fires on the one table it serves:
// attached elsewhere (by anyone able to), it must not touch the extension's
// state.
inline void require_trigger_table(const TriggerData* td, Oid relid, const char* fn, const char* table) {
  if (RelationGetRelid(td->tg_relation) != relid)
    throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                    textf(FMT_STRING("{}() may only be used on {}"), fn, table).c_str());
}

}  // namespace agentcache::pg
