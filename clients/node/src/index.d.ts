import type { ClientBase, Pool } from 'pg';

export interface Turn { seq: number; role: 'user' | 'assistant' | 'system' | 'tool'; content: string; at?: string | Date; meta: unknown; tokens?: number; }
export interface Budget { maxTurns?: number | null; maxTokens?: number | null; keepSystem?: boolean; startOnUser?: boolean; }
export interface Inbound { dedup: 'acquired' | 'duplicate' | 'in_progress'; route: unknown; context: Turn[]; reply: { seq: number; content: string; meta?: unknown } | null; }
export interface PendingReply { messageId: string; sessionId: string; seq: number; content: string; meta: unknown; completedAt: Date; }
export type IntervalLike = number | string | null; // number: milliseconds

export class AgentcacheError extends Error { sqlstate: string | null; }
export class NotPreloaded extends AgentcacheError {}
export class ClaimLost extends AgentcacheError {}
export class NotHolder extends AgentcacheError {}
export class InvalidArgument extends AgentcacheError {}
export class PermissionDenied extends AgentcacheError {}
export class UnknownObject extends AgentcacheError {}
export class ReadOnly extends AgentcacheError {}
export function translate(err: unknown): unknown;

export class Agentcache {
  constructor(db: ClientBase | Pool);
  addTurn(sessionId: string, role: Turn['role'], content: string, meta?: unknown): Promise<number>;
  getContext(sessionId: string, o?: Budget & { maxChars?: number | null }): Promise<Turn[]>;
  getTurns(sessionId: string, o?: Budget): Promise<Turn[]>;
  warmSession(sessionId: string): Promise<number>;
  endSession(sessionId: string): Promise<boolean>;
  forgetSession(sessionId: string): Promise<number>;
  tokenCount(content: string, encoding?: 'o200k_base' | 'cl100k_base'): Promise<number>;
  put(namespace: string, key: string, value: unknown, o?: { ttl?: IntervalLike; tags?: string[] }): Promise<void>;
  get(namespace: string, key: string): Promise<unknown>;
  fetch(namespace: string, key: string, query: string, o?: { ttl?: IntervalLike; staleIfError?: IntervalLike }): Promise<unknown>;
  invalidate(namespace: string, key: string): Promise<boolean>;
  invalidateTag(tag: string): Promise<number>;
  clear(namespace: string): Promise<number>;
  dedupBegin(messageId: string, o?: { conversationId?: string | null; body?: string | null; within?: IntervalLike; lease?: IntervalLike }): Promise<'acquired' | 'duplicate' | 'in_progress'>;
  dedupComplete(messageId: string): Promise<void>;
  dedupFail(messageId: string, error?: string | null): Promise<void>;
  dedupState(messageId: string): Promise<Record<string, unknown> | null>;
  inbound(instance: string, messageId: string, sessionId: string, body: string, o?: Budget): Promise<Inbound>;
  outbound(messageId: string, sessionId: string, reply: string, meta?: unknown): Promise<number>;
  replySent(messageId: string): Promise<boolean>;
  pendingReplies(o?: { olderThan?: IntervalLike; maxRows?: number }): Promise<PendingReply[]>;
  lookup(name: string, key: string): Promise<unknown>;
  resolveInstance(instance: string): Promise<unknown>;
  health(): Promise<Record<string, unknown>>;
  stats(): Promise<Record<string, unknown>[]>;
  handle(m: { instance: string; messageId: string; sessionId: string; body: string } & Budget,
         fn: (msg: Inbound) => Promise<string | { text: string; meta?: unknown }>): Promise<Inbound & { seq: number | null; replyText?: string }>;
}
export default Agentcache;
