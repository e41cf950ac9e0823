--
-- loaded_module: on PostgreSQL 18 the module's magic block carries its name
-- and version (PG_MODULE_MAGIC_EXT, src/pg/common/compat.hpp), shown by
-- pg_get_loaded_modules(), and the version is the extension's. 15 and 17 have
-- no such function: the alternative expected file loaded_module_1.out shows
-- the error they give.
--
SELECT module_name, version = (SELECT extversion FROM pg_extension WHERE extname = 'agentcache') AS version_matches
  FROM pg_get_loaded_modules()
 WHERE file_name = 'agentcache.so';
