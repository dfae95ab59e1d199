// markdown.js — model text to safe HTML: marked (GitHub-flavoured markdown) with raw HTML
// shown as text, code blocks highlighted by highlight.js, and the result sanitized by
// DOMPurify, so nothing the model writes can run script: no <script>, no on* handlers, no
// javascript: URLs, no forms or frames, no inline styles (the CSP forbids those anyway).
// After insertion, enhanceCodeBlocks adds each block's language label and copy button.
import DOMPurify from 'dompurify';
import { Marked } from 'marked';
import { h } from '../lib/dom.js';
import { icon } from '../lib/icons.js';
import hljs from './highlight.js';

const escapeHtml = (s) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]);

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    // raw HTML in model output is displayed, not interpreted
    html({ text }) {
      return escapeHtml(text);
    },
    code({ text, lang }) {
      const language = (lang ?? '').trim().split(/\s+/)[0].toLowerCase();
      const known = language && hljs.getLanguage(language);
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      const cls = known ? ` language-${language}` : '';
      return `<pre class="code-block" data-lang="${escapeHtml(language)}"><code class="hljs${cls}">${body}</code></pre>\n`;
    },
  },
});

const PURIFY = {
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'frame', 'object', 'embed', 'svg', 'math', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'srcset', 'formaction', 'action'],
  ALLOW_DATA_ATTR: false,
  ADD_ATTR: ['data-lang'],
};

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

/** Markdown source -> sanitized HTML string. */
export function renderMarkdown(src) {
  return DOMPurify.sanitize(marked.parse(src, { async: false }), PURIFY);
}

/** Adds a header (language, copy button) to each code block under root. */
export function enhanceCodeBlocks(root, copy) {
  for (const pre of root.querySelectorAll('pre.code-block')) {
    const code = pre.querySelector('code');
    const lang = pre.dataset.lang || 'text';
    const button = h('button', {
      type: 'button',
      class: 'code-block__copy',
      'aria-label': `Copy ${lang} code`,
      onclick: () => copy(code.textContent, button),
    }, icon('copy'), h('span', { class: 'code-block__copy-label', text: 'Copy' }));
    pre.prepend(h('div', { class: 'code-block__header' }, h('span', { class: 'code-block__lang', text: lang }), button));
  }
}
