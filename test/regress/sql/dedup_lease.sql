--
-- dedup_lease: claim leases and the reply outbox in one session (API.md
-- 0.2.0, "Claim leases with fencing", "Replies delivered once"); what needs
-- several sessions is in test/isolation/specs/dedup_lease.spec and
-- reply_outbox.spec, and in test/t/dedup_lease.pl and dedup_crash.pl.
--
SET TimeZone = 'UTC';

-- ---------------------------------------------------------------- the lease
SHOW agentcache.claim_lease;
SELECT setting, unit, min_val, context FROM pg_settings WHERE name = 'agentcache.claim_lease';
-- the lease is fixed at acquisition: now + the GUC, or the lease argument
SELECT agentcache.dedup_begin('dl-1') AS acquired;
SELECT lease_expires_at - now() BETWEEN interval '4 min 59 s' AND interval '5 min 1 s' AS five_minutes
  FROM agentcache.dedup_state('dl-1');
SELECT agentcache.dedup_begin('dl-2', lease => '30 seconds') AS acquired;
SELECT lease_expires_at - now() BETWEEN interval '29 s' AND interval '31 s' AS thirty_seconds
  FROM agentcache.dedup_state('dl-2');
-- the holder's repeated dedup_begin renews it (attempts unchanged)
SELECT lease_expires_at AS l0 FROM agentcache.dedup_state('dl-2') \gset
SELECT pg_sleep(0.01);
SELECT agentcache.dedup_begin('dl-2', lease => '30 seconds') AS renewed;
SELECT lease_expires_at > :'l0' AS later, attempts FROM agentcache.dedup_state('dl-2');
-- no lease: 0 (GUC or argument); the claim still dies with its backend
SET agentcache.claim_lease = 0;
SELECT agentcache.dedup_begin('dl-3') AS acquired;
SELECT lease_expires_at IS NULL AS no_lease FROM agentcache.dedup_state('dl-3');
RESET agentcache.claim_lease;
SELECT agentcache.dedup_begin('dl-4', lease => '0') AS acquired;
SELECT lease_expires_at IS NULL AS no_lease FROM agentcache.dedup_state('dl-4');
-- a lease past the end of time: none either
SELECT agentcache.dedup_begin('dl-5', lease => '300000 years') AS acquired;
SELECT lease_expires_at IS NULL AS no_lease FROM agentcache.dedup_state('dl-5');
-- a negative lease: 22023; units of the GUC
SELECT sqlstate_of($$SELECT agentcache.dedup_begin('dl-6', lease => '-1 second')$$) AS negative_lease;
SET agentcache.claim_lease = '90s';
SHOW agentcache.claim_lease;
-- (only the SQLSTATE: PostgreSQL 17 prints the range with units)
SELECT split_part(sqlstate_of($$SET agentcache.claim_lease = -1$$), ':', 1) AS negative_guc;
RESET agentcache.claim_lease;
-- completion ends the lease
SELECT agentcache.dedup_complete(m) FROM (VALUES ('dl-1'), ('dl-2'), ('dl-3'), ('dl-4'), ('dl-5')) v(m);
SELECT count(*) FILTER (WHERE lease_expires_at IS NULL) AS leases_ended, count(*) AS rows
  FROM agentcache.dedup WHERE message_id LIKE 'dl-%';

-- ---------------------------------------------------------------- the reply outbox
SELECT agentcache.forget_session('dl-s');
SELECT r->>'dedup' AS dedup, r ? 'reply' AS has_reply_key FROM agentcache.inbound('wa', 'dl-m1', 'dl-s', 'hi') r;
-- ("reply" is only ever a key for a duplicate: not for acquired or in_progress)
SELECT agentcache.outbound('dl-m1', 'dl-s', 'hello!', '{"k": 1}') AS reply_seq;
SELECT state, reply_seq, reply_sent FROM agentcache.dedup_state('dl-m1');
-- a duplicate carries the unsent reply: {"seq","role","content","at"} + "meta"
SELECT r->>'dedup' AS dedup, (r->'reply') - 'at' AS reply, r->'reply' ? 'at' AS has_at
  FROM agentcache.inbound('wa', 'dl-m1', 'dl-s', 'hi') r;
SELECT message_id, session_id, seq, content, meta FROM agentcache.pending_replies('0 s');
-- not yet older than a minute (the default)
SELECT count(*) AS pending_older_than_a_minute FROM agentcache.pending_replies();
-- marked sent: once
SELECT agentcache.reply_sent('dl-m1') AS sent, agentcache.reply_sent('dl-m1') AS again;
SELECT r->'reply' AS reply FROM agentcache.inbound('wa', 'dl-m1', 'dl-s', 'hi') r;
SELECT count(*) AS pending FROM agentcache.pending_replies('0 s');
-- dedup_complete leaves no reply; reply_sent of it or of an unknown message: false
SELECT agentcache.dedup_begin('dl-m2'), agentcache.dedup_complete('dl-m2');
SELECT reply_seq, reply_sent FROM agentcache.dedup_state('dl-m2');
SELECT r->'reply' AS reply FROM agentcache.inbound('wa', 'dl-m2', 'dl-s', 'x') r;
SELECT agentcache.reply_sent('dl-m2') AS no_reply, agentcache.reply_sent('dl-unknown') AS unknown;
-- a reply whose turn is gone (forget_session) is not pending
SELECT agentcache.dedup_begin('dl-m3'), agentcache.outbound('dl-m3', 'dl-s3', 'gone soon') > 0 AS replied;
SELECT count(*) AS pending FROM agentcache.pending_replies('0 s');
SELECT agentcache.forget_session('dl-s3');
SELECT count(*) AS pending_after_forget FROM agentcache.pending_replies('0 s');
-- arguments: NULL 22004, negative 22023, max_rows 0: none
SELECT sqlstate_of($$SELECT * FROM agentcache.pending_replies(NULL)$$) AS null_older,
       sqlstate_of($$SELECT * FROM agentcache.pending_replies('1 s', NULL)$$) AS null_max,
       sqlstate_of($$SELECT * FROM agentcache.pending_replies('-1 s')$$) AS negative_older,
       sqlstate_of($$SELECT * FROM agentcache.pending_replies('1 s', -1)$$) AS negative_max,
       sqlstate_of($$SELECT agentcache.reply_sent(NULL)$$) AS null_reply_sent;
SELECT count(*) AS none FROM agentcache.pending_replies('0 s', 0);
-- older_than past the start of time: nothing is that old
SELECT count(*) AS none FROM agentcache.pending_replies('300000 years');
-- the outbox's index: pending_replies reads it, not the table
EXPLAIN (COSTS OFF)
SELECT d.session_id FROM agentcache.dedup d
 WHERE d.reply_sent OPERATOR(pg_catalog.=) false ORDER BY d.updated_at, d.message_id LIMIT 1;
SELECT agentcache.dedup_release(m) FROM (VALUES ('dl-m1'), ('dl-m2'), ('dl-m3')) v(m);
DELETE FROM agentcache.dedup WHERE message_id LIKE 'dl-%';
SELECT agentcache.forget_session('dl-s');
