// key-dialog.js — API key entry. Opens by itself when the server answers 401 or
// UNAUTHORIZED (the connection pauses until a key is saved), or from the header's key
// button. The dialog states the risk of keeping the key in localStorage; "Remember" can be
// unticked to keep it only for this page's life.
import { byId } from '../lib/dom.js';
import { forgetApiKey, getApiKey, isApiKeyRemembered, setApiKey } from '../store/api-key.js';
import { toast } from './toast.js';

export function mountKeyDialog(connection) {
  const dialog = byId('key-dialog');
  const input = byId('key-input');
  const remember = byId('key-remember');
  const reason = byId('key-reason');

  const open = (why) => {
    if (dialog.open) return;
    reason.textContent = why;
    input.value = getApiKey() ?? '';
    remember.checked = getApiKey() === null || isApiKeyRemembered();
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  };

  connection.on('unauthorized', () => open(getApiKey()
    ? 'The server refused this API key (wrong, revoked or expired). Enter another one.'
    : 'This server needs an API key. Ask its operator for one (quarrel keys create).'));
  byId('key-button').addEventListener('click', () => open('Enter the API key for this server, if it needs one.'));

  byId('key-forget').addEventListener('click', () => {
    forgetApiKey();
    input.value = '';
    toast('API key forgotten');
  });

  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'save') return;
    setApiKey(input.value.trim(), remember.checked);
    connection.resume();
  });
}
