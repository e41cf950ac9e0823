// The reply outbox's read for inbound() on a duplicate (API.md 0.2.0,
// "Replies delivered once"): the stored reply turn while it is not marked
// sent. The turn is read through SQL (row-level security on turns applies).
#include "pg/common/args.hpp"
#include "pg/common/spi.hpp"
#include "pg/dedup/dedup.hpp"

#include <cstring>

namespace agentcache::dedup {

Jsonb* unsent_reply(std::string_view id) {
  return pg::with_spi([&]() -> Jsonb* {
    static pg::Statement q(
        "SELECT pg_catalog.jsonb_build_object('seq', t.seq, 'role', t.role, 'content', t.content, 'at', t.created_at)"
        " OPERATOR(pg_catalog.||) CASE WHEN t.meta IS NULL THEN '{}'::pg_catalog.jsonb"
        " ELSE pg_catalog.jsonb_build_object('meta', t.meta) END"
        " FROM agentcache.dedup d JOIN agentcache.turns t ON t.session_id OPERATOR(pg_catalog.=) d.session_id"
        " AND t.seq OPERATOR(pg_catalog.=) d.reply_seq"
        " WHERE d.message_id OPERATOR(pg_catalog.=) $1 AND d.reply_sent OPERATOR(pg_catalog.=) false",
        {TEXTOID});
    Datum values[1] = {pg::text_datum(id)};
    const int rc = q.exec_latest(values, nullptr, true, 1);
    pg::spi_check(rc, SPI_OK_SELECT, "reading agentcache.dedup");
    if (SPI_processed != 1) return nullptr;
    bool isnull = false;
    const Datum d = pg::spi_value(0, 1, &isnull);
    if (isnull) return nullptr;
    Jsonb* j = DatumGetJsonbP(d);
    auto* out = static_cast<Jsonb*>(SPI_palloc(VARSIZE(j)));  // outlives the SPI connection
    std::memcpy(out, j, VARSIZE(j));
    return out;
  });
}

}  // namespace agentcache::dedup
