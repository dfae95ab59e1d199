// clipboard.js — copy text, with a fallback for pages that are not a secure context (the
// async Clipboard API needs https or localhost), and a short "Copied" state on the button.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'visually-hidden';
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

/** Copies and flags `button` (data-copied) for a moment. */
export async function copyWithFeedback(text, button) {
  const ok = await copyText(text);
  if (!button) return ok;
  button.dataset.copied = ok ? 'yes' : 'failed';
  const label = button.querySelector('[class$="-label"]');
  const before = label?.textContent;
  if (label) label.textContent = ok ? 'Copied' : 'Copy failed';
  setTimeout(() => {
    delete button.dataset.copied;
    if (label) label.textContent = before;
  }, 1500);
  return ok;
}
