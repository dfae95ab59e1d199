// harness.mjs — what the browser tests share: real `quarrel serve` processes on loopback,
// Chromium through playwright-core, /metrics parsing, bounded waits, and a tiny sequential
// runner that saves one screenshot per test (pass or fail) and prints a line per test.
// Environment: QUARREL_BIN, QUARREL_SHARED, WEB_MODULES (node_modules holding
// playwright-core), SCREENSHOTS (folder), CHROMIUM (default /usr/bin/chromium).
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = process.env.QUARREL_BIN;
export const MODEL = join(process.env.QUARREL_SHARED, 'models', 'stories260K.gguf');
export const SCREENSHOTS = process.env.SCREENSHOTS;
const { chromium } = createRequire(join(process.env.WEB_MODULES, 'noop.js'))('playwright-core');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Polls fn until it returns a truthy value; throws `what` after ms. */
export async function waitFor(fn, what, ms = 10000, every = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// ---- servers ----

let serial = 0;

/** Starts `quarrel serve` (port 0 = any free one); resolves once it is listening. */
export async function startServer({ port = 0, args = [] } = {}) {
  const log = join(tmpdir(), `quarrel-webui-${process.pid}-${++serial}.log`);
  const fd = openSync(log, 'w');
  const proc = spawn(BIN, ['serve', '-m', MODEL, '--host', '127.0.0.1', '--port', String(port), '-t', '2', ...args], {
    stdio: ['ignore', 'ignore', fd],
  });
  let exit = null;
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve((exit = { code, signal }))));
  const m = await waitFor(() => {
    if (exit) throw new Error(`quarrel serve exited early (${JSON.stringify(exit)}):\n${readFileSync(log, 'utf8')}`);
    return readFileSync(log, 'utf8').match(/listening on (http:\/\/127\.0\.0\.1:(\d+))/);
  }, 'quarrel serve to listen', 60000);
  return {
    url: m[1],
    port: Number(m[2]),
    log,
    proc,
    /** SIGTERM (graceful; must exit 0, so ASan's leak check passed) or SIGKILL. */
    async stop(signal = 'SIGTERM') {
      if (exit) return exit;
      proc.kill(signal);
      const r = await Promise.race([exited, sleep(15000).then(() => null)]);
      if (!r) {
        proc.kill('SIGKILL');
        throw new Error('quarrel serve did not exit within 15 s of SIGTERM');
      }
      if (signal === 'SIGTERM' && r.code !== 0) throw new Error(`quarrel serve exited with ${JSON.stringify(r)}:\n${readFileSync(log, 'utf8').slice(-4000)}`);
      return r;
    },
  };
}

/** /metrics as a Map "name{labels}" -> number. */
export async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)$/);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

// ---- browser ----

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

/**
 * A fresh browser context (empty storage) with the app open at url. `settings` are seeded
 * once per tab into localStorage (as if set in the settings panel earlier), so reloads keep
 * whatever the test changes. Collects page errors and CSP violations into page.problems, and
 * the inference payloads sent over /ws into page.inferences.
 */
export async function openApp(browser, url, { settings, viewport = { width: 1280, height: 800 }, contextOptions = {}, beforeLoad } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true, ...contextOptions });
  if (settings) {
    await context.addInitScript((s) => {
      if (!sessionStorage.getItem('quarrel-test-seeded')) {
        localStorage.setItem('quarrel.settings', s);
        sessionStorage.setItem('quarrel-test-seeded', '1');
      }
    }, JSON.stringify(settings));
  }
  const page = await context.newPage();
  page.problems = [];
  page.inferences = [];   // payloads of the `inference` messages the page sent over /ws
  page.on('websocket', (ws) => ws.on('framesent', (f) => {
    try {
      const m = JSON.parse(f.payload);
      if (m.type === 'inference') page.inferences.push(m.payload);
    } catch { /* not JSON */ }
  }));
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) page.problems.push(`CSP: ${m.text()}`);
  });
  if (beforeLoad) await beforeLoad(page);
  await page.goto(url);
  return { context, page };
}

export async function waitConnected(page, ms = 15000) {
  await page.waitForSelector('#conn-status[data-state="connected"]', { timeout: ms });
}

/** Types text in the message box and presses Enter; returns the new assistant bubble. */
export async function sendPrompt(page, text) {
  const before = await page.locator('.message--assistant').count();
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
  await waitFor(async () => (await page.locator('.message--assistant').count()) > before, 'the assistant bubble', 5000);
  return page.locator('.message--assistant').last();
}

export async function waitReply(bubble, states = ['done'], ms = 30000) {
  await waitFor(async () => states.includes(await bubble.getAttribute('data-state')), `the reply to reach ${states.join('/')}`, ms);
  return (await bubble.locator('.message__content').innerText()).trim();
}

// ---- runner ----

export async function run(tests) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const only = process.env.WEBUI_ONLY?.split(',');   // for debugging: run only these tests
  if (only) tests = tests.filter((t) => only.includes(t.name));
  const t0 = Date.now();
  let failed = 0;
  for (const [i, t] of tests.entries()) {
    const start = Date.now();
    const shot = join(SCREENSHOTS, `${String(i + 1).padStart(2, '0')}-${t.name}.png`);
    const ctx = { pages: [], cleanups: [], skipped: null };
    let error = null;
    try {
      await Promise.race([
        t.fn(ctx),
        sleep(t.timeout ?? 60000).then(() => { throw new Error(`test timed out after ${(t.timeout ?? 60000) / 1000} s`); }),
      ]);
      for (const p of ctx.pages) assert(!p.problems.length, `problems on the page:\n  ${p.problems.join('\n  ')}`);
    } catch (e) {
      error = e;
    }
    const page = ctx.pages.at(-1);
    if (page && !page.isClosed()) await page.screenshot({ path: shot, fullPage: false }).catch(() => {});
    for (const c of ctx.cleanups.reverse()) await c().catch((e) => { error ??= e; });
    const secs = ((Date.now() - start) / 1000).toFixed(1);
    if (error) {
      failed++;
      console.log(`FAIL ${t.name} (${secs} s): ${error.stack ?? error}`);
    } else if (ctx.skipped) {
      console.log(`skip ${t.name} (${secs} s): ${ctx.skipped}`);
    } else {
      console.log(`ok   ${t.name} (${secs} s)`);
    }
  }
  console.log(`webui: ${tests.length - failed}/${tests.length} passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${SCREENSHOTS}`);
  return failed;
}
