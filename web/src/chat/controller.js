// controller.js — the chat's behaviour, independent of the DOM: the open conversation,
// sending, streaming into the assistant message, stop, regenerate, edit-and-resend, editing
// a reply, and the live numbers (tokens, tok/s, elapsed) of the running generation.
// One generation runs at a time. Events: 'conversation' (another conversation is open or it
// changed as a whole), 'message' (message id: its text, state or stats changed),
// 'busy' (a generation started or ended).
// Memory: the open conversation (and the one generating, if the user switched away) are
// plain objects owned here and written to store/conversations.js as they change.
import { Emitter } from '../lib/emitter.js';
import { load, save } from '../lib/storage.js';
import { conversations, newConversation, newMessage, titleFrom } from '../store/conversations.js';
import { settings } from '../store/settings.js';
import { buildPrompt } from './prompt.js';

const SAVE_EVERY_MS = 1000;   // while streaming, the partial reply is stored this often

export class ChatController extends Emitter {
  #conn;
  #conv;
  #live = null;   // {genId, conv, msg, state: 'pending'|'streaming', startedAt, firstTokenAt, tokens, lastSave}
  #genCounter = 0;

  constructor(conn) {
    super();
    this.#conn = conn;
    const id = conversations.currentId;
    this.#conv = (id && conversations.get(id)) || newConversation(load('model', null));
  }

  get conversation() {
    return this.#conv;
  }

  get busy() {
    return this.#live !== null;
  }

  /** The running generation's numbers for message id, or null. */
  liveStats(messageId) {
    const l = this.#live;
    if (!l || l.msg.id !== messageId) return null;
    const now = performance.now();
    const genSecs = l.firstTokenAt ? (now - l.firstTokenAt) / 1000 : 0;
    return {
      state: l.state,
      tokens: l.tokens,
      elapsedMs: now - l.startedAt,
      tokensPerSec: genSecs > 0.05 && l.tokens > 1 ? (l.tokens - 1) / genSecs : null,
    };
  }

  // ---- conversations ----

  open(id) {
    if (id === this.#conv.id) return;
    const conv = this.#live?.conv.id === id ? this.#live.conv : conversations.get(id);
    if (!conv) return;
    this.#conv = conv;
    conversations.currentId = id;
    this.emit('conversation', conv);
  }

  newChat() {
    if (!this.#conv.messages.length) return;
    this.#conv = newConversation(load('model', null));
    conversations.currentId = null;
    this.emit('conversation', this.#conv);
  }

  /** The conversation was deleted or history cleared elsewhere. */
  forget(id) {
    if (this.#live && (id === null || this.#live.conv.id === id)) this.stop();
    if (id === null || this.#conv.id === id) {
      this.#conv = newConversation(load('model', null));
      conversations.currentId = null;
      this.emit('conversation', this.#conv);
    }
  }

  /** Renamed elsewhere: pick up the stored title. */
  refreshTitle() {
    const stored = conversations.get(this.#conv.id);
    if (stored) this.#conv.title = stored.title;
    this.emit('conversation', this.#conv);
  }

  setModel(name) {
    this.#conv.model = name;
    save('model', name);
    if (this.#conv.messages.length) this.#store(this.#conv);
    this.emit('conversation', this.#conv);
  }

  // ---- actions ----

  send(text) {
    if (this.busy || !text.trim()) return false;
    const conv = this.#conv;
    if (!conv.messages.length) conv.title = titleFrom(text);
    conv.messages.push(newMessage('user', text));
    conversations.currentId = conv.id;
    this.#startReply(conv);
    return true;
  }

  /** Replaces assistant message id (and whatever followed it) with a new reply. */
  regenerate(id) {
    if (this.busy) return;
    const i = this.#conv.messages.findIndex((m) => m.id === id);
    if (i < 0) return;
    this.#conv.messages.splice(i);
    this.#startReply(this.#conv);
  }

  /** Changes user message id, drops everything after it and asks again. */
  editAndResend(id, text) {
    if (this.busy || !text.trim()) return;
    const i = this.#conv.messages.findIndex((m) => m.id === id && m.role === 'user');
    if (i < 0) return;
    this.#conv.messages[i].content = text;
    this.#conv.messages.splice(i + 1);
    if (i === 0) this.#conv.title = titleFrom(text);
    this.#startReply(this.#conv);
  }

  /** Replaces an assistant reply's text (later turns see the edited text). */
  editReply(id, text) {
    const m = this.#conv.messages.find((x) => x.id === id && x.role === 'assistant');
    if (!m || this.#live?.msg === m) return;
    m.content = text;
    m.edited = true;
    this.#store(this.#conv);
    this.emit('message', m.id);
  }

  stop() {
    if (this.#live) this.#conn.stop(this.#live.genId);
  }

  // ---- generation ----

  #startReply(conv) {
    const history = conv.messages.map(({ role, content }) => ({ role, content }));
    const msg = newMessage('assistant', '');
    conv.messages.push(msg);
    this.#store(conv);

    const { prompt, stop } = buildPrompt(history, {
      format: settings.get('prompt_format'),
      systemPrompt: settings.get('system_prompt'),
    });
    const fields = settings.requestFields();
    const params = { ...fields, prompt };
    const userStops = fields.stop === undefined ? [] : [fields.stop].flat();
    if (stop.length || userStops.length) params.stop = [...stop, ...userStops];
    if (conv.model) params.model = conv.model;

    const genId = `g${Date.now().toString(36)}-${++this.#genCounter}`;
    const now = performance.now();
    // live before the first render, so the new bubble shows "processing prompt" at once
    this.#live = { genId, conv, msg, state: 'pending', startedAt: now, firstTokenAt: null, tokens: 0, lastSave: now };
    this.emit('conversation', conv);
    this.emit('busy', true);
    try {
      this.#conn.generate(genId, params, (ev) => this.#onEvent(ev));
    } catch (e) {
      this.#finish({ kind: 'error', code: 'CONNECTION_LOST', message: `not connected to the server (${e.message})` });
      return;
    }
    this.emit('message', msg.id);
  }

  #onEvent(ev) {
    const l = this.#live;
    if (!l || ev.id !== l.genId) return;
    if (ev.kind === 'token') {
      const now = performance.now();
      if (l.state === 'pending') {
        l.state = 'streaming';
        l.firstTokenAt = now;
      }
      // the chat format leaves a space after "Assistant:" for the model to write
      l.msg.content = l.msg.content ? l.msg.content + ev.text : ev.text.trimStart();
      l.tokens += ev.count ?? 1;
      if (now - l.lastSave > SAVE_EVERY_MS) {
        l.lastSave = now;
        this.#store(l.conv, false);
      }
      this.emit('message', l.msg.id);
    } else if (ev.kind === 'done' || ev.kind === 'error') {
      this.#finish(ev);
    }
  }

  #finish(ev) {
    const l = this.#live;
    this.#live = null;
    const now = performance.now();
    const m = l.msg;
    if (ev.kind === 'done') {
      if (ev.text && !m.content) m.content = ev.text.trimStart();
      m.state = ev.finishReason === 'cancelled' ? 'stopped' : 'done';
      const genSecs = l.firstTokenAt ? (now - l.firstTokenAt) / 1000 : 0;
      m.stats = {
        promptTokens: ev.usage?.prompt_tokens ?? null,
        completionTokens: ev.usage?.completion_tokens ?? ev.tokensGenerated ?? l.tokens,
        tokensPerSec: ev.tokensPerSec || (genSecs > 0 && l.tokens > 1 ? (l.tokens - 1) / genSecs : null),
        elapsedMs: Math.round(now - l.startedAt),
        ttftMs: l.firstTokenAt ? Math.round(l.firstTokenAt - l.startedAt) : null,
        finishReason: ev.finishReason,
      };
    } else {
      m.state = 'error';
      m.error = ev.message;
      m.errorCode = ev.code;
    }
    this.#store(l.conv);
    this.emit('message', m.id);
    this.emit('busy', false);
  }

  #store(conv, touch = true) {
    conversations.save(conv, { touch });
  }
}
