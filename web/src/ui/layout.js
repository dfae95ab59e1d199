// layout.js — the sidebar's two forms. Wide screens: a column that can be collapsed (the
// choice is remembered). Narrow screens (< 768 px, phones): a drawer over the chat, closed
// by default, closed again by its close button, the backdrop, Esc, or a choice made in it.
// A hidden sidebar is `inert`, so it leaves the tab order.
import { byId } from '../lib/dom.js';
import { load, save } from '../lib/storage.js';

const narrow = window.matchMedia('(max-width: 767.98px)');

class Layout {
  #sidebar = byId('sidebar');
  #toggle = byId('sidebar-toggle');
  #backdrop = byId('sidebar-backdrop');
  #collapsed = load('sidebarCollapsed', false);   // wide screens
  #drawerOpen = false;                             // narrow screens

  init() {
    this.#toggle.addEventListener('click', () => (this.isNarrow ? this.setDrawer(!this.#drawerOpen) : this.setCollapsed(!this.#collapsed)));
    byId('sidebar-close').addEventListener('click', () => (this.isNarrow ? this.setDrawer(false) : this.setCollapsed(true)));
    this.#backdrop.addEventListener('click', () => this.setDrawer(false));
    this.#sidebar.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.isNarrow && this.#drawerOpen) {
        e.stopPropagation();
        this.setDrawer(false);
        this.#toggle.focus();
      }
    });
    narrow.addEventListener('change', () => {
      this.#drawerOpen = false;
      this.#apply();
    });
    this.#apply();
  }

  get isNarrow() {
    return narrow.matches;
  }

  /** A choice in the sidebar was made: on phones, get out of the way. */
  choiceMade() {
    if (this.isNarrow) this.setDrawer(false);
  }

  setDrawer(open) {
    this.#drawerOpen = open;
    this.#apply();
    if (open) byId('new-chat').focus();
  }

  setCollapsed(collapsed) {
    this.#collapsed = collapsed;
    save('sidebarCollapsed', collapsed);
    this.#apply();
  }

  #apply() {
    const body = document.body;
    const visible = this.isNarrow ? this.#drawerOpen : !this.#collapsed;
    body.classList.toggle('app--narrow', this.isNarrow);
    body.classList.toggle('app--drawer-open', this.isNarrow && this.#drawerOpen);
    body.classList.toggle('app--sidebar-collapsed', !this.isNarrow && this.#collapsed);
    this.#sidebar.inert = !visible;
    this.#backdrop.hidden = !(this.isNarrow && this.#drawerOpen);
    this.#toggle.setAttribute('aria-expanded', String(visible));
  }
}

export const layout = new Layout();
