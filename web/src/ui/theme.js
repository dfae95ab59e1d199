// theme.js — light and dark themes. The preference ('system' | 'light' | 'dark', stored in
// localStorage "quarrel.theme") resolves to <html data-theme="light|dark">, which selects
// the CSS variables in styles/tokens.css. 'system' follows prefers-color-scheme live.
import { Emitter } from '../lib/emitter.js';
import { load, save } from '../lib/storage.js';

const media = window.matchMedia('(prefers-color-scheme: dark)');

class Theme extends Emitter {
  preference = load('theme', 'system');

  get effective() {
    return this.preference === 'system' ? (media.matches ? 'dark' : 'light') : this.preference;
  }

  init() {
    media.addEventListener('change', () => this.#apply());
    this.#apply();
  }

  set(pref) {
    this.preference = ['light', 'dark'].includes(pref) ? pref : 'system';
    save('theme', this.preference);
    this.#apply();
  }

  /** The header button: the opposite of what is shown now. */
  toggle() {
    this.set(this.effective === 'dark' ? 'light' : 'dark');
  }

  #apply() {
    document.documentElement.dataset.theme = this.effective;
    this.emit('change', this.effective);
  }
}

export const theme = new Theme();
