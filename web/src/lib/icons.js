// icons.js — the small line icons used by dynamically built controls (24×24, stroked with
// currentColor by styles/base.css). Static icons live directly in index.html.
import { h } from './dom.js';

const PATHS = {
  copy: 'M9 9h10v10H9zM5 15V5h10',
  check: 'M5 12l5 5 9-10',
  edit: 'M4 20h4L19 9l-4-4L4 16zM13 7l4 4',
  regenerate: 'M20 12a8 8 0 1 1-2.3-5.6M20 4v5h-5',
  trash: 'M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13',
  rename: 'M4 20h16M6 16l9-9 3 3-9 9H6z',
  download: 'M12 4v11M7 10l5 5 5-5M5 20h14',
  markdown: 'M3 6h18v12H3zM6 15V9l3 3 3-3v6M15 12l2.5 3 2.5-3M17.5 9v6',
  chip: 'M7 7h10v10H7zM9 3v4M15 3v4M9 17v4M15 17v4M3 9h4M3 15h4M17 9h4M17 15h4',
};

export function icon(name) {
  return h('svg:svg', { class: 'icon', viewBox: '0 0 24 24', 'aria-hidden': 'true' }, h('svg:path', { d: PATHS[name] }));
}
