// LangChain.js chat history on agentcache: BaseListChatMessageHistory over
// add_turn / get_context / forget_session, with token-budgeted reads.
import { BaseListChatMessageHistory } from '@langchain/core/chat_history';
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { Agentcache } from './index.js';

const ROLE_OF = { human: 'user', ai: 'assistant', system: 'system', tool: 'tool' };

/** agentcache role -> LangChain message (tool_call_id and name come back from meta). */
export function toMessage(turn) {
  const meta = turn.meta ?? {};
  switch (turn.role) {
    case 'user': return new HumanMessage({ content: turn.content });
    case 'assistant': return new AIMessage({ content: turn.content });
    case 'system': return new SystemMessage({ content: turn.content });
    case 'tool': return new ToolMessage({ content: turn.content, tool_call_id: meta.tool_call_id ?? '', name: meta.name });
    default: throw new Error(`unknown role ${turn.role}`);
  }
}

export class AgentcacheChatMessageHistory extends BaseListChatMessageHistory {
  lc_namespace = ['agentcache', 'langchain'];

  /**
   * @param {object} o
   * @param {import('pg').ClientBase | import('pg').Pool | Agentcache} o.client
   * @param {string} o.sessionId
   * @param {number} [o.maxTurns] @param {number} [o.maxTokens] @param {boolean} [o.keepSystem] @param {boolean} [o.startOnUser]
   */
  constructor({ client, sessionId, maxTurns = null, maxTokens = null, keepSystem = false, startOnUser = false }) {
    super();
    this.ac = client instanceof Agentcache ? client : new Agentcache(client);
    this.sessionId = sessionId;
    this.budget = { maxTurns, maxTokens, keepSystem, startOnUser };
  }

  async getMessages() {
    return (await this.ac.getContext(this.sessionId, this.budget)).map(toMessage);
  }

  async addMessage(message) {
    const type = message._getType();
    const role = ROLE_OF[type];
    if (!role) throw new Error(`agentcache stores human, ai, system and tool messages, not ${type}`);
    if (typeof message.content !== 'string') throw new Error('agentcache stores text content only');
    let meta = null;
    if (type === 'tool') meta = { tool_call_id: message.tool_call_id, ...(message.name ? { name: message.name } : {}) };
    await this.ac.addTurn(this.sessionId, role, message.content, meta);
  }

  async addMessages(messages) {
    for (const m of messages) await this.addMessage(m);
  }

  async clear() {
    await this.ac.forgetSession(this.sessionId);
  }
}
