// http.js — fetch for the Quarrel API: adds `Authorization: Bearer KEY` when a key is set,
// turns error replies ({"error": {"message", ...}}) into HttpError, and announces a 401 on
// authEvents ('unauthorized') so the key dialog opens wherever it happened.
import { Emitter } from '../lib/emitter.js';
import { getApiKey } from '../store/api-key.js';

export const authEvents = new Emitter();

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function authHeaders(extra = {}) {
  const key = getApiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

export async function apiFetch(path, { method = 'GET', body, signal } = {}) {
  const res = await fetch(path, {
    method,
    headers: authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: 'no-store',
  });
  if (res.ok) return res;
  let message = `${method} ${path}: HTTP ${res.status}`;
  try {
    const j = await res.json();
    if (j?.error?.message) message = j.error.message;
  } catch {
    /* not JSON: keep the status line */
  }
  if (res.status === 401) authEvents.emit('unauthorized', message);
  throw new HttpError(res.status, message);
}
