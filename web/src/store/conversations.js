// conversations.js — conversation history in localStorage.
//   "quarrel.conversations"  index: [{id, title, updatedAt}] (the sidebar list)
//   "quarrel.conv.<id>"      one conversation:
//       {id, title, createdAt, updatedAt (ms), model (name or null),
//        messages: [{id, role: 'user'|'assistant', content, createdAt,
//                    state?: 'done'|'stopped'|'error', error?, stats?: {promptTokens,
//                    completionTokens, tokensPerSec, elapsedMs, finishReason}}]}
//   "quarrel.current"        the id of the open conversation
// A conversation is stored from its first message on; an empty "New chat" is not listed.
import { Emitter } from '../lib/emitter.js';
import { newId } from '../lib/format.js';
import { load, remove, save } from '../lib/storage.js';

const TITLE_MAX = 60;

export function titleFrom(text) {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > TITLE_MAX ? `${t.slice(0, TITLE_MAX - 1)}…` : t || 'New chat';
}

export function newConversation(model = null) {
  const now = Date.now();
  return { id: newId(), title: 'New chat', createdAt: now, updatedAt: now, model, messages: [] };
}

export function newMessage(role, content) {
  return { id: newId(), role, content, createdAt: Date.now() };
}

/** Checks an imported conversation's shape; returns a clean copy or null. */
export function validConversation(c) {
  if (!c || typeof c !== 'object' || !Array.isArray(c.messages)) return null;
  const messages = [];
  for (const m of c.messages) {
    if (!m || (m.role !== 'user' && m.role !== 'assistant') || typeof m.content !== 'string') return null;
    messages.push({ ...m, id: typeof m.id === 'string' ? m.id : newId(), createdAt: Number(m.createdAt) || Date.now() });
  }
  const now = Date.now();
  return {
    id: typeof c.id === 'string' && c.id ? c.id : newId(),
    title: typeof c.title === 'string' && c.title.trim() ? c.title.trim().slice(0, 200) : titleFrom(messages[0]?.content ?? ''),
    createdAt: Number(c.createdAt) || now,
    updatedAt: Number(c.updatedAt) || now,
    model: typeof c.model === 'string' ? c.model : null,
    messages,
  };
}

class Conversations extends Emitter {
  #index = load('conversations', []).filter((e) => e && typeof e.id === 'string');

  /** Index entries, newest first. */
  list() {
    return [...this.#index].sort((a, b) => b.updatedAt - a.updatedAt);
  }

  get(id) {
    return load(`conv.${id}`, null);
  }

  has(id) {
    return this.#index.some((e) => e.id === id);
  }

  /** Stores conv (updatedAt = now unless touch is false); returns whether storage took it. */
  save(conv, { touch = true } = {}) {
    if (touch) conv.updatedAt = Date.now();
    const ok = save(`conv.${conv.id}`, conv);
    const entry = { id: conv.id, title: conv.title, updatedAt: conv.updatedAt };
    const i = this.#index.findIndex((e) => e.id === conv.id);
    if (i >= 0) this.#index[i] = entry;
    else this.#index.push(entry);
    this.#persist();
    return ok;
  }

  rename(id, title) {
    const conv = this.get(id);
    if (!conv) return;
    conv.title = title.trim() || conv.title;
    this.save(conv, { touch: false });
  }

  remove(id) {
    remove(`conv.${id}`);
    this.#index = this.#index.filter((e) => e.id !== id);
    this.#persist();
  }

  clear() {
    for (const e of this.#index) remove(`conv.${e.id}`);
    this.#index = [];
    this.#persist();
  }

  /** Entries whose title or any message contains every word of query (case-insensitive). */
  search(query) {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return this.list();
    return this.list().filter((e) => {
      const conv = this.get(e.id);
      const hay = [e.title, ...(conv?.messages ?? []).map((m) => m.content)].join('\n').toLowerCase();
      return words.every((w) => hay.includes(w));
    });
  }

  /** Every stored conversation, newest first. */
  all() {
    return this.list().map((e) => this.get(e.id)).filter(Boolean);
  }

  /** Adds imported conversations (ids already present get new ones); returns how many. */
  importMany(list) {
    let n = 0;
    for (const raw of list) {
      const conv = validConversation(raw);
      if (!conv) continue;
      if (this.has(conv.id)) conv.id = newId();
      this.save(conv, { touch: false });
      n++;
    }
    return n;
  }

  get currentId() {
    return load('current', null);
  }

  set currentId(id) {
    save('current', id);
  }

  #persist() {
    save('conversations', this.#index);
    this.emit('change');
  }
}

export const conversations = new Conversations();
