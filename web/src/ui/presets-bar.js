// presets-bar.js — the preset chips above the message box. Choosing one writes its prompt
// into the box (around what was already typed) and focuses it; it never sends by itself.
import { byId, h } from '../lib/dom.js';
import { applyPreset, presets } from '../store/presets.js';

export function mountPresetsBar(composer) {
  const bar = byId('presets');
  const render = () => {
    bar.replaceChildren(...presets.all().map((p) => h('button', {
      type: 'button',
      class: `chip${p.builtin ? '' : ' chip--custom'}`,
      title: p.template,
      'aria-label': `Preset: ${p.name}`,
      onclick: () => {
        composer.value = applyPreset(p, composer.value.trim());
        composer.focus();
      },
    }, p.name)));
  };
  presets.on('change', render);
  render();
}
