// models-view.js — the sidebar's model list from GET /api/models (name, architecture,
// parameters, quantization, context, loaded, memory), or from GET /v1/models (names only)
// on servers without it. Choosing a model applies it to the open conversation (and new
// ones); it is sent as the request's `model`. Reloaded whenever the connection is ready.
import { byId, h } from '../lib/dom.js';
import { formatBytes, formatCount } from '../lib/format.js';
import { apiFetch, HttpError } from '../net/http.js';
import { layout } from './layout.js';

/** Any of the list shapes a server may send -> [{name, ...details}] */
function normalize(body) {
  const list = Array.isArray(body) ? body : body?.models ?? body?.data ?? [];
  return list.map((m) => ({
    name: m.name ?? m.id ?? m.model,
    architecture: m.architecture ?? m.arch ?? null,
    parameters: m.parameters ?? m.n_params ?? null,
    quantization: m.quantization ?? m.file_type ?? null,
    contextLength: m.context_length ?? m.n_ctx_train ?? null,
    loaded: m.loaded ?? true,   // /v1/models lists what is being served
    memoryBytes: m.memory_bytes ?? m.size ?? null,
  })).filter((m) => m.name);
}

export async function fetchModels() {
  try {
    return normalize(await (await apiFetch('/api/models')).json());
  } catch (e) {
    if (!(e instanceof HttpError) || e.status !== 404) throw e;
    return normalize(await (await apiFetch('/v1/models')).json());
  }
}

export function mountModels(controller, connection) {
  const list = byId('model-list');
  const hint = byId('composer-model');
  let models = [];

  const render = () => {
    const conv = controller.conversation;
    const selected = conv.model ?? models.find((m) => m.loaded)?.name ?? null;
    hint.textContent = selected ? `Model: ${selected}` : 'No model';
    if (!models.length) {
      list.replaceChildren(h('li', { class: 'models__empty', text: connection.ready ? 'No models listed.' : 'Models appear once connected.' }));
      return;
    }
    list.replaceChildren(...models.map((m) => {
      const meta = [m.architecture, m.parameters && `${formatCount(m.parameters)} params`, m.quantization,
        m.contextLength && `ctx ${formatCount(m.contextLength)}`, m.memoryBytes && formatBytes(m.memoryBytes)].filter(Boolean);
      const isSel = m.name === selected;
      return h('li', { class: 'models__item' },
        h('button', {
          type: 'button',
          class: `model${isSel ? ' model--selected' : ''}`,
          'aria-pressed': String(isSel),
          'aria-label': `Use model ${m.name} (${m.loaded ? 'loaded' : 'not loaded'})`,
          onclick: () => {
            controller.setModel(m.name);
            layout.choiceMade();
          },
        },
        h('span', { class: 'model__row' },
          h('span', { class: 'model__name', text: m.name }),
          h('span', { class: `badge ${m.loaded ? 'badge--ok' : 'badge--muted'}`, text: m.loaded ? 'loaded' : 'unloaded' })),
        meta.length ? h('span', { class: 'model__meta', text: meta.join(' · ') }) : null));
    }));
  };

  const reload = async () => {
    try {
      models = await fetchModels();
    } catch {
      models = [];
    }
    render();
  };

  connection.on('ready', reload);
  controller.on('conversation', render);
  render();
}
