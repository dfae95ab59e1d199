// prompt.js — turns a conversation into the prompt text the server completes (the /ws and
// /api/stream protocols take a prompt, not messages). Two formats:
//   chat:       "SYSTEM\n\nUser: ...\nAssistant: ...\nUser: ...\nAssistant:" and the stop
//               string "\nUser:" so the model does not write the user's next turn;
//   completion: only the last user message, for base models (e.g. stories260K).
const USER = 'User:';
const ASSISTANT = 'Assistant:';

/** messages: [{role, content}] ending with the user message to answer. */
export function buildPrompt(messages, { format = 'chat', systemPrompt = '' } = {}) {
  if (format === 'completion') {
    const last = [...messages].reverse().find((m) => m.role === 'user');
    return { prompt: last?.content ?? '', stop: [] };
  }
  const lines = [];
  if (systemPrompt.trim()) lines.push(`${systemPrompt.trim()}\n`);
  for (const m of messages) lines.push(`${m.role === 'user' ? USER : ASSISTANT} ${m.content.trim()}`);
  lines.push(ASSISTANT);
  return { prompt: lines.join('\n'), stop: [`\n${USER}`] };
}
