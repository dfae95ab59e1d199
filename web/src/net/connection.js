// connection.js — the link to the server, as a state machine shown in the header:
//
//   disconnected --connect()--> connecting --ready--> connected <--> generating
//        ^                          |                     |
//        +------ backoff timer -----+---- close / dead ---+
//
// "ready" means the server answered: over WebSocket the reply to our first `status`
// message (sent after the `auth` message when a key is set), over SSE a 2xx from
// /api/health. Reconnection waits backoffDelay(attempt) (exponential, jittered), and
// happens at once when the browser comes back online or the tab becomes visible.
// Heartbeat: every heartbeatMs a `status` message (or, over SSE, a health probe); a
// WebSocket silent for deadMs is declared dead and replaced.
// WebSocket blocked (the upgrade fails twice while plain HTTP to the same server works,
// e.g. behind a proxy): the connection switches to SSE for the rest of the page's life.
// An UNAUTHORIZED error or a 401 pauses reconnection until a key is given (resume()).
//
// Generations: generate(id, params, onEvent) sends one; its events (protocol.js) go to
// onEvent until its done/error. Several may run at once over the seed protocol; the first
// server dialect has no ids, so its events go to the only generation running.
import { Emitter } from '../lib/emitter.js';
import { getApiKey } from '../store/api-key.js';
import { backoffDelay } from './backoff.js';
import { apiFetch, authEvents, HttpError } from './http.js';
import { parseWsMessage, wsAuth, wsInference, wsStatus, wsStop } from './protocol.js';
import { sseGenerate } from './sse-transport.js';

export class Connection extends Emitter {
  state = 'disconnected';
  transport = 'ws';            // 'ws' | 'sse'

  #opts;
  #ws = null;
  #ready = false;
  #attempt = 0;
  #retryTimer = null;
  #heartbeatTimer = null;
  #lastSeen = 0;
  #wsBlockedCount = 0;
  #paused = false;
  #retryAt = 0;                // Date.now() of the next attempt while disconnected
  #gens = new Map();           // id -> {onEvent, abort?, stopTimer?}

  constructor({ wsUrl, heartbeatMs = 10000, deadMs = 25000, readyTimeoutMs = 8000, backoff = {} }) {
    super();
    this.#opts = { wsUrl, heartbeatMs, deadMs, readyTimeoutMs, backoff };
    authEvents.on('unauthorized', () => this.#unauthorized());
  }

  start() {
    window.addEventListener('online', () => this.reconnectNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.state === 'disconnected') this.reconnectNow();
    });
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), this.#opts.heartbeatMs);
    this.#connect();
  }

  /** After a new API key: forget the pause and connect again from scratch. */
  resume() {
    this.#paused = false;
    this.#closeWs();
    if (this.#ready) {
      this.#ready = false;
      this.#failAll('CONNECTION_LOST', 'reconnecting with the new API key');
    }
    this.#attempt = 0;
    this.#connect();
  }

  reconnectNow() {
    if (this.#paused || this.#ready) return;
    this.#attempt = 0;
    this.#connect();
  }

  get ready() {
    return this.#ready;
  }

  get nextRetryAt() {
    return this.#retryAt;
  }

  // ---- generations ----

  /** Starts a generation; throws if not connected. */
  generate(id, params, onEvent) {
    if (!this.#ready) throw new Error('not connected');
    const gen = { onEvent };
    this.#gens.set(id, gen);
    if (this.transport === 'ws') {
      this.#ws.send(wsInference(id, params));
    } else {
      gen.abort = new AbortController();
      sseGenerate(params, { id, signal: gen.abort.signal, onEvent: (ev) => this.#route(ev) }).catch((e) => {
        if (!this.#gens.has(id)) return;
        if (gen.abort.signal.aborted) this.#route({ kind: 'done', id, finishReason: 'cancelled' });
        else if (e instanceof HttpError) this.#route({ kind: 'error', id, code: e.status === 401 ? 'UNAUTHORIZED' : `HTTP_${e.status}`, message: e.message });
        else {
          this.#route({ kind: 'error', id, code: 'CONNECTION_LOST', message: 'the connection was lost' });
          this.#lost();
        }
      });
    }
    this.#refreshState();
  }

  /** Asks the server to stop generation `id`; its done event (finish "cancelled") follows. */
  stop(id) {
    const gen = this.#gens.get(id);
    if (!gen) return;
    if (this.transport === 'sse') gen.abort?.abort();
    else if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(wsStop(id));
    // a server that never answers must not leave the UI generating forever
    gen.stopTimer ??= setTimeout(() => this.#route({ kind: 'done', id, finishReason: 'cancelled' }), 3000);
  }

  get activeCount() {
    return this.#gens.size;
  }

  // ---- state ----

  #setState(s) {
    if (s === this.state) return;
    this.state = s;
    this.emit('state', s);
  }

  #refreshState() {
    if (this.#ready) this.#setState(this.#gens.size ? 'generating' : 'connected');
  }

  #becameReady() {
    this.#ready = true;
    this.#attempt = 0;
    this.#lastSeen = Date.now();
    this.#refreshState();
    this.emit('ready', this.transport);
  }

  #scheduleRetry() {
    clearTimeout(this.#retryTimer);
    if (this.#paused) return;
    const delay = backoffDelay(this.#attempt++, this.#opts.backoff);
    this.#retryAt = Date.now() + delay;
    this.emit('retry', delay);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #lost() {
    this.#ready = false;
    this.#failAll('CONNECTION_LOST', 'the connection to the server was lost');
    this.#setState('disconnected');
    this.#scheduleRetry();
  }

  #failAll(code, message) {
    for (const id of [...this.#gens.keys()]) this.#route({ kind: 'error', id, code, message });
  }

  #unauthorized() {
    if (this.#paused) return;
    this.#paused = true;
    clearTimeout(this.#retryTimer);
    this.#failAll('UNAUTHORIZED', 'the server needs a valid API key');
    this.#ready = false;
    this.#closeWs();
    this.#setState('disconnected');
    this.emit('unauthorized');
  }

  #connect() {
    clearTimeout(this.#retryTimer);
    if (this.#paused || this.#ready) return;
    this.#setState('connecting');
    if (this.transport === 'sse') this.#probeHttp();
    else this.#openWs();
  }

  // ---- SSE mode: readiness and heartbeat are health probes ----

  async #probeHttp() {
    try {
      await apiFetch('/api/health');
      if (!this.#ready) this.#becameReady();
    } catch (e) {
      if (e instanceof HttpError && e.status === 401) return;   // #unauthorized took over
      if (this.#ready) this.#lost();
      else {
        this.#setState('disconnected');
        this.#scheduleRetry();
      }
    }
  }

  // ---- WebSocket mode ----

  #openWs() {
    this.#closeWs();
    let ws;
    try {
      ws = new WebSocket(this.#opts.wsUrl);
    } catch {
      this.#wsFailed(false);
      return;
    }
    this.#ws = ws;
    let opened = false;
    const readyTimer = setTimeout(() => {
      if (this.#ws === ws && !this.#ready) ws.close();
    }, this.#opts.readyTimeoutMs);
    ws.onopen = () => {
      opened = true;
      const key = getApiKey();
      if (key) ws.send(wsAuth(key));
      ws.send(wsStatus());
    };
    ws.onmessage = (e) => {
      if (this.#ws !== ws) return;
      this.#lastSeen = Date.now();
      for (const ev of parseWsMessage(e.data)) {
        if (ev.kind === 'error' && ev.code === 'UNAUTHORIZED') {
          this.#unauthorized();
          return;
        }
        // before the status reply, other errors are the server not knowing `auth` (no keys)
        if (!this.#ready && ev.kind === 'error') continue;
        if (!this.#ready) {
          clearTimeout(readyTimer);
          this.#wsBlockedCount = 0;
          this.#becameReady();
        }
        this.#route(ev);
      }
    };
    ws.onclose = () => {
      clearTimeout(readyTimer);
      if (this.#ws !== ws) return;
      this.#ws = null;
      if (this.#ready) this.#lost();
      else this.#wsFailed(opened);
    };
  }

  #closeWs() {
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close();
      } catch {
        /* already closed */
      }
    }
  }

  /** The WebSocket never became ready: a server that is down, or WebSockets blocked. */
  async #wsFailed(opened) {
    this.#setState('disconnected');
    if (!opened && !this.#paused) {
      let httpWorks = false;
      try {
        await apiFetch('/api/health');
        httpWorks = true;
      } catch (e) {
        if (e instanceof HttpError && e.status !== 401) httpWorks = true;   // the server answers HTTP
        if (e instanceof HttpError && e.status === 401) return;
      }
      if (httpWorks && ++this.#wsBlockedCount >= 2) {
        this.transport = 'sse';
        this.emit('transport', 'sse');
        this.#attempt = 0;
        this.#connect();
        return;
      }
    }
    this.#scheduleRetry();
  }

  #heartbeat() {
    if (!this.#ready) return;
    if (this.transport === 'sse') {
      this.#probeHttp();
      return;
    }
    if (Date.now() - this.#lastSeen > this.#opts.deadMs) {
      this.#closeWs();   // silent too long: do not wait for TCP to notice
      this.#lost();
      return;
    }
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(wsStatus());
  }

  // ---- events ----

  #route(ev) {
    if (ev.kind === 'status' || ev.kind === 'metrics') {
      this.emit(ev.kind, ev);
      return;
    }
    let id = ev.id;
    if ((id === null || id === undefined) && this.#gens.size === 1) id = [...this.#gens.keys()][0];   // first dialect: no ids
    const gen = this.#gens.get(id);
    if (!gen) {
      if (ev.kind === 'error') this.emit('error', ev);
      return;
    }
    if (ev.kind === 'done' || ev.kind === 'error') {
      clearTimeout(gen.stopTimer);
      this.#gens.delete(id);
      this.#refreshState();
    }
    gen.onEvent({ ...ev, id });
  }
}
