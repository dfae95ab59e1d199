// presets.js — prompt presets: four built-in ones and the user's own, persisted in
// localStorage ("quarrel.presets"). A template's {{input}} is replaced by the text already
// in the message box (appended at the end when the template has no {{input}}).
import { Emitter } from '../lib/emitter.js';
import { newId } from '../lib/format.js';
import { load, save } from '../lib/storage.js';

export const BUILTIN_PRESETS = [
  { id: 'summarize', name: 'Summarize', template: 'Summarize the following text in a few sentences:\n\n{{input}}' },
  { id: 'translate', name: 'Translate', template: 'Translate the following text into English, keeping its tone:\n\n{{input}}' },
  { id: 'code', name: 'Code', template: 'Write code for the task below. Reply with one fenced code block and a short explanation.\n\nTask: {{input}}' },
  { id: 'explain', name: 'Explain', template: 'Explain the following simply, step by step, as if to a curious beginner:\n\n{{input}}' },
];

export function applyPreset(preset, input) {
  return preset.template.includes('{{input}}')
    ? preset.template.replace('{{input}}', input)
    : `${preset.template}${input ? `\n\n${input}` : ''}`;
}

class Presets extends Emitter {
  #custom = load('presets', []).filter((p) => p && typeof p.name === 'string' && typeof p.template === 'string');

  all() {
    return [...BUILTIN_PRESETS.map((p) => ({ ...p, builtin: true })), ...this.#custom];
  }

  custom() {
    return [...this.#custom];
  }

  add(name, template) {
    this.#custom.push({ id: newId(), name: name.trim(), template });
    this.#persist();
  }

  remove(id) {
    this.#custom = this.#custom.filter((p) => p.id !== id);
    this.#persist();
  }

  #persist() {
    save('presets', this.#custom);
    this.emit('change');
  }
}

export const presets = new Presets();
