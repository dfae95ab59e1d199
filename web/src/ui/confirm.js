// confirm.js — "are you sure?" with the page's own <dialog> (keyboard and focus handling
// come with the element; Esc cancels). Resolves true when confirmed.
import { byId } from '../lib/dom.js';

export function confirmDialog(title, text, okLabel = 'Delete') {
  const dialog = byId('confirm-dialog');
  byId('confirm-title').textContent = title;
  byId('confirm-text').textContent = text;
  byId('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}
