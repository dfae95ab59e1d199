// storage.js — JSON values in localStorage under the "quarrel." prefix. Reads never throw
// (a missing or corrupt value gives the fallback); a failed write (quota exceeded, storage
// disabled) returns false and is reported once to the handler set by onStorageError.
const PREFIX = 'quarrel.';
let errorHandler = () => {};

export function onStorageError(fn) {
  errorHandler = fn;
}

export function load(key, fallback) {
  try {
    const s = localStorage.getItem(PREFIX + key);
    return s === null ? fallback : JSON.parse(s);
  } catch {
    return fallback;
  }
}

export function save(key, value) {
  try {
    localStorage.setItem(PREFIX + key, JSON.stringify(value));
    return true;
  } catch (e) {
    errorHandler(e);
    return false;
  }
}

export function remove(key) {
  try {
    localStorage.removeItem(PREFIX + key);
  } catch {
    /* storage disabled: nothing to remove */
  }
}
