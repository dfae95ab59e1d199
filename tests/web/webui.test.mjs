// webui.test.mjs — the browser UI in real Chromium (playwright-core) against real
// `quarrel serve` processes on loopback with stories260K. Run by tests/cli/webui.sh; one
// screenshot per test under SCREENSHOTS. What each test proves is in its name and comment.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assert, BIN, launchBrowser, metrics, openApp, run, sendPrompt, sleep, startServer, waitConnected, waitFor, waitReply,
} from './harness.mjs';

const BASE = { max_tokens: 16, extra: '{"seed": 7}' };                          // short, reproducible replies
const LONG = { max_tokens: 1500, extra: '{"seed": 7, "ignore_eos": true}' };   // runs for many seconds
const noWs = (s) => s.replace(/\s+/g, '');

let server;
let browser;

/** A page on `url` registered with the runner (screenshot, problem check, cleanup). */
async function app(ctx, url = server.url, opts = {}) {
  const { context, page } = await openApp(browser, url, opts);
  ctx.pages.push(page);
  ctx.cleanups.push(() => context.close());
  return page;
}

function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject).end();
  });
}

async function runningIdle(url) {
  await waitFor(async () => {
    const m = await metrics(url);
    return m.get('quarrel_requests_running') === 0 && m.get('quarrel_kv_cache_usage_ratio') === 0;
  }, 'quarrel_requests_running and quarrel_kv_cache_usage_ratio to drop to 0', 5000, 100);
}

async function openSettings(page) {
  await page.click('#settings-button');
  await page.waitForSelector('#settings-dialog[open]');
}

async function closeSettings(page) {
  await page.click('#settings-dialog .dialog__footer .button--primary');
  await page.waitForSelector('#settings-dialog:not([open])', { state: 'attached' });
}

const tests = [
  {
    // The server serves the bundle: CSP and security headers, no-cache index, hashed
    // immutable assets, gzip only when accepted, 304 on a matching ETag, no inline script.
    name: 'serving-headers',
    async fn(ctx) {
      const gz = await get(`${server.url}/`, { 'Accept-Encoding': 'gzip, deflate' });
      assert(gz.status === 200, `GET / -> ${gz.status}`);
      const csp = gz.headers['content-security-policy'] ?? '';
      for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
        "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"]) assert(csp.includes(d), `CSP lacks ${d}: ${csp}`);
      assert(!/unsafe-inline|unsafe-eval/.test(csp), `CSP allows unsafe sources: ${csp}`);
      assert(gz.headers['x-content-type-options'] === 'nosniff', 'no X-Content-Type-Options: nosniff');
      assert(gz.headers['referrer-policy'] === 'no-referrer', 'no Referrer-Policy: no-referrer');
      assert(gz.headers['cache-control'] === 'no-cache', `index Cache-Control: ${gz.headers['cache-control']}`);
      assert(gz.headers['content-encoding'] === 'gzip', 'index not gzipped for a gzip client');
      const plain = await get(`${server.url}/`);
      assert(!plain.headers['content-encoding'], 'gzip sent to a client that did not ask for it');
      const html = plain.body.toString();
      assert(/<meta name="viewport"/.test(html), 'no viewport meta');
      assert(/<link rel="preload" href="\/assets\/app-[0-9a-f]{12}\.css" as="style">/.test(html), 'the CSS is not preloaded');
      assert(!/<script(?![^>]*\bsrc=)[^>]*>/.test(html), 'inline <script> in index.html');
      assert(!/\sstyle=|\son[a-z]+=/.test(html), 'inline style or event handler attribute in index.html');
      for (const tag of ['<header', '<main', '<footer', '<aside', '<dialog']) assert(html.includes(tag), `no ${tag}> element`);
      const js = html.match(/src="(\/assets\/app-[0-9a-f]{12}\.js)"/)[1];
      const a = await get(`${server.url}${js}`, { 'Accept-Encoding': 'gzip' });
      const b = await get(`${server.url}${js}`);
      assert(a.headers['cache-control'] === 'public, max-age=31536000, immutable', `asset Cache-Control: ${a.headers['cache-control']}`);
      assert(a.headers['content-encoding'] === 'gzip' && a.body.length < b.body.length / 2, `gzip ${a.body.length} vs ${b.body.length} bytes`);
      assert(a.headers['content-type'].startsWith('text/javascript'), `JS content type ${a.headers['content-type']}`);
      const again = await get(`${server.url}/`, { 'If-None-Match': gz.headers.etag });
      assert(again.status === 304 && again.body.length === 0, `If-None-Match -> ${again.status}`);
      assert((await get(`${server.url}/assets/app-000000000000.js`)).status === 404, 'unknown asset not 404');
      const page = await app(ctx, server.url, { settings: BASE });
      await waitConnected(page);
      assert(await page.evaluate(() => document.querySelectorAll('script:not([src])').length === 0), 'inline script in the DOM');
    },
  },
  {
    // A prompt streams in: "processing prompt", then a typing indicator and live numbers,
    // and at least two distinct partial texts (each a prefix of the final one) before done.
    name: 'streaming',
    async fn(ctx) {
      const page = await app(ctx, server.url, { settings: { ...BASE, max_tokens: 64 }, contextOptions: { permissions: ['clipboard-read', 'clipboard-write'] } });
      await waitConnected(page);
      await page.evaluate(() => {
        const seen = (window.__seen = { states: new Set(), texts: [], prompt: false, typing: false, live: false });
        new MutationObserver(() => {
          const b = [...document.querySelectorAll('.message--assistant')].at(-1);
          if (!b) return;
          seen.states.add(b.dataset.state);
          const t = b.querySelector('.message__content').textContent;
          if (seen.texts.at(-1) !== t) seen.texts.push(t);
          seen.prompt ||= Boolean(b.querySelector('.message__status--prompt'));
          seen.typing ||= Boolean(b.querySelector('.typing'));
          seen.live ||= b.dataset.state === 'streaming' && /\d+ tokens · [\d.]+ tok\/s/.test(b.querySelector('.message__stats').textContent);
        }).observe(document.getElementById('message-list'), { subtree: true, childList: true, characterData: true, attributes: true });
      });
      const bubble = await sendPrompt(page, 'Once upon a time, a little girl named Lily went to the park with her mom');
      const final = await waitReply(bubble);
      const seen = await page.evaluate(() => ({ ...window.__seen, states: [...window.__seen.states] }));
      const partials = seen.texts.filter((t) => t && noWs(t) !== noWs(final));
      assert(final.length > 20, `final text too short: ${JSON.stringify(final)}`);
      assert(new Set(partials).size >= 2, `fewer than 2 partial states: ${JSON.stringify(partials)}`);
      for (const p of partials) assert(noWs(final).startsWith(noWs(p)), `partial ${JSON.stringify(p)} is not a prefix of the final text`);
      assert(seen.states.includes('pending') && seen.prompt, `no "processing prompt" state (states: ${seen.states})`);
      assert(seen.states.includes('streaming') && seen.typing, 'no typing indicator while streaming');
      assert(seen.live, 'no live token count and tok/s while streaming');
      const stats = await bubble.locator('.message__stats').innerText();
      assert(/\d+ tokens · [\d.]+ tok\/s · [\d.]+ s · prompt \d+ tokens/.test(stats), `final stats: ${stats}`);
      await bubble.locator('.message__action--copy').click();
      const clip = await page.evaluate(() => navigator.clipboard.readText());
      assert(noWs(clip) === noWs(final), 'Copy message did not copy the reply');
    },
  },
  {
    // Stop (button, then Esc after Regenerate) ends the generation; the server frees the
    // slot: no running request and an empty KV cache in /metrics.
    name: 'stop-frees-slot',
    async fn(ctx) {
      const page = await app(ctx, server.url, { settings: LONG });
      await waitConnected(page);
      for (const how of ['button', 'Escape']) {
        const bubble = how === 'button'
          ? await sendPrompt(page, 'Tell me a very long story')
          : (await page.click('.message__action--regenerate'), page.locator('.message--assistant').last());
        await waitFor(async () => (await bubble.locator('.message__content').innerText()).length > 20, 'streamed text', 15000);
        await waitFor(async () => (await metrics(server.url)).get('quarrel_requests_running') === 1, 'the request running on the server', 5000);
        if (how === 'button') await page.click('#stop-button');
        else await page.keyboard.press('Escape');
        await waitReply(bubble, ['stopped'], 5000);
        const stats = await bubble.locator('.message__stats').innerText();
        const n = Number(stats.match(/(\d+) tokens/)[1]);
        assert(n > 0 && n < 1500 && /stopped/.test(stats), `after stop (${how}): ${stats}`);
        await runningIdle(server.url);
        assert(await page.locator('#send-button').isVisible(), 'send button not back after stop');
      }
    },
  },
  {
    // Auto-scroll follows streamed text, stops when the user scrolls up (the "Latest" button
    // appears and the view stays put while text keeps coming), and resumes from "Latest".
    // A scripted /ws streams a line every 40 ms until stopped.
    name: 'auto-scroll',
    async fn(ctx) {
      const page = await app(ctx, server.url, {
        settings: BASE,
        viewport: { width: 900, height: 600 },
        beforeLoad: (p) => p.routeWebSocket(/\/ws$/, (ws) => {
          let timer = null;
          let n = 0;
          ws.onMessage((raw) => {
            const m = JSON.parse(raw);
            if (m.type === 'status') ws.send(JSON.stringify({ type: 'status', payload: { connected: true, state: 'idle' } }));
            if (m.type === 'inference') {
              const id = m.payload.id;
              timer = setInterval(() => ws.send(JSON.stringify({ type: 'inference', payload: { id, token: `Line ${++n} of a long reply.\n\n`, token_id: n, complete: false } })), 40);
              timer.id = id;
            }
            if (m.type === 'stop' && timer) {
              clearInterval(timer);
              ws.send(JSON.stringify({ type: 'inference', payload: { id: timer.id, token: '', token_id: null, complete: true, finish_reason: 'cancelled', tokens_generated: n, tokens_per_sec: 25, usage: { prompt_tokens: 4, completion_tokens: n, total_tokens: n + 4 } } }));
            }
          });
        }),
      });
      await waitConnected(page);
      const bubble = await sendPrompt(page, 'Write a lot');
      const pos = () => page.evaluate(() => { const c = document.getElementById('chat'); return { top: c.scrollTop, gap: c.scrollHeight - c.scrollTop - c.clientHeight, height: c.scrollHeight }; });
      await waitFor(async () => (await pos()).height > 1500, 'the reply to overflow the view', 10000);
      assert((await pos()).gap < 48, 'not following the streamed text');
      await page.mouse.move(450, 300);
      await page.mouse.wheel(0, -500);
      await sleep(300);
      const held = await pos();
      await sleep(600);
      const later = await pos();
      assert(later.height > held.height && Math.abs(later.top - held.top) < 2, `the view moved while the user read back: ${JSON.stringify([held, later])}`);
      assert(await page.isVisible('#jump-latest'), 'no "Latest" button while not following');
      await page.click('#jump-latest');
      await waitFor(async () => (await pos()).gap < 48, 'the view back at the bottom', 3000);
      await sleep(500);
      assert((await pos()).gap < 48, 'not following again after "Latest"');
      await page.keyboard.press('Escape');
      await waitReply(bubble, ['stopped'], 5000);
    },
  },
  {
    // Settings persist across reload, reach the server in the request, and reset to the
    // server defaults (fields left out); custom presets persist and fill the message box.
    name: 'settings-presets',
    async fn(ctx) {
      const page = await app(ctx);
      const sent = page.inferences;
      await waitConnected(page);
      await openSettings(page);
      assert((await page.textContent('#set-temperature-value')).includes('server default'), 'defaults not marked as such');
      await page.fill('#set-temperature', '0.3');
      await page.fill('#set-top_k', '12');
      await page.fill('#set-top_p', '0.5');
      await page.fill('#set-max_tokens', '24');
      await page.fill('#set-system_prompt', 'You are terse.');
      await closeSettings(page);
      await page.reload();
      await waitConnected(page);
      await openSettings(page);
      const values = await page.evaluate(() => ['temperature', 'top_k', 'top_p', 'max_tokens', 'system_prompt'].map((n) => document.getElementById(`set-${n}`).value));
      assert(JSON.stringify(values) === JSON.stringify(['0.3', '12', '0.5', '24', 'You are terse.']), `after reload: ${values}`);
      await closeSettings(page);
      const bubble = await sendPrompt(page, 'Hi');
      await waitReply(bubble);
      const p = sent.at(-1);
      assert(p.temperature === 0.3 && p.top_k === 12 && p.top_p === 0.5 && p.max_tokens === 24, `request fields: ${JSON.stringify(p)}`);
      assert(p.prompt.startsWith('You are terse.'), `system prompt not in the prompt: ${JSON.stringify(p.prompt)}`);
      assert(Number((await bubble.locator('.message__stats').innerText()).match(/(\d+) tokens/)[1]) <= 24, 'max tokens not honoured');

      await openSettings(page);
      await page.click('#settings-reset');
      await page.reload();
      await waitConnected(page);
      await openSettings(page);
      const reset = await page.evaluate(() => ['temperature', 'top_k', 'top_p', 'max_tokens'].map((n) => document.getElementById(`set-${n}`).value));
      assert(JSON.stringify(reset) === JSON.stringify(['0.8', '40', '0.95', '128']), `after reset: ${reset}`);
      // a custom preset
      await page.click('#add-preset');
      await page.fill('#preset-name', 'Haiku');
      await page.fill('#preset-template', 'Write a haiku about {{input}}');
      await page.click('#preset-dialog button[value="save"]');
      await closeSettings(page);
      const third = await sendPrompt(page, 'Hello');
      await waitFor(() => sent.length === 2, 'the request after reset');
      // 128 tokens by default: stop them if still running. The check and the click happen in
      // one page task, because a tiny model may finish between a visibility check and a
      // Playwright click (the stop button is then hidden and the click times out).
      await page.evaluate(() => { const b = document.getElementById('stop-button'); if (!b.hidden) b.click(); });
      await waitReply(third, ['stopped', 'done']);
      const q = sent.at(-1);
      assert(!('temperature' in q) && !('top_k' in q) && !('max_tokens' in q), `reset fields still sent: ${JSON.stringify(q)}`);
      await page.reload();
      await waitConnected(page);
      for (const name of ['Summarize', 'Translate', 'Code', 'Explain', 'Haiku']) {
        assert(await page.locator('#presets .chip', { hasText: name }).count() === 1, `no preset chip ${name}`);
      }
      await page.fill('#composer-input', 'the sea');
      await page.click('#presets .chip:has-text("Haiku")');
      assert(await page.inputValue('#composer-input') === 'Write a haiku about the sea', 'custom preset did not fill the box');
      await page.click('#presets .chip:has-text("Summarize")');
      assert((await page.inputValue('#composer-input')).startsWith('Summarize the following text'), 'built-in preset did not fill the box');
    },
  },
  {
    // History: conversations survive reload; open, rename, search, export (JSON parses to the
    // conversations, Markdown has them), import JSON, delete and clear all.
    name: 'history-export',
    timeout: 60000,
    async fn(ctx) {
      const page = await app(ctx, server.url, { settings: BASE });
      await waitConnected(page);
      const first = await waitReply(await sendPrompt(page, 'The moon is bright'));
      await page.click('#history-list .history__item--active button[aria-label^="Rename"]');
      await page.fill('#history-list .history__rename', 'Moon talk');
      await page.press('#history-list .history__rename', 'Enter');
      await waitFor(async () => (await page.textContent('#conversation-title')) === 'Moon talk', 'the renamed title');
      await page.click('#new-chat');
      await waitReply(await sendPrompt(page, 'A red fox'));
      await page.reload();
      await waitConnected(page);
      assert(await page.locator('#history-list .history__item').count() === 2, 'history lost on reload');
      assert((await page.locator('.message--user').innerText()).includes('A red fox'), 'open conversation lost on reload');
      await page.click('#history-list .history__open:has-text("Moon talk")');
      await waitFor(async () => (await page.locator('.message--user').first().innerText()).includes('The moon is bright'), 'the old conversation');
      assert(noWs(await page.locator('.message--assistant .message__content').innerText()) === noWs(first), 'reply text changed across reload');
      await page.fill('#history-search', 'fox');
      await waitFor(async () => (await page.locator('#history-list .history__item').count()) === 1, 'search to filter');
      await page.fill('#history-search', '');

      const download = async (sel) => {
        const [dl] = await Promise.all([page.waitForEvent('download'), page.click(sel)]);
        return readFileSync(await dl.path(), 'utf8');
      };
      const json = JSON.parse(await download('#export-all-json'));
      assert(json.format === 'quarrel.conversations' && json.version === 1 && json.conversations.length === 2, 'JSON export shape');
      const moon = json.conversations.find((c) => c.title === 'Moon talk');
      assert(moon && moon.messages[0].role === 'user' && moon.messages[0].content === 'The moon is bright' && moon.messages[1].role === 'assistant', 'JSON export content');
      const md = await download('#export-all-md');
      for (const s of ['# Moon talk', '## User', 'The moon is bright', '## Assistant', 'A red fox']) assert(md.includes(s), `Markdown export lacks ${s}`);
      const one = await download('#history-list .history__item--active button[aria-label$="as Markdown"]');
      assert(one.startsWith('# Moon talk') && !one.includes('A red fox'), 'single Markdown export');

      await page.setInputFiles('#import-file', { name: 'chats.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(json)) });
      await waitFor(async () => (await page.locator('#history-list .history__item').count()) === 4, 'imported conversations listed');
      await page.click('#history-list .history__item >> nth=0 >> button[aria-label^="Delete"]');
      await page.click('#confirm-ok');
      await waitFor(async () => (await page.locator('#history-list .history__item').count()) === 3, 'deletion');
      await page.click('#clear-all');
      await page.click('#confirm-ok');
      await waitFor(async () => (await page.locator('#history-list .history__item').count()) === 0, 'clear all');
      assert(await page.isVisible('#history-empty') && await page.isVisible('#chat-empty'), 'empty states after clear all');
    },
  },
  {
    // Regenerate replaces the reply; edit-and-resend changes the user message, drops what
    // followed and asks again with the new text.
    name: 'regenerate-edit-resend',
    async fn(ctx) {
      const page = await app(ctx, server.url, { settings: BASE });
      const sent = page.inferences;
      await waitConnected(page);
      await waitReply(await sendPrompt(page, 'A small boat'));
      const firstId = await page.locator('.message--assistant').getAttribute('data-id');
      await page.click('.message__action--regenerate');
      await waitFor(async () => (await page.locator('.message--assistant').getAttribute('data-id')) !== firstId, 'a new reply');
      await waitReply(page.locator('.message--assistant').last());
      assert(await page.locator('.message').count() === 2 && sent.length === 2, 'regenerate did not replace the reply');
      await page.click('.message--user .message__action--edit');
      await page.fill('.message--user .message__editor-input', 'A big ship');
      await page.click('.message--user .message__editor-save');
      await waitFor(() => sent.length === 3, 'the resent request');
      await waitReply(page.locator('.message--assistant').last());
      assert(await page.locator('.message').count() === 2, 'edit-and-resend did not drop the old reply');
      assert((await page.locator('.message--user .message__content').innerText()) === 'A big ship', 'user message not edited');
      assert(sent[2].prompt.includes('A big ship') && !sent[2].prompt.includes('A small boat'), `resent prompt: ${sent[2].prompt}`);
    },
  },
  {
    // The sidebar's models from /api/models (here a two-model list as the registry will send
    // it, in front of the real server): status, parameters, quantization, context, memory;
    // choosing one applies it to the conversation (sent as `model`, kept across reload).
    name: 'models-sidebar',
    async fn(ctx) {
      const list = [
        { name: 'stories260K.gguf', path: '/m/stories260K.gguf', architecture: 'llama', parameters: 260000, quantization: 'F32', context_length: 512, loaded: true, memory_bytes: 1185376 },
        { name: 'tinyllama-Q4_K_M', path: '/m/tinyllama.gguf', architecture: 'llama', parameters: 1100000000, quantization: 'Q4_K_M', context_length: 2048, loaded: false, memory_bytes: 0 },
      ];
      const page = await app(ctx, server.url, {
        settings: BASE,
        beforeLoad: (p) => p.route(/\/api\/models$/, (route) => route.fulfill({ contentType: 'application/json', body: JSON.stringify({ models: list }) })),
      });
      const sent = page.inferences;
      await waitConnected(page);
      await waitFor(async () => (await page.locator('#model-list .model').count()) === 2, 'two models listed');
      const first = await page.locator('#model-list .model').nth(0).innerText();
      const second = await page.locator('#model-list .model').nth(1).innerText();
      assert(/loaded/i.test(first) && first.includes('llama · 260K params · F32 · ctx 512 · 1.1 MiB'), `first model: ${first}`);
      assert(/unloaded/i.test(second) && second.includes('1.1B params · Q4_K_M · ctx 2.0K'), `second model: ${second}`);
      await page.click('#model-list .model >> nth=1');
      assert(await page.getAttribute('#model-list .model >> nth=1', 'aria-pressed') === 'true', 'choice not shown');
      assert((await page.textContent('#composer-model')).includes('tinyllama-Q4_K_M'), 'composer does not name the model');
      await page.click('#model-list .model >> nth=0');
      await waitReply(await sendPrompt(page, 'Which model?'));
      assert(sent.at(-1).model === 'stories260K.gguf', `model not sent: ${JSON.stringify(sent.at(-1))}`);
      await page.reload();
      await waitConnected(page);
      await waitFor(async () => (await page.getAttribute('#model-list .model >> nth=0', 'aria-pressed')) === 'true', 'the choice kept across reload');
    },
  },
  {
    // The theme follows the system, the toggle switches it (and persists), "system" follows
    // live changes.
    name: 'theme-toggle',
    async fn(ctx) {
      const page = await app(ctx, server.url, { settings: BASE, contextOptions: { colorScheme: 'light' } });
      await waitConnected(page);
      const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const theme = () => page.evaluate(() => document.documentElement.dataset.theme);
      assert(await theme() === 'light', 'not light under a light system');
      const light = await bg();
      await page.click('#theme-toggle');
      assert(await theme() === 'dark', 'toggle did not switch to dark');
      await waitFor(async () => (await bg()) === 'rgb(15, 17, 21)', 'the dark background (after the transition)', 3000);
      assert(light !== await bg(), 'background did not change');
      assert((await page.getAttribute('#theme-toggle', 'aria-label')).includes('light'), 'toggle label not updated');
      await page.reload();
      await waitConnected(page);
      assert(await theme() === 'dark', 'theme not kept across reload');
      await openSettings(page);
      await page.selectOption('#set-theme', 'system');
      assert(await theme() === 'light', '"system" did not follow the light system');
      await page.emulateMedia({ colorScheme: 'dark' });
      await waitFor(async () => (await theme()) === 'dark', '"system" to follow a dark system');
      await closeSettings(page);
      await waitReply(await sendPrompt(page, 'Dark mode'));
    },
  },
  {
    // A phone (390×844): the sidebar is a closed drawer, nothing overflows sideways, the
    // drawer opens and closes, and chat works by touch; landscape fits too.
    name: 'mobile-390x844',
    async fn(ctx) {
      const page = await app(ctx, server.url, {
        settings: BASE,
        viewport: { width: 390, height: 844 },
        contextOptions: { isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
      });
      await waitConnected(page);
      const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(!(await page.isVisible('#sidebar')), 'sidebar visible on a phone');
      assert(await page.getAttribute('#sidebar-toggle', 'aria-expanded') === 'false', 'toggle says expanded');
      assert(await overflow() <= 0, 'horizontal overflow');
      const send = await page.locator('#send-button').boundingBox();
      assert(send.width >= 44 && send.height >= 44 && send.y + send.height <= 844, `send button ${JSON.stringify(send)}`);
      await page.tap('#sidebar-toggle');
      await waitFor(() => page.isVisible('#sidebar .model'), 'the drawer with models', 3000);
      assert(await page.isVisible('#sidebar-backdrop'), 'no backdrop behind the drawer');
      await page.tap('#sidebar .model');
      await waitFor(async () => !(await page.isVisible('#sidebar')), 'the drawer to close after choosing a model', 3000);
      await page.fill('#composer-input', 'Once upon a time');
      await page.tap('#send-button');
      const text = await waitReply(page.locator('.message--assistant').last());
      assert(text.length > 0, 'no reply on mobile');
      await page.setViewportSize({ width: 844, height: 390 });
      await sleep(100);
      assert(await overflow() <= 0, 'horizontal overflow in landscape');
      assert(await page.isVisible('#composer-input'), 'message box hidden in landscape');
      await page.setViewportSize({ width: 390, height: 844 });
      await sleep(300);
    },
  },
  {
    // Markdown is sanitized: <script>, on* handlers, javascript: links and frames from an
    // edited reply, and from a streamed reply (a scripted /ws using the seed protocol, the
    // payload split across tokens) render inert and visible as text; code is highlighted.
    name: 'markdown-xss-inert',
    async fn(ctx) {
      const payload = [
        'Safe **bold** text.',
        '',
        "<script>window.__xss = 'script'</script>",
        '<img src="x" onerror="window.__xss = \'img\'">',
        '<svg onload="window.__xss = \'svg\'"></svg>',
        "[link](javascript:window.__xss='link')",
        '![pic](x" onerror="window.__xss=\'attr\')',
        '<a href="javascript:window.__xss=\'a\'">a</a> <iframe src="javascript:window.__xss=\'iframe\'"></iframe>',
        '',
        '```js',
        'const answer = 42; // highlighted',
        '```',
      ].join('\n');
      const inert = async (page, bubble) => {
        await sleep(300);
        const r = await bubble.evaluate((b) => {
          const c = b.querySelector('.message__content');
          const all = [...c.querySelectorAll('*')];
          return {
            xss: window.__xss ?? null,
            bad: all.filter((e) => e.matches('script, iframe, svg, object, embed, form') && !e.closest('.code-block__header')).length,
            handlers: all.filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
            jsLinks: all.filter((e) => /^\s*javascript:/i.test(e.getAttribute('href') ?? e.getAttribute('src') ?? '')).length,
            bold: c.querySelector('strong')?.textContent,
            keyword: c.querySelector('.code-block .hljs-keyword')?.textContent,
            text: c.innerText,
          };
        });
        assert(r.xss === null, `script ran: window.__xss = ${r.xss}`);
        assert(r.bad === 0 && r.handlers === 0 && r.jsLinks === 0, `active content survived: ${JSON.stringify(r)}`);
        assert(r.bold === 'bold' && r.keyword === 'const', `markdown/highlighting missing: ${JSON.stringify(r)}`);
        assert(r.text.includes("<script>window.__xss = 'script'</script>"), 'raw HTML not shown as text');
      };
      // 1. an edited reply
      const page = await app(ctx, server.url, { settings: BASE, contextOptions: { permissions: ['clipboard-read', 'clipboard-write'] } });
      await waitConnected(page);
      const bubble = await sendPrompt(page, 'Hello');
      await waitReply(bubble);
      await bubble.locator('.message__action--edit').click();
      await bubble.locator('.message__editor-input').fill(payload);
      await bubble.locator('.message__editor-save').click();
      await inert(page, bubble);
      assert((await bubble.locator('.message__stats').innerText()).includes('edited'), 'edit not marked');
      await bubble.locator('.code-block__copy').click();
      assert(await page.evaluate(() => navigator.clipboard.readText()) === 'const answer = 42; // highlighted', 'copy code');
      // 2. the same payload streamed token by token by a scripted server
      const mock = await app(ctx, server.url, {
        settings: BASE,
        beforeLoad: (p) => p.routeWebSocket(/\/ws$/, (ws) => ws.onMessage((raw) => {
          const m = JSON.parse(raw);
          if (m.type === 'status') ws.send(JSON.stringify({ type: 'status', payload: { connected: true, models: ['mock'], state: 'idle' } }));
          if (m.type !== 'inference') return;
          const id = m.payload.id;
          const pieces = payload.match(/[\s\S]{1,7}/g);
          pieces.forEach((token, i) => ws.send(JSON.stringify({ type: 'inference', payload: { id, token, token_id: i, stream: true, complete: false, tokens_per_sec: 10 } })));
          ws.send(JSON.stringify({ type: 'inference', payload: { id, token: '', token_id: null, stream: true, complete: true, finish_reason: 'stop', tokens_generated: pieces.length, tokens_per_sec: 10, usage: { prompt_tokens: 3, completion_tokens: pieces.length, total_tokens: pieces.length + 3 } } }));
        })),
      });
      await waitConnected(mock);
      const streamed = await sendPrompt(mock, 'Hello');
      await waitReply(streamed);
      await inert(mock, streamed);
      const stats = await streamed.locator('.message__stats').innerText();
      assert(stats.includes(`prompt 3 tokens`), `seed-protocol summary not shown: ${stats}`);
    },
  },
  {
    // Accessibility: every control has a name, the log is aria-live, Enter sends and
    // Shift+Enter adds a line, keyboard focus is visible, Esc closes a dialog.
    name: 'accessibility-keyboard',
    async fn(ctx) {
      const page = await app(ctx, server.url, { settings: BASE });
      await waitConnected(page);
      await waitReply(await sendPrompt(page, 'Hi'));
      const unnamed = await page.evaluate(() => {
        const name = (el) => (el.getAttribute('aria-label') || (el.getAttribute('aria-labelledby') && document.getElementById(el.getAttribute('aria-labelledby'))?.textContent)
          || [...(el.labels ?? [])].map((l) => l.textContent).join(' ') || (['BUTTON', 'A'].includes(el.tagName) && el.textContent) || el.getAttribute('title') || '').trim();
        return [...document.querySelectorAll('button, input, select, textarea, a[href], [role="button"]')].filter((el) => !name(el)).map((el) => el.outerHTML.slice(0, 120));
      });
      assert(unnamed.length === 0, `controls without an accessible name:\n${unnamed.join('\n')}`);
      const log = await page.evaluate(() => { const l = document.getElementById('message-list'); return `${l.getAttribute('role')} ${l.getAttribute('aria-live')}`; });
      assert(log === 'log polite', `message list: ${log}`);
      assert(await page.getAttribute('#conn-status', 'role') === 'status', 'connection state not a status region');
      const before = await page.locator('.message').count();
      await page.focus('#composer-input');
      await page.keyboard.type('line one');
      await page.keyboard.press('Shift+Enter');
      await page.keyboard.type('line two');
      assert(await page.inputValue('#composer-input') === 'line one\nline two' && await page.locator('.message').count() === before, 'Shift+Enter sent or lost the line');
      await page.keyboard.press('Enter');
      await waitReply(page.locator('.message--assistant').last());
      assert((await page.locator('.message--user .message__content').last().innerText()) === 'line one\nline two', 'Enter did not send both lines');
      await page.focus('#composer-input');
      await page.keyboard.press('Shift+Tab');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      const ring = await page.evaluate(() => ({ id: document.activeElement.id, outline: getComputedStyle(document.activeElement).outlineStyle }));
      assert(ring.id === 'send-button' && ring.outline !== 'none', `keyboard focus not visible: ${JSON.stringify(ring)}`);
      await openSettings(page);
      await page.keyboard.press('Escape');
      await page.waitForSelector('#settings-dialog:not([open])', { state: 'attached', timeout: 2000 });
    },
  },
  {
    // WebSockets blocked (the constructor fails like a proxy refusing the upgrade): the UI
    // falls back to SSE (/api/stream), chats, and Stop there frees the slot too.
    name: 'sse-fallback',
    async fn(ctx) {
      const page = await app(ctx, server.url, {
        settings: LONG,
        beforeLoad: (p) => p.addInitScript(() => {
          class BlockedSocket extends EventTarget {
            static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
            readyState = 0;
            constructor(url) {
              super();
              this.url = url;
              setTimeout(() => {
                this.readyState = 3;
                this.onerror?.(new Event('error'));
                this.onclose?.(new CloseEvent('close', { code: 1006 }));
              }, 20);
            }
            send() { throw new DOMException('blocked', 'InvalidStateError'); }
            close() {}
          }
          window.WebSocket = BlockedSocket;
        }),
      });
      const streams = [];
      page.on('request', (r) => { if (r.url().endsWith('/api/stream')) streams.push(r); });
      await waitConnected(page, 20000);
      assert((await page.textContent('#conn-label')).includes('SSE'), 'the badge does not say SSE');
      const bubble = await sendPrompt(page, 'Once upon a time');
      await waitFor(async () => (await bubble.locator('.message__content').innerText()).length > 20, 'text streamed over SSE', 15000);
      assert(streams.length === 1 && streams[0].method() === 'POST', 'no POST /api/stream');
      await page.click('#stop-button');
      await waitReply(bubble, ['stopped'], 5000);
      await runningIdle(server.url);
    },
  },
  {
    // The server is killed (SIGKILL) and restarted on the same port: the UI shows
    // disconnected with inputs disabled, reconnects by itself (backoff) and chats again.
    name: 'reconnect-after-restart',
    timeout: 90000,
    async fn(ctx) {
      let s = await startServer();
      ctx.cleanups.push(() => s.stop('SIGKILL'));
      const page = await app(ctx, s.url, { settings: BASE });
      await waitConnected(page);
      await waitReply(await sendPrompt(page, 'Before the restart'));
      await s.stop('SIGKILL');
      await page.waitForSelector('#conn-status[data-state="disconnected"]', { timeout: 10000 });
      assert(await page.isDisabled('#composer-input') && await page.isDisabled('#send-button'), 'inputs enabled while disconnected');
      // after a failed attempt against the closed port a countdown shows; between attempts
      // the text says "connecting", so wait for it rather than sample it once
      await page.waitForFunction(() => /retry in \d+ s/.test(document.querySelector('#conn-retry')?.textContent || ''),
        null, { timeout: 10000 }).catch(() => { throw new Error('no retry countdown while disconnected'); });
      const t0 = Date.now();
      for (let tries = 0; ; tries++) {   // the port may linger briefly
        try {
          s = await startServer({ port: s.port });
          break;
        } catch (e) {
          if (tries >= 10) throw e;
          await sleep(300);
        }
      }
      await waitConnected(page, 20000);
      console.log(`     reconnected ${((Date.now() - t0) / 1000).toFixed(1)} s after the restart began`);
      const text = await waitReply(await sendPrompt(page, 'After the restart'));
      assert(text.length > 0, 'no reply after reconnecting');
      await s.stop();
    },
  },
  {
    // Heartbeat: a WebSocket that stays open but goes silent is declared dead (after 2.5
    // heartbeats; ?heartbeat_ms shortens them) and replaced by a new connection, which
    // then gets a `status` heartbeat every period.
    name: 'heartbeat-dead-link',
    async fn(ctx) {
      const conns = [];
      const page = await app(ctx, `${server.url}/?heartbeat_ms=400`, {
        settings: BASE,
        beforeLoad: (p) => p.routeWebSocket(/\/ws$/, (ws) => {
          const c = { statuses: 0 };
          conns.push(c);
          ws.onMessage((raw) => {
            if (JSON.parse(raw).type !== 'status') return;
            c.statuses++;
            // the first connection answers once, then hangs without closing
            if (conns.length > 1 || c.statuses === 1) ws.send(JSON.stringify({ type: 'status', payload: { connected: true, state: 'idle' } }));
          });
        }),
      });
      await waitConnected(page);
      await page.evaluate(() => {
        const badge = document.getElementById('conn-status');
        window.__states = [];
        new MutationObserver(() => window.__states.push(badge.dataset.state)).observe(badge, { attributes: true, attributeFilter: ['data-state'] });
      });
      await waitFor(() => conns.length === 2, 'a second connection', 8000);
      const states = await page.evaluate(() => window.__states);
      assert(states[0] === 'disconnected', `the silent link was not shown as disconnected first: ${states}`);
      await waitConnected(page, 5000);
      const n = conns[1].statuses;
      await sleep(1300);
      assert(conns[1].statuses >= n + 2, `heartbeats on the new connection: ${n} -> ${conns[1].statuses} in 1.3 s`);
      assert(await page.getAttribute('#conn-status', 'data-state') === 'connected', 'a live connection was dropped');
    },
  },
  {
    // The UI side of API keys, against the planned server behaviour emulated in front of
    // the real server: /api and /v1 answer 401 without `Authorization: Bearer KEY`, and /ws
    // answers UNAUTHORIZED and closes unless the first message is {"type":"auth"} with it.
    // The key dialog (with its risk note) opens, a wrong key is refused, the right one
    // works over HTTP and WebSocket, a remembered key survives reload, a forgotten one not.
    name: 'api-key-emulated',
    async fn(ctx) {
      const KEY = 'qk_emulated_key_for_the_browser_test';
      const page = await app(ctx, server.url, {
        settings: BASE,
        beforeLoad: async (p) => {
          await p.route(/\/(api|v1)\//, (route) => (route.request().headers().authorization === `Bearer ${KEY}`
            ? route.continue()
            : route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ error: { message: 'a valid API key is required', type: 'authentication_error', code: 401 } }) })));
          await p.routeWebSocket(/\/ws$/, (ws) => {
            const upstream = ws.connectToServer();
            let authed = false;
            ws.onMessage((raw) => {
              const m = JSON.parse(raw);
              if (authed) upstream.send(raw);
              else if (m.type === 'auth' && m.payload?.api_key === KEY) authed = true;
              else {
                ws.send(JSON.stringify({ type: 'error', payload: { code: 'UNAUTHORIZED', message: 'a valid API key is required', request_id: null } }));
                ws.close({ code: 1008, reason: 'unauthorized' });
              }
            });
          });
        },
      });
      await page.waitForSelector('#key-dialog[open]', { timeout: 10000 });
      assert(await page.getAttribute('#conn-status', 'data-state') === 'disconnected', 'not disconnected without a key');
      assert((await page.textContent('#key-risk')).includes('localStorage'), 'no risk note');
      await page.fill('#key-input', 'qk_wrong');
      await page.click('#key-save');
      await waitFor(async () => (await page.textContent('#key-reason')).includes('refused'), 'the wrong key to be refused', 10000);
      assert(await page.isVisible('#key-dialog'), 'dialog did not come back for a wrong key');
      await page.fill('#key-input', KEY);
      await page.click('#key-save');
      await waitConnected(page);
      await waitFor(() => page.isVisible('#model-list .model'), 'the model list (HTTP with the key)', 5000);
      await waitReply(await sendPrompt(page, 'With a key'));
      assert(await page.evaluate(() => localStorage.getItem('quarrel.apiKey')) === JSON.stringify(KEY), 'key not remembered');
      await page.reload();
      await waitConnected(page);
      assert(!(await page.isVisible('#key-dialog')), 'the remembered key was not used after reload');
      // not remembered: gone after reload
      await page.click('#key-button');
      await page.uncheck('#key-remember');
      await page.click('#key-save');
      await waitConnected(page);
      assert(await page.evaluate(() => localStorage.getItem('quarrel.apiKey')) === null, 'an unremembered key was stored');
      await page.reload();
      await page.waitForSelector('#key-dialog[open]', { timeout: 10000 });
    },
  },
  {
    // API keys on: the UI asks for a key (with the localStorage risk note), refuses a wrong
    // one, works with the right one, and remembers it. Needs `quarrel serve --keys-file`.
    name: 'api-key',
    timeout: 60000,
    async fn(ctx) {
      const help = spawnSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
      if (!`${help.stdout}${help.stderr}`.includes('--keys-file')) {
        ctx.skipped = 'NOTE: `quarrel serve` has no --keys-file option yet (API-key auth is not merged); this check runs once it is';
        return;
      }
      const dir = mkdtempSync(join(tmpdir(), 'quarrel-webui-keys-'));
      const file = join(dir, 'keys.json');
      const made = spawnSync(BIN, ['keys', 'create', '--name', 'webui', '--keys-file', file], { encoding: 'utf8' });
      assert(made.status === 0, `quarrel keys create failed: ${made.stderr}`);
      const key = made.stdout.trim().split('\n').at(-1).trim();   // the secret is printed alone on stdout
      assert(key, `no key in: ${made.stdout}`);
      const s = await startServer({ args: ['--keys-file', file] });
      ctx.cleanups.push(() => s.stop());
      const page = await app(ctx, s.url, { settings: BASE });
      await page.waitForSelector('#key-dialog[open]', { timeout: 15000 });
      assert((await page.textContent('#key-risk')).includes('localStorage'), 'no risk note');
      await page.fill('#key-input', 'qk_this_key_is_wrong_0000000000');
      await page.click('#key-save');
      await page.waitForSelector('#key-dialog[open]', { timeout: 15000 });
      assert((await page.textContent('#key-reason')).includes('refused'), 'a wrong key was not reported');
      await page.fill('#key-input', key);
      await page.click('#key-save');
      await waitConnected(page, 15000);
      await waitReply(await sendPrompt(page, 'With a key'));
      await page.reload();
      await waitConnected(page, 15000);
      assert(!(await page.isVisible('#key-dialog')), 'the remembered key was not used');
    },
  },
];

server = await startServer();
browser = await launchBrowser();
let failed = 1;
try {
  failed = await run(tests);
} finally {
  await browser.close();
  await server.stop().catch((e) => {
    console.log(`FAIL server shutdown: ${e.message}`);
    failed++;
  });
}
process.exit(failed ? 1 : 0);
