// protocol.js — what goes over the wire, in one place. Server messages of both transports
// become the same small events:
//   {kind: 'token',   id, text, count}          count: tokens it carries, null if unknown
//   {kind: 'done',    id, finishReason, tokensGenerated, tokensPerSec, usage, text}
//   {kind: 'error',   id, code, message}
//   {kind: 'status',  ...payload} / {kind: 'metrics', ...payload}
//
// WebSocket /ws (docs/api.md): envelopes {type, payload}. Two server dialects are read:
//   seed:  inference {id, token, token_id, complete, tokens_per_sec, finish_reason,
//          tokens_generated, usage}, error {code, message, request_id}
//   first: token {text}, done {summary}, error {message} — no ids: one generation at a time.
// SSE /api/stream: data: {"type":"token","text","token_ids"?} ... data: {"type":"done", ...},
// or data: {"error": {"message", "type", "code"}}.

const done = (id, p) => ({
  kind: 'done',
  id,
  finishReason: p.finish_reason ?? null,
  tokensGenerated: p.tokens_generated ?? p.usage?.completion_tokens ?? null,
  tokensPerSec: p.tokens_per_sec ?? null,
  usage: p.usage ?? null,
  text: typeof p.text === 'string' ? p.text : null,
});

/** One WebSocket text message -> a list of events (empty for unknown types). */
export function parseWsMessage(data) {
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    return [{ kind: 'error', id: null, code: 'INVALID_RESPONSE', message: 'the server sent a message that is not JSON' }];
  }
  const p = m?.payload ?? {};
  const id = p.id ?? null;
  switch (m?.type) {
    case 'inference': {
      const events = [];
      if (p.token) events.push({ kind: 'token', id, text: p.token, count: p.token_id === null || p.token_id === undefined ? 0 : 1 });
      else if (!p.complete) events.push({ kind: 'token', id, text: '', count: 1 });   // a token that released no text yet
      if (p.complete) events.push(done(id, p));
      return events;
    }
    case 'token':
      return [{ kind: 'token', id, text: p.text ?? '', count: null }];
    case 'done':
      return [done(id, p)];
    case 'error':
      return [{ kind: 'error', id: p.request_id ?? id, code: p.code ?? 'ERROR', message: p.message ?? 'unknown error' }];
    case 'status':
      return [{ kind: 'status', ...p }];
    case 'metrics':
      return [{ kind: 'metrics', ...p }];
    default:
      return [];
  }
}

/** One SSE data object -> an event (or null). */
export function parseSseData(obj, id) {
  if (obj?.error) return { kind: 'error', id, code: obj.error.type ?? 'ERROR', message: obj.error.message ?? 'error' };
  if (obj?.type === 'token') return { kind: 'token', id, text: obj.text ?? '', count: Array.isArray(obj.token_ids) ? obj.token_ids.length : null };
  if (obj?.type === 'done') return done(id, obj);
  return null;
}

const envelope = (type, payload) => JSON.stringify({ type, payload });
export const wsInference = (id, params) => envelope('inference', { ...params, id, stream: true });
export const wsStop = (id) => envelope('stop', { id });
export const wsStatus = () => envelope('status', {});
export const wsAuth = (key) => envelope('auth', { api_key: key });
