// composer.js — the message box: Enter sends, Shift+Enter adds a line (and Enter while an
// IME is composing does nothing), Esc stops a running generation from anywhere on the page.
// The box grows with its text up to a limit. Inputs are disabled unless connected; the
// send button becomes a stop button while generating.
import { byId } from '../lib/dom.js';

const MAX_HEIGHT_PX = 240;

export class Composer {
  #ctl;
  #form = byId('composer');
  #input = byId('composer-input');
  #send = byId('send-button');
  #stop = byId('stop-button');
  #connState = 'disconnected';

  constructor(controller, connection) {
    this.#ctl = controller;
    this.#form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.#input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.submit();
      }
    });
    this.#input.addEventListener('input', () => this.#autosize());
    this.#stop.addEventListener('click', () => controller.stop());
    document.addEventListener('keydown', (e) => {
      // a dialog's Esc closes the dialog; elsewhere Esc stops the generation
      if (e.key === 'Escape' && controller.busy && !document.querySelector('dialog[open]')) {
        e.preventDefault();
        controller.stop();
      }
    });
    connection.on('state', (s) => {
      this.#connState = s;
      this.#sync();
    });
    controller.on('busy', () => this.#sync());
    this.#sync();
  }

  get value() {
    return this.#input.value;
  }

  set value(text) {
    this.#input.value = text;
    this.#autosize();
  }

  focus() {
    this.#input.focus();
    this.#input.setSelectionRange(this.#input.value.length, this.#input.value.length);
  }

  submit() {
    if (this.#connState !== 'connected') return;
    if (this.#ctl.send(this.#input.value)) {
      this.value = '';
      this.#input.focus();
    }
  }

  #sync() {
    const online = this.#connState === 'connected' || this.#connState === 'generating';
    const busy = this.#ctl.busy;
    this.#input.disabled = !online;
    this.#send.disabled = !online || busy;
    this.#send.hidden = busy;
    this.#stop.hidden = !busy;
    this.#input.placeholder = online ? 'Message the model…' : 'Waiting for the server…';
    if (!busy && online && document.activeElement === document.body) this.#input.focus();
  }

  #autosize() {
    const ta = this.#input;
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight, MAX_HEIGHT_PX)}px`;
  }
}
