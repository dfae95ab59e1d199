// history-view.js — the sidebar's conversation history: search (title and text), open,
// rename in place, export one (JSON or Markdown), delete; and for all: export, import JSON,
// clear. Deleting and clearing ask first.
import { byId, h } from '../lib/dom.js';
import { formatDate } from '../lib/format.js';
import { icon } from '../lib/icons.js';
import { exportConversations, parseImport } from '../io/export.js';
import { conversations } from '../store/conversations.js';
import { confirmDialog } from './confirm.js';
import { layout } from './layout.js';
import { toast } from './toast.js';

export function mountHistory(controller) {
  const list = byId('history-list');
  const empty = byId('history-empty');
  const search = byId('history-search');
  const importFile = byId('import-file');

  const render = () => {
    if (list.querySelector('.history__rename')) return;   // not while a name is being edited
    const q = search.value.trim();
    const entries = conversations.search(q);
    const current = controller.conversation.id;
    list.replaceChildren(...entries.map((e) => item(e, e.id === current)));
    empty.hidden = entries.length > 0;
    empty.textContent = q ? 'No conversation matches.' : 'No conversations yet.';
  };

  const item = (e, active) => {
    const open = h('button', {
      type: 'button',
      class: 'history__open',
      'aria-current': active ? 'true' : undefined,
      onclick: () => {
        controller.open(e.id);
        layout.choiceMade();
      },
    }, h('span', { class: 'history__title', text: e.title }), h('span', { class: 'history__date', text: formatDate(e.updatedAt) }));
    const li = h('li', { class: `history__item${active ? ' history__item--active' : ''}`, dataset: { id: e.id } }, open,
      h('div', { class: 'history__actions' },
        h('button', { type: 'button', class: 'icon-button icon-button--small', 'aria-label': `Rename “${e.title}”`, title: 'Rename', onclick: () => rename(li, e) }, icon('rename')),
        h('button', { type: 'button', class: 'icon-button icon-button--small', 'aria-label': `Export “${e.title}” as JSON`, title: 'Export as JSON', onclick: () => exportOne(e.id, 'json') }, icon('download')),
        h('button', { type: 'button', class: 'icon-button icon-button--small', 'aria-label': `Export “${e.title}” as Markdown`, title: 'Export as Markdown', onclick: () => exportOne(e.id, 'md') }, icon('markdown')),
        h('button', { type: 'button', class: 'icon-button icon-button--small icon-button--danger', 'aria-label': `Delete “${e.title}”`, title: 'Delete', onclick: () => del(e) }, icon('trash'))));
    return li;
  };

  const rename = (li, e) => {
    const input = h('input', { type: 'text', class: 'input history__rename', 'aria-label': 'New name', maxlength: 200 });
    input.value = e.title;
    let done = false;
    const finish = (save) => {
      if (done) return;
      done = true;
      input.remove();
      if (save && input.value.trim()) {
        conversations.rename(e.id, input.value);
        if (controller.conversation.id === e.id) controller.refreshTitle();
      }
      render();
    };
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') finish(true);
      else if (ev.key === 'Escape') {
        ev.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener('blur', () => finish(true));
    li.replaceChildren(input);
    input.focus();
    input.select();
  };

  const exportOne = (id, format) => {
    const conv = conversations.get(id);
    if (conv) exportConversations([conv], format, conv.title);
  };

  const del = async (e) => {
    if (!(await confirmDialog('Delete this conversation?', `“${e.title}” will be removed from this browser.`))) return;
    conversations.remove(e.id);
    controller.forget(e.id);
    toast('Conversation deleted');
  };

  byId('export-all-json').addEventListener('click', () => exportAll('json'));
  byId('export-all-md').addEventListener('click', () => exportAll('md'));
  const exportAll = (format) => {
    const all = conversations.all();
    if (!all.length) toast('There is nothing to export yet');
    else exportConversations(all, format, 'quarrel-conversations');
  };

  byId('import-button').addEventListener('click', () => importFile.click());
  importFile.addEventListener('change', async () => {
    const file = importFile.files[0];
    importFile.value = '';
    if (!file) return;
    try {
      const n = conversations.importMany(parseImport(await file.text()));
      toast(n ? `Imported ${n} conversation${n === 1 ? '' : 's'}` : 'No valid conversation in that file', n ? 'info' : 'error');
    } catch (err) {
      toast(`Import failed: ${err.message}`, 'error');
    }
  });

  byId('clear-all').addEventListener('click', async () => {
    if (!conversations.list().length) return;
    if (!(await confirmDialog('Clear all history?', 'Every conversation stored in this browser will be deleted. Export them first if you want to keep them.', 'Clear all'))) return;
    conversations.clear();
    controller.forget(null);
    toast('History cleared');
  });

  search.addEventListener('input', render);
  conversations.on('change', render);
  controller.on('conversation', render);
  render();
}
