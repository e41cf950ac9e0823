// agentcache for Node: the SQL API on node-postgres (a pg.Client, a pooled
// client or a pg.Pool), SQLSTATEs mapped to error classes, and the
// claim -> LLM -> reply flow (handle). See ../README.md.

export class AgentcacheError extends Error {
  constructor(message, sqlstate, cause) {
    super(message, cause ? { cause } : undefined);
    this.name = new.target.name;
    this.sqlstate = sqlstate ?? null;
  }
}
/** 55000: agentcache is not in shared_preload_libraries. */
export class NotPreloaded extends AgentcacheError {}
/** 55000: the claim was taken over (lease over) or released: do not send the reply. */
export class ClaimLost extends AgentcacheError {}
/** 55000: this session never held the claim. */
export class NotHolder extends AgentcacheError {}
/** 22023 / 22004 / 54000 / 22021. */
export class InvalidArgument extends AgentcacheError {}
/** 42501. */
export class PermissionDenied extends AgentcacheError {}
/** 42704. */
export class UnknownObject extends AgentcacheError {}
/** 25006. */
export class ReadOnly extends AgentcacheError {}

const BY_STATE = {
  22023: InvalidArgument, 22004: InvalidArgument, 54000: InvalidArgument, 22021: InvalidArgument,
  42501: PermissionDenied, 42704: UnknownObject, 25006: ReadOnly,
};

/** The agentcache error for a node-postgres error (the error itself when there is no better name). */
export function translate(err) {
  const state = err?.code;
  const message = err?.message ?? String(err);
  let Cls = BY_STATE[state];
  if (state === '55000') {
    const m = message.toLowerCase();
    if (m.includes('shared_preload_libraries')) Cls = NotPreloaded;
    else if (m.includes('no longer holds the claim')) Cls = ClaimLost;
    else if (m.includes('does not hold the claim')) Cls = NotHolder;
  }
  return Cls ? new Cls(message, state, err) : err;
}

const interval = (v) => (v == null ? null : typeof v === 'number' ? `${v} milliseconds` : String(v));
const turnsOf = (ctx) =>
  (ctx ?? []).map((t) => ({ seq: Number(t.seq), role: t.role, content: t.content, at: t.at, meta: t.meta ?? null }));

export class Agentcache {
  /** @param {import('pg').ClientBase | import('pg').Pool} db */
  constructor(db) {
    this.db = db;
  }

  async #query(text, values = []) {
    try {
      return await this.db.query(text, values);
    } catch (e) {
      throw translate(e);
    }
  }
  async #scalar(text, values) {
    const r = await this.#query(text, values);
    return r.rows.length ? Object.values(r.rows[0])[0] : null;
  }

  // ---------------------------------------------------------------- conversation memory
  async addTurn(sessionId, role, content, meta = null) {
    return Number(await this.#scalar('SELECT agentcache.add_turn($1, $2, $3, $4::jsonb) AS v',
      [sessionId, role, content, meta == null ? null : JSON.stringify(meta)]));
  }
  async getContext(sessionId, { maxTurns = null, maxChars = null, maxTokens = null, keepSystem = false, startOnUser = false } = {}) {
    return turnsOf(await this.#scalar('SELECT agentcache.get_context($1, $2, $3, $4, $5, $6) AS v',
      [sessionId, maxTurns, maxChars, maxTokens, keepSystem, startOnUser]));
  }
  async getTurns(sessionId, { maxTurns = null, maxTokens = null, keepSystem = false, startOnUser = false } = {}) {
    const r = await this.#query(
      'SELECT seq, role, content, meta, created_at, tokens FROM agentcache.get_turns($1, $2, $3, $4, $5)',
      [sessionId, maxTurns, maxTokens, keepSystem, startOnUser]);
    return r.rows.map((x) => ({ seq: Number(x.seq), role: x.role, content: x.content, meta: x.meta, at: x.created_at, tokens: x.tokens }));
  }
  async warmSession(sessionId) { return this.#scalar('SELECT agentcache.warm_session($1) AS v', [sessionId]); }
  async endSession(sessionId) { return this.#scalar('SELECT agentcache.end_session($1) AS v', [sessionId]); }
  async forgetSession(sessionId) { return Number(await this.#scalar('SELECT agentcache.forget_session($1) AS v', [sessionId])); }
  async tokenCount(content, encoding = 'o200k_base') {
    return this.#scalar('SELECT agentcache.token_count($1, $2) AS v', [content, encoding]);
  }

  // ---------------------------------------------------------------- TTL cache
  async put(namespace, key, value, { ttl = null, tags = [] } = {}) {
    await this.#query('SELECT agentcache.put($1, $2, $3::jsonb, $4::interval, $5::text[])',
      [namespace, key, JSON.stringify(value), interval(ttl), tags]);
  }
  async get(namespace, key) { return this.#scalar('SELECT agentcache.get($1, $2) AS v', [namespace, key]); }
  async fetch(namespace, key, query, { ttl = null, staleIfError = null } = {}) {
    return this.#scalar('SELECT agentcache.fetch($1, $2, $3, $4::interval, $5::interval) AS v',
      [namespace, key, query, interval(ttl), interval(staleIfError)]);
  }
  async invalidate(namespace, key) { return this.#scalar('SELECT agentcache.invalidate($1, $2) AS v', [namespace, key]); }
  async invalidateTag(tag) { return Number(await this.#scalar('SELECT agentcache.invalidate_tag($1) AS v', [tag])); }
  async clear(namespace) { return Number(await this.#scalar('SELECT agentcache.clear($1) AS v', [namespace])); }

  // ---------------------------------------------------------------- deduplication
  async dedupBegin(messageId, { conversationId = null, body = null, within = null, lease = null } = {}) {
    return this.#scalar('SELECT agentcache.dedup_begin($1, $2, $3, $4::interval, $5::interval) AS v',
      [messageId, conversationId, body, interval(within), interval(lease)]);
  }
  async dedupComplete(messageId) { await this.#query('SELECT agentcache.dedup_complete($1)', [messageId]); }
  async dedupFail(messageId, error = null) { await this.#query('SELECT agentcache.dedup_fail($1, $2)', [messageId, error]); }
  async dedupState(messageId) {
    const r = await this.#query('SELECT * FROM agentcache.dedup_state($1)', [messageId]);
    return r.rows[0] ?? null;
  }

  // ---------------------------------------------------------------- the hot path
  async inbound(instance, messageId, sessionId, body, { maxTurns = null, maxTokens = null, keepSystem = false, startOnUser = false } = {}) {
    const r = await this.#scalar('SELECT agentcache.inbound($1, $2, $3, $4, $5, $6, $7, $8) AS v',
      [instance, messageId, sessionId, body, maxTurns, maxTokens, keepSystem, startOnUser]);
    return { dedup: r.dedup, route: r.route ?? null, context: turnsOf(r.context), reply: r.reply ?? null };
  }
  async outbound(messageId, sessionId, reply, meta = null) {
    return Number(await this.#scalar('SELECT agentcache.outbound($1, $2, $3, $4::jsonb) AS v',
      [messageId, sessionId, reply, meta == null ? null : JSON.stringify(meta)]));
  }
  async replySent(messageId) { return this.#scalar('SELECT agentcache.reply_sent($1) AS v', [messageId]); }
  /** Due unsent replies, locked for the caller's transaction (SKIP LOCKED): call between BEGIN and COMMIT on one client. */
  async pendingReplies({ olderThan = '1 minute', maxRows = 100 } = {}) {
    const r = await this.#query(
      'SELECT message_id, session_id, seq, content, meta, completed_at FROM agentcache.pending_replies($1::interval, $2)',
      [interval(olderThan), maxRows]);
    return r.rows.map((x) => ({ messageId: x.message_id, sessionId: x.session_id, seq: Number(x.seq), content: x.content, meta: x.meta, completedAt: x.completed_at }));
  }

  // ---------------------------------------------------------------- maps, observability
  async lookup(name, key) { return this.#scalar('SELECT agentcache.lookup($1, $2) AS v', [name, key]); }
  async resolveInstance(instance) { return this.#scalar('SELECT agentcache.resolve_instance($1) AS v', [instance]); }
  async health() { return this.#scalar('SELECT agentcache.health() AS v'); }
  async stats() { return (await this.#query('SELECT * FROM agentcache.stats()')).rows; }

  /**
   * One inbound webhook message. `fn(msg)` runs when the claim was acquired:
   * it returns the reply text (or {text, meta}); the reply is stored with the
   * completed claim (outbound) and returned. If `fn` throws, the claim is
   * failed (dedup_fail) so that a re-delivery retries it, and the error
   * propagates. A duplicate or in-progress message does not call `fn`.
   * Needs a client in autocommit (no open transaction): the claim commits
   * before the LLM call.
   */
  async handle({ instance, messageId, sessionId, body, ...budget }, fn) {
    const inbound = await this.inbound(instance, messageId, sessionId, body, budget);
    if (inbound.dedup !== 'acquired') return { ...inbound, seq: null };
    let out;
    try {
      out = await fn(inbound);
    } catch (e) {
      try {
        await this.dedupFail(messageId, `${e?.name ?? 'Error'}: ${e?.message ?? e}`.slice(0, 1000));
      } catch (failErr) {
        if (!(failErr instanceof ClaimLost)) throw failErr;
      }
      throw e;
    }
    const text = typeof out === 'string' ? out : out?.text;
    if (typeof text !== 'string') {
      await this.dedupFail(messageId, 'the handler returned no reply');
      throw new TypeError('handle(): fn must return the reply text (or {text, meta})');
    }
    const seq = await this.outbound(messageId, sessionId, text, typeof out === 'string' ? null : out.meta ?? null);
    return { ...inbound, seq, replyText: text };
  }
}

export default Agentcache;
