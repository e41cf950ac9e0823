import type { ClientBase, Pool } from 'pg';
import { BaseListChatMessageHistory } from '@langchain/core/chat_history';
import type { BaseMessage } from '@langchain/core/messages';
import type { Agentcache, Turn } from './index.js';

export function toMessage(turn: Turn): BaseMessage;
export class AgentcacheChatMessageHistory extends BaseListChatMessageHistory {
  lc_namespace: string[];
  constructor(o: { client: ClientBase | Pool | Agentcache; sessionId: string; maxTurns?: number | null; maxTokens?: number | null; keepSystem?: boolean; startOnUser?: boolean });
  getMessages(): Promise<BaseMessage[]>;
  addMessage(message: BaseMessage): Promise<void>;
  addMessages(messages: BaseMessage[]): Promise<void>;
  clear(): Promise<void>;
}
