// sse-transport.js — one generation over POST /api/stream (Server-Sent Events read from a
// fetch body, since EventSource cannot POST or send headers). The fallback when WebSockets
// are blocked. Aborting `signal` closes the stream, which makes the server cancel the job.
import { apiFetch } from './http.js';
import { parseSseData } from './protocol.js';

/** Streams events to onEvent; resolves after the done/error event, rejects on failure. */
export async function sseGenerate(payload, { id, signal, onEvent }) {
  const res = await apiFetch('/api/stream', { method: 'POST', body: payload, signal });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))   // ":" lines are keep-alive comments
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data || data === '[DONE]') continue;
      const ev = parseSseData(JSON.parse(data), id);
      if (!ev) continue;
      onEvent(ev);
      if (ev.kind !== 'token') return;
    }
  }
  throw new Error('the stream ended before the generation finished');
}
