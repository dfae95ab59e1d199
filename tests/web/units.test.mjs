// units.test.mjs — the UI's pure modules under node:test (no browser): the wire formats
// (both /ws dialects and SSE), prompt building, export/import, reconnection backoff.
// Expected values are written out from docs/api.md and the formats' definitions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildPrompt } from '../../web/src/chat/prompt.js';
import { EXPORT_FORMAT, parseImport, toJson, toMarkdown } from '../../web/src/io/export.js';
import { backoffDelay } from '../../web/src/net/backoff.js';
import { parseSseData, parseWsMessage, wsAuth, wsInference, wsStop } from '../../web/src/net/protocol.js';

const ws = (type, payload) => parseWsMessage(JSON.stringify({ type, payload }));

test('seed protocol: token messages, the final message, errors', () => {
  assert.deepEqual(ws('inference', { id: 'g1', token: 'Hi', token_id: 5, stream: true, complete: false, tokens_per_sec: 3 }),
    [{ kind: 'token', id: 'g1', text: 'Hi', count: 1 }]);
  // a token that released no text yet (half a UTF-8 character) still counts
  assert.deepEqual(ws('inference', { id: 'g1', token: '', token_id: 7, complete: false }), [{ kind: 'token', id: 'g1', text: '', count: 1 }]);
  const usage = { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 };
  assert.deepEqual(ws('inference', { id: 'g1', token: '!', token_id: null, complete: true, finish_reason: 'length', tokens_generated: 9, tokens_per_sec: 4.5, usage }), [
    { kind: 'token', id: 'g1', text: '!', count: 0 },
    { kind: 'done', id: 'g1', finishReason: 'length', tokensGenerated: 9, tokensPerSec: 4.5, usage, text: null },
  ]);
  assert.deepEqual(ws('error', { code: 'QUEUE_FULL', message: 'busy', request_id: 'g2' }), [{ kind: 'error', id: 'g2', code: 'QUEUE_FULL', message: 'busy' }]);
  assert.deepEqual(ws('status', { connected: true, state: 'idle' }), [{ kind: 'status', connected: true, state: 'idle' }]);
});

test('first dialect: token / done / error without ids', () => {
  assert.deepEqual(ws('token', { text: 'ab' }), [{ kind: 'token', id: null, text: 'ab', count: null }]);
  assert.deepEqual(ws('done', { tokens_generated: 2, tokens_per_sec: 1, finish_reason: 'cancelled', usage: { completion_tokens: 2 } }),
    [{ kind: 'done', id: null, finishReason: 'cancelled', tokensGenerated: 2, tokensPerSec: 1, usage: { completion_tokens: 2 }, text: null }]);
  assert.deepEqual(ws('error', { message: 'bad' }), [{ kind: 'error', id: null, code: 'ERROR', message: 'bad' }]);
  assert.equal(parseWsMessage('{nope')[0].code, 'INVALID_RESPONSE');
  assert.deepEqual(ws('something-new', {}), []);
});

test('SSE events of /api/stream', () => {
  assert.deepEqual(parseSseData({ type: 'token', text: 'x', token_ids: [1, 2] }, 's1'), { kind: 'token', id: 's1', text: 'x', count: 2 });
  assert.equal(parseSseData({ type: 'token', text: 'x' }, 's1').count, null);
  assert.equal(parseSseData({ type: 'done', finish_reason: 'stop', usage: {} }, 's1').finishReason, 'stop');
  assert.deepEqual(parseSseData({ error: { message: 'm', type: 'server_error', code: 500 } }, 's1'), { kind: 'error', id: 's1', code: 'server_error', message: 'm' });
});

test('client messages are {type, payload} envelopes', () => {
  assert.deepEqual(JSON.parse(wsInference('g1', { prompt: 'p', temperature: 0.5 })), { type: 'inference', payload: { prompt: 'p', temperature: 0.5, id: 'g1', stream: true } });
  assert.deepEqual(JSON.parse(wsStop('g1')), { type: 'stop', payload: { id: 'g1' } });
  assert.deepEqual(JSON.parse(wsAuth('k')), { type: 'auth', payload: { api_key: 'k' } });
});

test('prompt formats', () => {
  const msgs = [{ role: 'user', content: 'Hi ' }, { role: 'assistant', content: ' Hello.' }, { role: 'user', content: 'Tell me more' }];
  assert.deepEqual(buildPrompt(msgs, { format: 'chat', systemPrompt: 'Be kind.' }), {
    prompt: 'Be kind.\n\nUser: Hi\nAssistant: Hello.\nUser: Tell me more\nAssistant:',
    stop: ['\nUser:'],
  });
  assert.equal(buildPrompt(msgs, { format: 'chat' }).prompt, 'User: Hi\nAssistant: Hello.\nUser: Tell me more\nAssistant:');
  assert.deepEqual(buildPrompt(msgs, { format: 'completion' }), { prompt: 'Tell me more', stop: [] });
});

test('export and import', () => {
  const conv = { id: 'c1', title: 'Moon', createdAt: 0, updatedAt: 0, model: 'm', messages: [{ id: 'a', role: 'user', content: 'Hi', createdAt: 0 }, { id: 'b', role: 'assistant', content: 'Hello', createdAt: 0 }] };
  const json = JSON.parse(toJson([conv]));
  assert.equal(json.format, EXPORT_FORMAT);
  assert.equal(json.version, 1);
  assert.deepEqual(json.conversations, [conv]);
  assert.deepEqual(parseImport(toJson([conv])), [conv]);
  assert.deepEqual(parseImport(JSON.stringify([conv])), [conv]);
  assert.deepEqual(parseImport(JSON.stringify(conv)), [conv]);
  assert.throws(() => parseImport('not json'), /not valid JSON/);
  assert.throws(() => parseImport('{"a": 1}'), /no conversations/);
  assert.equal(toMarkdown([conv]), '# Moon\n\n_1970-01-01T00:00:00.000Z · model: m_\n\n## User\n\nHi\n\n## Assistant\n\nHello\n');
});

test('reconnection backoff: doubling windows, capped, jittered within [window/2, window]', () => {
  for (const [attempt, lo, hi] of [[0, 250, 500], [1, 500, 1000], [3, 2000, 4000], [5, 5000, 10000], [50, 5000, 10000]]) {
    assert.equal(backoffDelay(attempt, { random: () => 0 }), lo);
    assert.equal(backoffDelay(attempt, { random: () => 1 }), hi);
  }
  assert.ok(new Set(Array.from({ length: 20 }, () => backoffDelay(2))).size > 10, 'no jitter');
});
