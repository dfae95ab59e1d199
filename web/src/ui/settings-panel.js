// settings-panel.js — the settings dialog: sampling (temperature 0–2, top-k 1–100,
// top-p 0–1, max tokens), system prompt, prompt format, extra request fields, theme, and
// the custom presets. Every change is stored at once (store/settings.js); values still at
// the server's default say so. "Reset to server defaults" drops every override.
import { byId, h } from '../lib/dom.js';
import { icon } from '../lib/icons.js';
import { presets } from '../store/presets.js';
import { SETTINGS, settings } from '../store/settings.js';
import { theme } from './theme.js';

const NUMERIC = { temperature: parseFloat, top_k: (v) => parseInt(v, 10), top_p: parseFloat, max_tokens: (v) => parseInt(v, 10) };
const SHOWN = { temperature: (v) => v.toFixed(2), top_k: String, top_p: (v) => v.toFixed(2), max_tokens: String };

export function mountSettings() {
  const dialog = byId('settings-dialog');
  const extraInput = byId('set-extra');

  byId('settings-button').addEventListener('click', () => {
    load();
    dialog.showModal();
  });

  const load = () => {
    for (const name of Object.keys(SETTINGS)) {
      const el = byId(`set-${name}`);
      el.value = settings.get(name);
      const out = byId(`set-${name}-value`);
      if (out) out.textContent = `${SHOWN[name](settings.get(name))}${settings.isDefault(name) ? ' (server default)' : ''}`;
    }
    byId('set-theme').value = theme.preference;
    validateExtra();
    renderPresets();
  };

  for (const name of Object.keys(SETTINGS)) {
    const el = byId(`set-${name}`);
    el.addEventListener('input', () => {
      if (NUMERIC[name]) {
        const v = NUMERIC[name](el.value);
        if (!Number.isFinite(v)) return;
        settings.set(name, v);
        byId(`set-${name}-value`).textContent = SHOWN[name](v);
      } else {
        settings.set(name, el.value);
        if (name === 'extra') validateExtra();
      }
    });
  }

  const validateExtra = () => {
    let msg = '';
    try {
      settings.extraFields();
    } catch (e) {
      msg = `Not used: ${e.message}`;
    }
    extraInput.setCustomValidity(msg);
    extraInput.setAttribute('aria-invalid', String(Boolean(msg)));
    byId('set-extra-hint').textContent = msg || 'Merged into every request (see docs/api.md), e.g. seed, stop, min_p, ignore_eos.';
  };

  byId('set-theme').addEventListener('change', (e) => theme.set(e.target.value));
  theme.on('change', () => {
    byId('set-theme').value = theme.preference;
  });

  byId('settings-reset').addEventListener('click', () => {
    settings.reset();
    load();
  });

  // ---- custom presets ----
  const list = byId('custom-preset-list');
  const renderPresets = () => {
    const custom = presets.custom();
    list.replaceChildren(...(custom.length
      ? custom.map((p) => h('li', { class: 'preset-list__item' },
        h('span', { class: 'preset-list__name', text: p.name }),
        h('button', { type: 'button', class: 'icon-button icon-button--small icon-button--danger', 'aria-label': `Delete preset ${p.name}`, onclick: () => presets.remove(p.id) }, icon('trash'))))
      : [h('li', { class: 'preset-list__empty', text: 'None yet: the built-in presets are Summarize, Translate, Code and Explain.' })]));
  };
  presets.on('change', renderPresets);

  const presetDialog = byId('preset-dialog');
  byId('add-preset').addEventListener('click', () => {
    byId('preset-form').reset();
    presetDialog.returnValue = '';
    presetDialog.showModal();
  });
  presetDialog.addEventListener('close', () => {
    const name = byId('preset-name').value.trim();
    const template = byId('preset-template').value;
    if (presetDialog.returnValue === 'save' && name && template.trim()) presets.add(name, template);
  });
}
