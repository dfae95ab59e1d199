// status-badge.js — the connection state in the header (role=status, so changes are
// announced): disconnected, connecting, connected, generating, with "(SSE)" when WebSockets
// are blocked; while disconnected, a countdown to the next retry (not announced).
import { byId } from '../lib/dom.js';

const LABELS = { disconnected: 'Disconnected', connecting: 'Connecting…', connected: 'Connected', generating: 'Generating…' };

export function mountStatusBadge(connection) {
  const badge = byId('conn-status');
  const label = byId('conn-label');
  const retry = byId('conn-retry');
  const render = () => {
    const s = connection.state;
    badge.dataset.state = s;
    badge.dataset.transport = connection.transport;
    label.textContent = LABELS[s] + (s !== 'disconnected' && connection.transport === 'sse' ? ' (SSE)' : '');
    badge.title = connection.transport === 'sse' ? 'WebSockets seem blocked: streaming over Server-Sent Events' : 'Streaming over WebSocket';
  };
  const countdown = () => {
    const left = Math.ceil((connection.nextRetryAt - Date.now()) / 1000);
    retry.textContent = connection.state === 'disconnected' && left > 0 ? ` · retry in ${left} s` : '';
  };
  setInterval(countdown, 1000);
  connection.on('state', () => {
    render();
    countdown();
  });
  connection.on('retry', countdown);
  connection.on('transport', render);
  render();
}
