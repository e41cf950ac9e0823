// token_count(): exact token counts (src/pg/common/tokens.hpp, the core's
// tokenizer). Works without preload (the rank table is then loaded once by
// the backend that first needs it).
#include "pg/common/args.hpp"
#include "pg/common/boundary.hpp"
#include "pg/common/tokens.hpp"

using namespace agentcache;

// token_count(content text, encoding text DEFAULT 'o200k_base') RETURNS integer
AGENTCACHE_FUNCTION(agentcache_token_count) {
  return pg::boundary([&]() -> Datum {
    if (PG_ARGISNULL(0)) pg::null_arg("content");
    if (PG_ARGISNULL(1)) pg::null_arg("encoding");
    const pg::tokens::Encoding e = pg::tokens::parse_encoding(pg::text_arg(fcinfo, 1, "encoding"));
    const int64 n = pg::tokens::count(e, pg::text_view(PG_GETARG_TEXT_PP(0)));
    if (n > PG_INT32_MAX)
      throw pg::sql_error(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "token count out of range for integer");
    PG_RETURN_INT32(static_cast<int32>(n));
  });
}
