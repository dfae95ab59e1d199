// settings.js — generation and UI settings, persisted in localStorage ("quarrel.settings").
// Only the values the user changed are stored (overrides); the rest show the server's
// documented defaults (docs/api.md) and are left out of requests, so the server's own
// defaults apply. "Reset to server defaults" drops every override.
import { Emitter } from '../lib/emitter.js';
import { load, save } from '../lib/storage.js';

/** name -> {value: the server default, request: sent to the server?} */
export const SETTINGS = {
  temperature:   { value: 0.8,    request: true },
  top_k:         { value: 40,     request: true },
  top_p:         { value: 0.95,   request: true },
  max_tokens:    { value: 128,    request: true },
  system_prompt: { value: '',     request: false },
  prompt_format: { value: 'chat', request: false },   // 'chat' | 'completion'
  extra:         { value: '',     request: false },   // JSON object text merged into requests
};

class Settings extends Emitter {
  #overrides = load('settings', {});

  get(name) {
    return name in this.#overrides ? this.#overrides[name] : SETTINGS[name].value;
  }

  isDefault(name) {
    return !(name in this.#overrides);
  }

  set(name, value) {
    if (!(name in SETTINGS)) throw new Error(`unknown setting ${name}`);
    this.#overrides[name] = value;
    save('settings', this.#overrides);
    this.emit('change', name);
  }

  reset() {
    this.#overrides = {};
    save('settings', this.#overrides);
    this.emit('change', null);
  }

  /** The extra-fields JSON as an object; throws with a readable message when invalid. */
  extraFields() {
    const text = this.get('extra').trim();
    if (!text) return {};
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('extra request fields must be a JSON object');
    return v;
  }

  /** The request fields: explicit sampling overrides, then the extra fields. */
  requestFields() {
    const out = {};
    for (const [name, def] of Object.entries(SETTINGS)) if (def.request && !this.isDefault(name)) out[name] = this.get(name);
    let extra = {};
    try {
      extra = this.extraFields();
    } catch {
      /* the settings panel shows the error; send without them */
    }
    return { ...out, ...extra };
  }
}

export const settings = new Settings();
