// toast.js — short notices in the corner (the container is an aria-live region, so screen
// readers announce them). kind: 'info' | 'error'.
import { byId, h } from '../lib/dom.js';

export function toast(message, kind = 'info', ms = 4000) {
  const el = h('div', { class: `toast toast--${kind}`, role: kind === 'error' ? 'alert' : undefined, text: message });
  byId('toasts').append(el);
  setTimeout(() => {
    el.classList.add('toast--leaving');
    setTimeout(() => el.remove(), 300);
  }, ms);
}
