// The Node client and the LangChain.js history against a real server
// (clients/run.sh sets AGENTCACHE_TEST_DSN).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { HumanMessage, AIMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { Agentcache, ClaimLost, InvalidArgument, NotHolder } from '../src/index.js';
import { AgentcacheChatMessageHistory } from '../src/langchain.js';

const DSN = process.env.AGENTCACHE_TEST_DSN;
const uid = (p) => `${p}-${randomUUID().slice(0, 12)}`;
let a, b, ac, other;

before(async () => {
  assert.ok(DSN, 'AGENTCACHE_TEST_DSN is not set: run clients/run.sh');
  a = new pg.Client({ connectionString: DSN });
  b = new pg.Client({ connectionString: DSN });
  await a.connect();
  await b.connect();
  await a.query('CREATE EXTENSION IF NOT EXISTS agentcache');
  ac = new Agentcache(a);
  other = new Agentcache(b);
});
after(async () => {
  await a?.end();
  await b?.end();
});

test('conversation memory with a token budget', async () => {
  const s = uid('node-sess');
  assert.equal(await ac.addTurn(s, 'system', 'You are the clinic assistant.'), 1);
  assert.equal(await ac.addTurn(s, 'user', 'Olá! Posso marcar para quinta?'), 2);
  assert.equal(await ac.addTurn(s, 'assistant', 'Quinta 10:30 está livre.', { model: 'stub' }), 3);
  const ctx = await ac.getContext(s);
  assert.deepEqual(ctx.map((t) => t.seq), [1, 2, 3]);
  assert.deepEqual(ctx[2].meta, { model: 'stub' });
  const turns = await ac.getTurns(s);
  for (const t of turns) assert.equal(t.tokens, await ac.tokenCount(t.content));
  const budget = (await ac.tokenCount(ctx[0].content)) + 4 + (await ac.tokenCount(ctx[2].content)) + 4;
  assert.deepEqual((await ac.getContext(s, { maxTokens: budget, keepSystem: true })).map((t) => t.seq), [1, 3]);
  assert.equal(await ac.forgetSession(s), 3);
});

test('errors are mapped by SQLSTATE', async () => {
  await assert.rejects(ac.tokenCount('x', 'p50k_base'), (e) => e instanceof InvalidArgument && e.sqlstate === '22023');
  await assert.rejects(ac.dedupComplete(uid('never')), NotHolder);
});

test('TTL cache', async () => {
  const ns = uid('node-ns');
  assert.equal(await ac.get(ns, 'k'), null);
  await ac.put(ns, 'k', { price: 120.5 }, { ttl: '5 minutes', tags: ['catalog'] });
  assert.deepEqual(await ac.get(ns, 'k'), { price: 120.5 });
  assert.deepEqual(await ac.fetch(ns, 'f', "SELECT jsonb_build_object('n', 42)"), { n: 42 });
  assert.ok((await ac.invalidateTag('catalog')) >= 1);
  assert.equal(await ac.get(ns, 'k'), null);
});

test('leases and fencing', async () => {
  const m = uid('node-msg');
  assert.equal(await ac.dedupBegin(m, { lease: 1 }), 'acquired');
  await a.query('SELECT pg_sleep(0.01)');
  assert.equal(await other.dedupBegin(m), 'acquired');
  await assert.rejects(ac.dedupComplete(m), (e) => e instanceof ClaimLost && e.sqlstate === '55000');
  await other.dedupComplete(m);
});

test('handle: reply stored with the claim, duplicate gets it, failure lets a retry in', async () => {
  const s = uid('node-sess');
  const m = uid('wamid');
  const r = await ac.handle({ instance: 'none', messageId: m, sessionId: s, body: 'Quero marcar', maxTokens: 500 }, async (msg) => {
    assert.deepEqual(msg.context.map((t) => t.content), ['Quero marcar']);
    return 'Claro! Qual dia?';
  });
  assert.equal(r.dedup, 'acquired');
  assert.equal(r.seq, 2);
  const dup = await other.inbound('none', m, s, 'Quero marcar');
  assert.equal(dup.dedup, 'duplicate');
  assert.equal(dup.reply.content, 'Claro! Qual dia?');
  await b.query('BEGIN');
  const due = (await other.pendingReplies({ olderThan: '0 s', maxRows: 1000 })).filter((p) => p.messageId === m);
  await b.query('COMMIT');
  assert.equal(due.length, 1);
  assert.equal(await ac.replySent(m), true);
  assert.equal((await other.inbound('none', m, s, 'Quero marcar')).reply, null);

  const m2 = uid('wamid');
  await assert.rejects(ac.handle({ instance: 'none', messageId: m2, sessionId: s, body: 'oi' }, async () => {
    throw new Error('LLM timeout');
  }), /LLM timeout/);
  assert.equal((await ac.dedupState(m2)).state, 'failed');
  const retry = await ac.handle({ instance: 'none', messageId: m2, sessionId: s, body: 'oi' }, async () => 'olá!');
  assert.equal(retry.dedup, 'acquired');
  assert.equal((await ac.dedupState(m2)).attempts, 2);
});

test('LangChain.js chat history: roles both ways, tool calls, budgets, clear', async () => {
  const s = uid('lc-sess');
  const h = new AgentcacheChatMessageHistory({ client: a, sessionId: s });
  await h.addMessages([
    new SystemMessage('You are the clinic assistant.'),
    new HumanMessage('Which slots are free?'),
    new AIMessage('Let me check.'),
    new ToolMessage({ content: '{"slots": ["14:00"]}', tool_call_id: 'call_1', name: 'slots' }),
    new AIMessage('14:00 is free.'),
  ]);
  const msgs = await h.getMessages();
  assert.deepEqual(msgs.map((m) => m._getType()), ['system', 'human', 'ai', 'tool', 'ai']);
  assert.equal(msgs[3].tool_call_id, 'call_1');
  assert.equal(msgs[3].name, 'slots');
  assert.deepEqual((await ac.getTurns(s)).map((t) => t.role), ['system', 'user', 'assistant', 'tool', 'assistant']);
  const small = new AgentcacheChatMessageHistory({ client: ac, sessionId: s, maxTokens: 40, keepSystem: true, startOnUser: true });
  const trimmed = await small.getMessages();
  assert.equal(trimmed[0]._getType(), 'system');
  assert.ok(trimmed.length < msgs.length);
  assert.ok(trimmed.length === 1 || trimmed[1]._getType() === 'human');
  await h.clear();
  assert.deepEqual(await h.getMessages(), []);
});
