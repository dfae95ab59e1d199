// openai.test.mjs — the official `openai` npm client against quarrel's OpenAI-compatible
// endpoints on a real `quarrel serve` (stories260K, loopback). Checked against independent
// facts: llama.cpp's greedy text, token ids and per-step logits for the golden prompt
// (shared/golden/stories260K/story.*), and the client's own parsing of our replies:
//   models.list; completions (golden text, usage, logprobs vs log-softmax of the golden
//   logits, top alternatives); chat.completions plain and streamed (the stream iterator
//   ends at [DONE]; the concatenated deltas equal the plain reply at temperature 0; usage);
//   chat logprobs (greedy token = top alternative); an unknown model raises the client's
//   NotFoundError (status 404, as OpenAI answers) carrying our {"error":{"message","type","code"}}; the
//   Bearer key never reaches the log.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { SHARED, startServer, stopServer } from './server.mjs';

const GOLDEN_DIR = path.join(SHARED, 'golden', 'stories260K');
const golden = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, 'story.json'), 'utf8'));
const API_KEY = 'sk-quarrel-node-test-4f1d2a';
const MODEL_ID = 'stories260K.gguf';
const CHAT = [
  { role: 'system', content: 'Tell a story.' },
  { role: 'user', content: 'Once upon a time' },
];

let srv, client;

before(async () => {
  srv = await startServer(['--parallel', '4', '--log-format', 'json']);
  client = new OpenAI({ apiKey: API_KEY, baseURL: `${srv.url}/v1`, maxRetries: 0, timeout: 60000 });
});

after(async () => {
  const code = await stopServer(srv);
  assert.equal(code, 0, 'server exit status after SIGTERM');
  // the client sent "Authorization: Bearer <key>": named in the request lines, never its value
  assert.ok(!srv.log.includes(API_KEY), 'the API key leaked into the log');
  const lines = srv.log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.event === 'request' && l.Authorization === '[redacted]'), 'no redacted Authorization');
  // without --log-prompts, prompts, messages and generated text are redacted
  assert.ok(!srv.log.includes('Lily'), 'a prompt or generated text leaked into the log');
  assert.ok(lines.some((l) => l.event === 'prompt' && /^\[redacted \d+ bytes\]$/.test(l.messages)), 'messages not redacted');
});

test('models.list names the loaded model', async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data.map((m) => m.id), [MODEL_ID]);
  assert.equal(page.data[0].object, 'model');
});

test('completions: golden greedy text, usage, logprobs against the golden logits', async () => {
  const r = await client.completions.create({
    model: MODEL_ID, prompt: golden.prompt, max_tokens: 64, temperature: 0, logprobs: 3,
  });
  const c = r.choices[0];
  assert.equal(r.object, 'text_completion');
  assert.equal(c.text, golden.greedy_text);
  assert.equal(c.finish_reason, 'length');
  assert.deepEqual(r.usage, { prompt_tokens: 16, completion_tokens: 64, total_tokens: 80 });

  // story.greedy.f32: the logits llama.cpp used for each greedy step, [64][n_vocab] f32
  const buf = fs.readFileSync(path.join(GOLDEN_DIR, golden.greedy_logits_file));
  const logits = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const V = golden.n_vocab;
  const lp = c.logprobs;
  assert.equal(lp.tokens.length, 64);
  assert.equal(lp.tokens.join(''), c.text, 'tokens concatenate to the text');
  let off = 0;
  for (let i = 0; i < 64; i++) {
    const row = logits.subarray(i * V, (i + 1) * V);
    let mx = -Infinity;
    for (const x of row) mx = Math.max(mx, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - mx);
    const lse = mx + Math.log(sum);
    const want = row[golden.greedy[i]] - lse;
    assert.ok(Math.abs(lp.token_logprobs[i] - want) < 1e-2, `step ${i}: logprob ${lp.token_logprobs[i]} vs ${want}`);
    const tops = Object.entries(lp.top_logprobs[i]);
    assert.equal(tops.length, 3, `step ${i}: 3 alternatives`);
    assert.equal(tops[0][1], Math.max(...tops.map((t) => t[1])), 'most probable first');
    assert.ok(Math.abs(tops[0][1] - lp.token_logprobs[i]) < 1e-6, 'greedy token is the top alternative');
    assert.equal(lp.text_offset[i], off, `step ${i}: text_offset`);
    off += Buffer.byteLength(lp.tokens[i]);
  }
});

test('completions stream: chunks concatenate to the golden text', async () => {
  const stream = await client.completions.create({
    model: MODEL_ID, prompt: golden.prompt, max_tokens: 64, temperature: 0, stream: true,
  });
  let text = '', last;
  for await (const chunk of stream) { text += chunk.choices[0].text; last = chunk; }
  assert.equal(text, golden.greedy_text);
  assert.equal(last.choices[0].finish_reason, 'length');
  assert.equal(last.usage.completion_tokens, 64);
});

test('chat: plain and streamed replies agree at temperature 0; usage', async () => {
  const { data: plain, response } = await client.chat.completions
    .create({ model: MODEL_ID, messages: CHAT, temperature: 0, max_tokens: 40 })
    .withResponse();
  assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f]+$/);
  assert.equal(plain.object, 'chat.completion');
  const msg = plain.choices[0].message;
  assert.equal(msg.role, 'assistant');
  assert.ok(msg.content.length > 0);
  const u = plain.usage;
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.ok(u.prompt_tokens > 8 && u.completion_tokens > 0 && u.completion_tokens <= 40, JSON.stringify(u));

  const stream = await client.chat.completions.create({
    model: MODEL_ID, messages: CHAT, temperature: 0, max_tokens: 40, stream: true,
    stream_options: { include_usage: true },
  });
  let content = '', role = null, finish = null, usage = null, n = 0;
  for await (const chunk of stream) {   // the iterator must end at data: [DONE]
    n++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    const ch = chunk.choices[0];
    if (ch.delta.role) role = ch.delta.role;
    content += ch.delta.content ?? '';
    if (ch.finish_reason) finish = ch.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(n >= 3, 'a stream of several chunks');
  assert.equal(role, 'assistant');
  assert.equal(content, msg.content, 'streamed deltas concatenate to the plain reply');
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.deepEqual(usage, plain.usage);

  // the wire format the iterator consumed: data: lines ending with [DONE]
  const raw = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: CHAT, temperature: 0, max_tokens: 8, stream: true }),
  });
  const events = (await raw.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  assert.equal(events.at(-1), '[DONE]');
  assert.equal(events.filter((e) => e === '[DONE]').length, 1);
});

test('chat logprobs: top_logprobs, greedy token first, tokens spell the content', async () => {
  const r = await client.chat.completions.create({
    model: MODEL_ID, messages: CHAT, temperature: 0, max_tokens: 24, logprobs: true, top_logprobs: 4,
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  assert.equal(content.map((t) => t.token).join(''), r.choices[0].message.content);
  let p = 0;
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.deepEqual(Buffer.from(t.bytes).toString('utf8'), t.token);
    assert.equal(t.top_logprobs.length, 4);
    assert.equal(t.top_logprobs[0].token, t.token, 'greedy picks the most probable token');
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6);
    for (let k = 1; k < 4; k++) assert.ok(t.top_logprobs[k].logprob <= t.top_logprobs[k - 1].logprob);
    p = t.top_logprobs.reduce((s, x) => s + Math.exp(x.logprob), 0);
    assert.ok(p <= 1 + 1e-4, `top probabilities sum to ${p}`);
  }
  // streamed: the chunks' logprobs together are the same list
  const stream = await client.chat.completions.create({
    model: MODEL_ID, messages: CHAT, temperature: 0, max_tokens: 24, logprobs: true, top_logprobs: 4, stream: true,
  });
  const streamed = [];
  for await (const chunk of stream) streamed.push(...(chunk.choices[0].logprobs?.content ?? []));
  assert.deepEqual(streamed.map((t) => t.token), content.map((t) => t.token));
  assert.deepEqual(streamed.map((t) => t.logprob), content.map((t) => t.logprob));
});

test('unknown model: the client raises NotFoundError with our error shape', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: CHAT, max_tokens: 4 }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${err}`);
      assert.ok(err instanceof OpenAI.NotFoundError);
      assert.equal(err.status, 404);
      assert.equal(err.type, 'not_found_error');
      assert.equal(err.code, 404);
      assert.match(err.error.message, /no-such-model.*\/v1\/models/);
      assert.match(err.requestID ?? err.request_id ?? '', /^[0-9a-f]+$/);
      return true;
    },
  );
  // a bad field is the same kind of error
  await assert.rejects(
    client.completions.create({ model: MODEL_ID, prompt: 'x', max_tokens: -1 }),
    (err) => err instanceof OpenAI.BadRequestError && /max_tokens/.test(err.message),
  );
});
