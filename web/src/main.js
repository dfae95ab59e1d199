// main.js — the UI's entry point: builds the connection and the chat controller, mounts
// every view on the skeleton in index.html, and starts connecting. Module map:
//   lib/    DOM helpers, events, storage, formatting       net/   connection state machine,
//   store/  settings, presets, conversations, API key              WebSocket/SSE protocol
//   chat/   controller (send/stream/stop/edit), prompt      io/    export and import
//   ui/     one file per view (chat, message, composer, sidebar parts, dialogs, theme)
import { onStorageError } from './lib/storage.js';
import { ChatController } from './chat/controller.js';
import { Connection } from './net/connection.js';
import { mountKeyDialog } from './ui/key-dialog.js';
import { ChatView } from './ui/chat-view.js';
import { Composer } from './ui/composer.js';
import { mountHistory } from './ui/history-view.js';
import { layout } from './ui/layout.js';
import { mountModels } from './ui/models-view.js';
import { mountPresetsBar } from './ui/presets-bar.js';
import { mountSettings } from './ui/settings-panel.js';
import { mountStatusBadge } from './ui/status-badge.js';
import { theme } from './ui/theme.js';
import { toast } from './ui/toast.js';
import { byId } from './lib/dom.js';

let storageWarned = false;
onStorageError(() => {
  if (storageWarned) return;
  storageWarned = true;
  toast('This browser refused to store more (storage full or disabled): export and delete old conversations.', 'error', 8000);
});

theme.init();
layout.init();

const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
// ?heartbeat_ms=N shortens the heartbeat (the tests use it); a link is declared dead after 2.5 N
const heartbeatMs = Math.max(200, Number(new URLSearchParams(location.search).get('heartbeat_ms')) || 10000);
const connection = new Connection({ wsUrl, heartbeatMs, deadMs: heartbeatMs * 2.5 });
const controller = new ChatController(connection);

const chatView = new ChatView(controller);
const composer = new Composer(controller, connection);
mountStatusBadge(connection);
mountPresetsBar(composer);
mountHistory(controller);
mountModels(controller, connection);
mountSettings();
mountKeyDialog(connection);

byId('new-chat').addEventListener('click', () => {
  controller.newChat();
  layout.choiceMade();
  composer.focus();
});

const themeButton = byId('theme-toggle');
const syncThemeButton = (t) => {
  themeButton.setAttribute('aria-label', t === 'dark' ? 'Switch to the light theme' : 'Switch to the dark theme');
  themeButton.title = themeButton.getAttribute('aria-label');
};
themeButton.addEventListener('click', () => theme.toggle());
theme.on('change', syncThemeButton);
syncThemeButton(theme.effective);

connection.on('error', (ev) => toast(`Server error: ${ev.message}`, 'error'));
connection.on('transport', (t) => {
  if (t === 'sse') toast('WebSockets seem blocked here: streaming over Server-Sent Events instead.');
});
controller.on('busy', (busy) => {
  if (busy) chatView.scrollToBottom(false);
});

connection.start();
