// api-key.js — the API key for servers that require one. Remembered keys live in
// localStorage ("quarrel.apiKey"), readable by any script on this origin: the key dialog
// says so. A key not remembered lives only in this page's memory.
import { load, remove, save } from '../lib/storage.js';

let memoryKey = null;

export function getApiKey() {
  return memoryKey ?? load('apiKey', null);
}

export function setApiKey(key, remember) {
  memoryKey = key || null;
  if (remember && key) save('apiKey', key);
  else remove('apiKey');
}

export function forgetApiKey() {
  memoryKey = null;
  remove('apiKey');
}

export const isApiKeyRemembered = () => load('apiKey', null) !== null;
