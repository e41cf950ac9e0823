-- agentcache 0.1.0 -> 0.2.0. A fresh CREATE EXTENSION agentcache runs
-- agentcache--0.1.0.sql (frozen as released) and then this script, so a new
-- install and an upgraded one have the same schema (test/regress/sql/
-- upgrade.sql compares them). Every change of an SQL object from 0.1.0 on
-- goes here, never into the released script.
\echo Use "ALTER EXTENSION agentcache UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0 reorganised the C++ glue by tier; the SQL objects of 0.1.0 are
-- unchanged so far.
