// ws.test.mjs — the `ws` npm client against quarrel's /ws (the seed's protocol) on a real
// `quarrel serve` (stories260K, loopback, 4 slots):
//   two generations at once on one connection, each named by its id: their token messages
//   interleave, the golden prompt yields llama.cpp's greedy token ids and text, and the
//   other yields what it yields alone; status while busy and idle; stop by id cancels one
//   and leaves the other; errors carry their code and request_id; a message over 1 MiB is
//   answered with close code 1009, which the client sees.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { SHARED, startServer, stopServer } from './server.mjs';

const golden = JSON.parse(fs.readFileSync(path.join(SHARED, 'golden', 'stories260K', 'story.json'), 'utf8'));
let srv;

before(async () => { srv = await startServer(['--parallel', '4']); });
after(async () => { assert.equal(await stopServer(srv), 0); });

// A connection with an inbox: next(pred) resolves with the first message matching pred.
function connect() {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws`);
  const inbox = [], waiters = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    const w = waiters.findIndex((x) => x.pred(m));
    if (w >= 0) waiters.splice(w, 1)[0].resolve(m);
    else inbox.push(m);
  });
  const next = (pred = () => true, ms = 30000) => {
    const i = inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no matching message in time')), ms);
      waiters.push({ pred, resolve: (m) => { clearTimeout(t); resolve(m); } });
    });
  };
  const send = (type, payload) => ws.send(JSON.stringify(payload === undefined ? { type } : { type, payload }));
  const opened = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { ws, next, send, opened, inbox };
}

// Collects a generation's token messages until its complete message; `order` records the
// ids of every inference message seen, to show interleaving.
async function collect(c, id, order) {
  const ids = [], pieces = [];
  for (;;) {
    const m = await c.next((x) => x.type === 'inference' && x.payload.id === id);
    order?.push(id);
    const p = m.payload;
    pieces.push(p.token);
    if (p.complete) return { ids, text: pieces.join(''), final: p };
    assert.equal(typeof p.token_id, 'number');
    assert.equal(p.stream, true);
    ids.push(p.token_id);
  }
}

test('two concurrent generations on one connection, with ids', async () => {
  const c = connect();
  await c.opened;
  const other = { prompt: 'The cat sat on the', temperature: 0, max_tokens: 40, ignore_eos: true };
  c.send('inference', { id: 'a', prompt: golden.prompt, temperature: 0, max_tokens: 64 });
  c.send('inference', { id: 7, ...other });
  c.send('status');
  const st = await c.next((m) => m.type === 'status');
  assert.equal(st.payload.connected, true);
  assert.deepEqual(st.payload.models, ['stories260K.gguf']);
  assert.equal(st.payload.state, 'generating');
  assert.deepEqual(st.payload.active, ['a', 7]);

  const order = [];
  const [a, b] = await Promise.all([collect(c, 'a', order), collect(c, 7, order)]);
  assert.deepEqual(a.ids, golden.greedy, 'token ids = llama.cpp greedy ids');
  assert.equal(a.text, golden.greedy_text);
  assert.equal(a.final.finish_reason, 'length');
  assert.equal(a.final.tokens_generated, 64);
  assert.deepEqual(a.final.usage, { prompt_tokens: 16, completion_tokens: 64, total_tokens: 80 });
  assert.equal(b.ids.length, 40);
  // interleaved: both had tokens out before the first one finished
  const firstDone = Math.min(order.lastIndexOf('a'), order.lastIndexOf(7));
  assert.ok(order.slice(0, firstDone).includes('a') && order.slice(0, firstDone).includes(7), 'streams interleave');

  // the same request alone gives the same tokens
  c.send('inference', { id: 'solo', ...other });
  const solo = await collect(c, 'solo');
  assert.deepEqual(solo.ids, b.ids);
  assert.equal(solo.text, b.text);

  // not streamed: one complete message with the text
  c.send('inference', { id: 'whole', ...other, stream: false });
  const whole = await c.next((m) => m.type === 'inference' && m.payload.id === 'whole');
  assert.equal(whole.payload.complete, true);
  assert.equal(whole.payload.text, b.text);

  c.send('status');
  const idle = await c.next((m) => m.type === 'status');
  assert.equal(idle.payload.state, 'idle');
  assert.deepEqual(idle.payload.active, []);
  c.send('metrics');
  const met = await c.next((m) => m.type === 'metrics');
  assert.equal(typeof met.payload.kv_cache_usage_ratio, 'number');
  assert.equal(c.inbox.length, 0, `unexpected messages: ${JSON.stringify(c.inbox)}`);
  c.ws.close();
});

test('stop by id cancels that generation only; errors carry code and request_id', async () => {
  const c = connect();
  await c.opened;
  c.send('inference', { id: 'long', prompt: 'Once', max_tokens: 1900, ignore_eos: true });
  c.send('inference', { id: 'short', prompt: 'The dog', max_tokens: 24, ignore_eos: true, temperature: 0 });
  await c.next((m) => m.type === 'inference' && m.payload.id === 'long' && !m.payload.complete);
  c.send('inference', { id: 'long', prompt: 'again' });
  let e = await c.next((m) => m.type === 'error');
  assert.equal(e.payload.code, 'INVALID_REQUEST');
  assert.equal(e.payload.request_id, 'long');
  c.send('stop', { id: 'long' });
  const [long, short] = await Promise.all([collect(c, 'long'), collect(c, 'short')]);
  assert.equal(long.final.finish_reason, 'cancelled');
  assert.ok(long.ids.length < 1900);
  assert.equal(short.final.finish_reason, 'length');
  assert.equal(short.ids.length, 24);

  c.send('stop', { id: 'nothing' });
  e = await c.next((m) => m.type === 'error');
  assert.deepEqual([e.payload.code, e.payload.request_id], ['INVALID_REQUEST', 'nothing']);
  c.send('inference', { id: 'm', prompt: 'x', model: 'gpt-4' });
  e = await c.next((m) => m.type === 'error');
  assert.deepEqual([e.payload.code, e.payload.request_id], ['MODEL_NOT_FOUND', 'm']);
  c.send('inference', { id: 'bad', prompt: 'x', max_tokens: -1 });
  e = await c.next((m) => m.type === 'error');
  assert.deepEqual([e.payload.code, e.payload.request_id], ['INVALID_REQUEST', 'bad']);
  assert.match(e.payload.message, /max_tokens/);
  c.ws.close();
});

test('a message over 1 MiB gets close code 1009, seen by the client', async () => {
  for (const size of [(1 << 20) + 1, 3 << 20]) {
    const c = connect();
    await c.opened;
    const closed = new Promise((resolve) => c.ws.once('close', (code) => resolve(code)));
    c.ws.on('error', () => {});   // a reset would show as 1006 below
    c.ws.send('a'.repeat(size));
    assert.equal(await closed, 1009, `${size}-byte message`);
  }
  // the server is fine afterwards
  const c = connect();
  await c.opened;
  c.send('status');
  assert.equal((await c.next((m) => m.type === 'status')).payload.state, 'idle');
  c.ws.close();
});
