// Included last by every src/core/*.cpp: a core translation unit must not see
// PostgreSQL (postgres.h defines PG_VERSION_NUM via pg_config.h, c.h defines
// PGDLLIMPORT and elog.h defines ereport).
#if defined(PG_VERSION_NUM) || defined(PGDLLIMPORT) || defined(ereport) || defined(POSTGRES_H)
#error "src/core must not include PostgreSQL headers: move the code to src/pg"
#endif
