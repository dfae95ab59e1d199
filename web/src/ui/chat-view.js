// chat-view.js — the message list of the open conversation: one MessageView per message
// (kept across updates, so streaming only re-renders the growing bubble, once per frame),
// auto-scroll that follows new text until the user scrolls up (and resumes when they come
// back to the bottom or press "Latest"), and a 4 Hz tick for the live elapsed time.
import { byId, frameBatched } from '../lib/dom.js';
import { copyWithFeedback } from './clipboard.js';
import { MessageView } from './message-view.js';

const BOTTOM_SLACK_PX = 48;

export class ChatView {
  #ctl;
  #list = byId('message-list');
  #scroller = byId('chat');
  #empty = byId('chat-empty');
  #jump = byId('jump-latest');
  #title = byId('conversation-title');
  #views = new Map();   // message id -> MessageView
  #dirty = new Set();
  #stick = true;
  #flush = frameBatched(() => this.#flushDirty());
  #ticker = null;

  constructor(controller) {
    this.#ctl = controller;
    controller.on('conversation', () => this.render());
    controller.on('message', (id) => this.#markDirty(id));
    controller.on('busy', (busy) => {
      clearInterval(this.#ticker);
      if (busy) this.#ticker = setInterval(() => this.#tick(), 250);
      for (const id of this.#views.keys()) this.#dirty.add(id);   // actions depend on busy
      this.#flush();
    });
    this.#scroller.addEventListener('scroll', () => {
      this.#stick = this.#atBottom();
      this.#updateJump();
    }, { passive: true });
    // intent to read back: stop following at once, before the scroll position says so
    this.#scroller.addEventListener('wheel', (e) => {
      if (e.deltaY < 0) this.#stick = false;
    }, { passive: true });
    this.#jump.addEventListener('click', () => this.scrollToBottom(true));
    this.render();
  }

  get following() {
    return this.#stick;
  }

  render() {
    const conv = this.#ctl.conversation;
    this.#title.textContent = conv.title;
    document.title = conv.messages.length ? `${conv.title} · Quarrel` : 'Quarrel';
    const actions = {
      copy: (text, button) => copyWithFeedback(text, button),
      edit: (id, text) => this.#ctl.editReply(id, text),
      resend: (id, text) => {
        this.#stick = true;
        this.#ctl.editAndResend(id, text);
      },
      regenerate: (id) => {
        this.#stick = true;
        this.#ctl.regenerate(id);
      },
      refresh: (id) => this.#markDirty(id),
    };
    const keep = new Map();
    const items = conv.messages.map((m) => {
      const view = this.#views.get(m.id) ?? new MessageView(m, actions);
      keep.set(m.id, view);
      return view.el;
    });
    this.#views = keep;
    this.#list.replaceChildren(...items);
    this.#empty.hidden = conv.messages.length > 0;
    for (const id of keep.keys()) this.#dirty.add(id);
    this.#flushDirty();
    this.scrollToBottom(false);
  }

  scrollToBottom(smooth) {
    this.#stick = true;
    this.#scroller.scrollTo({ top: this.#scroller.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    this.#updateJump();
  }

  #markDirty(id) {
    this.#dirty.add(id);
    this.#flush();
  }

  #tick() {
    const conv = this.#ctl.conversation;
    for (const m of conv.messages) if (this.#ctl.liveStats(m.id)) this.#dirty.add(m.id);
    this.#flush();
  }

  #flushDirty() {
    const conv = this.#ctl.conversation;
    const lastId = conv.messages.at(-1)?.id;
    const ctx = { busy: this.#ctl.busy };
    for (const id of this.#dirty) {
      const view = this.#views.get(id);
      const msg = conv.messages.find((m) => m.id === id);
      if (view && msg) view.update(msg, this.#ctl.liveStats(id), { ...ctx, isLast: id === lastId });
    }
    this.#dirty.clear();
    if (this.#stick) this.#scroller.scrollTop = this.#scroller.scrollHeight;
    this.#updateJump();
  }

  #atBottom() {
    const s = this.#scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < BOTTOM_SLACK_PX;
  }

  #updateJump() {
    this.#jump.hidden = this.#stick || this.#atBottom();
  }
}
