// invalidate_trigger(): AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW
//   EXECUTE FUNCTION agentcache.invalidate_trigger('tenant:{tenant_id}', …)
// Each argument is a tag template whose {column} parts are filled from the
// OLD and NEW rows (their text output); matching entries are deleted in the
// same transaction. The templates are parsed by core::TagTemplate (C++
// strings), so every PostgreSQL call made while they are alive goes through
// pg_try.
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/ttl/write.hpp"
#include "agentcache/core/tag_template.hpp"

#include <optional>
#include <utility>
#include <string>

using agentcache::pg::sql_error;

namespace agentcache::ttl {
namespace {

// The rows the event carries: NEW for INSERT, OLD for DELETE, both for UPDATE.
int event_rows(const TriggerData* td, HeapTuple rows[2]) {
  int n = 0;
  rows[n++] = td->tg_trigtuple;
  if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) rows[n++] = td->tg_newtuple;
  return n;
}

core::TagTemplate parse(const char* source, TupleDesc desc) {
  std::string error;
  auto tmpl = core::TagTemplate::parse(source, &error);
  if (!tmpl)
    throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE,
                    pg::textf<300>(FMT_STRING("invalid tag template \"{}\": {}"), source, error).c_str());
  for (const auto& part : tmpl->parts())
    if (part.is_column && SPI_fnumber(desc, part.text.c_str()) <= 0)
      throw sql_error(
          ERRCODE_UNDEFINED_COLUMN,
          pg::textf<300>(FMT_STRING("column \"{}\" of tag template \"{}\" does not exist"), part.text, source).c_str());
  return std::move(*tmpl);
}

// Renders `tmpl` for `row` and appends the tag to tags[] unless it is there
// already or a column it needs is NULL.
void add_tag(const core::TagTemplate& tmpl, HeapTuple row, TupleDesc desc, Datum* tags, int* ntags) {
  std::optional<std::string> tag = tmpl.render([&](const std::string& col) -> std::optional<std::string> {
    const int attno = SPI_fnumber(desc, col.c_str());
    char* s = nullptr;
    pg::pg_try([&] { s = SPI_getvalue(row, desc, attno); });  // the type's text output; NULL -> nullptr
    if (s == nullptr) return std::nullopt;
    std::string v(s);
    pfree(s);
    return v;
  });
  if (!tag) return;
  for (int i = 0; i < *ntags; ++i)
    if (pg::text_view(DatumGetTextPP(tags[i])) == *tag) return;
  pg::pg_try([&] { tags[(*ntags)++] = pg::text_datum(*tag); });
}

void invalidate_tags(Datum* tags, int ntags) {
  if (ntags == 0) return;
  ArrayType* arr = construct_array(tags, ntags, TEXTOID, -1, false, TYPALIGN_INT);
  static pg::Statement q(
      "DELETE FROM agentcache.entries WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM agentcache.entries"
      " WHERE tags OPERATOR(pg_catalog.&&) $1 ORDER BY namespace, key FOR UPDATE)) RETURNING namespace",
      {TEXTARRAYOID});
  Datum values[1] = {PointerGetDatum(arr)};
  (void)write::delete_where(q, values);
}

}  // namespace
}  // namespace agentcache::ttl

using namespace agentcache;

AGENTCACHE_FUNCTION(agentcache_invalidate_trigger) {
  return pg::boundary([&]() -> Datum {
    TriggerData* td = pg::trigger_data(fcinfo, "invalidate_trigger");
    if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
      throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                      "invalidate_trigger() must be used as a FOR EACH ROW trigger");
    if (!TRIGGER_FIRED_AFTER(td->tg_event))  // a BEFORE trigger returning NULL would cancel the row
      throw sql_error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "invalidate_trigger() must be fired AFTER the change");
    TupleDesc desc = td->tg_relation->rd_att;
    HeapTuple rows[2];
    const int nrows = ttl::event_rows(td, rows);
    const int ntemplates = td->tg_trigger->tgnargs;
    Datum* tags = static_cast<Datum*>(palloc(sizeof(Datum) * (ntemplates * 2 + 1)));
    int ntags = 0;
    for (int t = 0; t < ntemplates; ++t) {
      const core::TagTemplate tmpl = ttl::parse(td->tg_trigger->tgargs[t], desc);
      for (int r = 0; r < nrows; ++r) ttl::add_tag(tmpl, rows[r], desc, tags, &ntags);
    }
    ttl::invalidate_tags(tags, ntags);
    return PointerGetDatum(nullptr);
  });
}
