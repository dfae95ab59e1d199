// message-view.js — one chat bubble: role, content (markdown for the assistant, plain text
// for the user), the live status (a distinct "processing prompt" state before the first
// token, a typing indicator while tokens stream), the numbers (tokens, tok/s, elapsed,
// prompt tokens, finish reason), and its actions (copy, edit, regenerate). It renders
// from the message object and the controller's live stats; it keeps no chat state itself.
import { h } from '../lib/dom.js';
import { formatDuration, formatRate } from '../lib/format.js';
import { icon } from '../lib/icons.js';
import { copyWithFeedback } from './clipboard.js';
import { enhanceCodeBlocks, renderMarkdown } from './markdown.js';

const FINISH_NOTES = { length: 'hit the token limit', timeout: 'timed out', cancelled: 'stopped', error: 'failed' };

function actionButton(name, label, onclick) {
  return h('button', { type: 'button', class: `message__action message__action--${name}`, 'aria-label': label, title: label, onclick },
    icon(name), h('span', { class: 'message__action-label', text: label.split(' ')[0] }));
}

export class MessageView {
  el;
  #msg;
  #actions;
  #content;
  #status;
  #stats;
  #tools;
  #rendered = null;   // the text last rendered into #content
  #editing = false;

  /** actions: {copy, edit(id, text), resend(id, text), regenerate(id)} */
  constructor(msg, actions) {
    this.#msg = msg;
    this.#actions = actions;
    const role = msg.role === 'user' ? 'You' : 'Assistant';
    this.#content = h('div', { class: `message__content${msg.role === 'assistant' ? ' markdown' : ''}` });
    this.#status = h('div', { class: 'message__status', 'aria-hidden': 'true' });
    this.#stats = h('div', { class: 'message__stats' });
    this.#tools = h('div', { class: 'message__actions', role: 'group', 'aria-label': `${role} message actions` });
    this.el = h('li', { class: `message message--${msg.role}`, dataset: { id: msg.id } },
      h('article', { class: 'message__bubble', 'aria-label': `${role} said` },
        h('header', { class: 'message__header' }, h('span', { class: 'message__role', text: role })),
        this.#content, this.#status,
        h('footer', { class: 'message__footer' }, this.#stats, this.#tools)));
  }

  /** Re-renders from msg; live: controller.liveStats(id) or null; ctx: {busy, isLast}. */
  update(msg, live, ctx) {
    this.#msg = msg;
    const state = live ? live.state : (msg.state ?? 'done');
    this.el.dataset.state = state;
    this.el.setAttribute('aria-busy', live ? 'true' : 'false');
    if (!this.#editing && this.#rendered !== msg.content) this.#renderContent(msg.content);
    this.#renderStatus(msg, live, state);
    this.#renderStats(msg, live);
    if (!this.#editing) this.#renderActions(msg, live, ctx);
  }

  #renderContent(text) {
    this.#rendered = text;
    if (this.#msg.role === 'user') {
      this.#content.textContent = text;
      return;
    }
    this.#content.innerHTML = renderMarkdown(text);
    enhanceCodeBlocks(this.#content, (code, button) => copyWithFeedback(code, button));
  }

  #renderStatus(msg, live, state) {
    this.#status.replaceChildren();
    this.#status.className = 'message__status';
    if (state === 'pending') {
      this.#status.classList.add('message__status--prompt');
      this.#status.append(h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        h('span', { text: `Processing prompt… ${formatDuration(live.elapsedMs)}` }));
    } else if (state === 'streaming') {
      this.#status.classList.add('message__status--typing');
      this.#status.append(h('span', { class: 'typing', 'aria-label': 'The model is typing' },
        h('span', { class: 'typing__dot' }), h('span', { class: 'typing__dot' }), h('span', { class: 'typing__dot' })));
    } else if (state === 'error') {
      this.#status.classList.add('message__status--error');
      this.#status.removeAttribute('aria-hidden');
      this.#status.append(h('span', { role: 'alert', text: `Error: ${msg.error ?? 'the generation failed'}` }));
    }
  }

  #renderStats(msg, live) {
    const parts = [];
    if (live) {
      if (live.state === 'streaming') parts.push(`${live.tokens} tokens`, formatRate(live.tokensPerSec));
      parts.push(formatDuration(live.elapsedMs));
    } else if (msg.stats) {
      const s = msg.stats;
      parts.push(`${s.completionTokens ?? '?'} tokens`, formatRate(s.tokensPerSec), formatDuration(s.elapsedMs));
      if (s.promptTokens !== null && s.promptTokens !== undefined) parts.push(`prompt ${s.promptTokens} tokens`);
      if (FINISH_NOTES[s.finishReason]) parts.push(FINISH_NOTES[s.finishReason]);
    }
    if (msg.edited) parts.push('edited');
    this.#stats.textContent = parts.join(' · ');
  }

  #renderActions(msg, live, { busy, isLast }) {
    const buttons = [];
    if (!live) {
      buttons.push(actionButton('copy', 'Copy message', (e) => this.#actions.copy(msg.content, e.currentTarget)));
      if (!busy) buttons.push(actionButton('edit', msg.role === 'user' ? 'Edit and resend' : 'Edit reply', () => this.#startEdit()));
      if (!busy && msg.role === 'assistant' && isLast) buttons.push(actionButton('regenerate', 'Regenerate reply', () => this.#actions.regenerate(msg.id)));
    }
    this.#tools.replaceChildren(...buttons);
  }

  #startEdit() {
    this.#editing = true;
    const msg = this.#msg;
    const isUser = msg.role === 'user';
    const area = h('textarea', { class: 'input message__editor-input', 'aria-label': isUser ? 'Edit your message' : 'Edit the reply', rows: 4 });
    area.value = msg.content;
    const finish = (save) => {
      this.#editing = false;
      this.#rendered = null;
      if (save && area.value.trim()) {
        if (isUser) this.#actions.resend(msg.id, area.value);
        else this.#actions.edit(msg.id, area.value);
      } else {
        this.#actions.refresh(msg.id);
      }
    };
    area.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        finish(false);
      } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        finish(true);
      }
    });
    const editor = h('div', { class: 'message__editor' }, area,
      h('div', { class: 'message__editor-buttons' },
        h('button', { type: 'button', class: 'button button--small', onclick: () => finish(false) }, 'Cancel'),
        h('button', { type: 'button', class: 'button button--small button--primary message__editor-save', onclick: () => finish(true) },
          isUser ? 'Send' : 'Save')));
    this.#content.replaceChildren(editor);
    this.#tools.replaceChildren();
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }
}
