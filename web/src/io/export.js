// export.js — conversations out of and into the browser: JSON (lossless, re-importable)
// and Markdown (for reading), downloaded as files; JSON import.
//   JSON: {"format": "quarrel.conversations", "version": 1, "exported_at": ISO-8601,
//          "conversations": [conversation as in store/conversations.js, ...]}
// Import also takes a bare list of conversations or one conversation object.
export const EXPORT_FORMAT = 'quarrel.conversations';

export function toJson(convs) {
  return `${JSON.stringify({ format: EXPORT_FORMAT, version: 1, exported_at: new Date().toISOString(), conversations: convs }, null, 2)}\n`;
}

const ROLE_TITLES = { user: 'User', assistant: 'Assistant' };

export function toMarkdown(convs) {
  return convs
    .map((c) => {
      const head = [`# ${c.title}`, '', `_${new Date(c.createdAt).toISOString()}${c.model ? ` · model: ${c.model}` : ''}_`, ''];
      const body = c.messages.map((m) => `## ${ROLE_TITLES[m.role]}\n\n${m.content.trim()}\n`);
      return [...head, ...body].join('\n');
    })
    .join('\n---\n\n');
}

/** The conversations in an imported file's text; throws an Error a person can act on. */
export function parseImport(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`the file is not valid JSON (${e.message})`);
  }
  if (Array.isArray(data)) return data;
  if (data?.format === EXPORT_FORMAT && Array.isArray(data.conversations)) return data.conversations;
  if (data && Array.isArray(data.messages)) return [data];
  throw new Error('the file holds no conversations (expected a Quarrel export)');
}

export function safeFileName(s) {
  return (s.replace(/[^\p{L}\p{N}._ -]+/gu, '').trim().replace(/\s+/g, '-').slice(0, 60) || 'conversation').toLowerCase();
}

export function download(fileName, mime, text) {
  const url = URL.createObjectURL(new Blob([text], { type: mime }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function exportConversations(convs, format, baseName) {
  const stamp = new Date().toISOString().slice(0, 10);
  if (format === 'json') download(`${safeFileName(baseName)}-${stamp}.json`, 'application/json', toJson(convs));
  else download(`${safeFileName(baseName)}-${stamp}.md`, 'text/markdown', toMarkdown(convs));
}
