/**
 * A message's text as DOM nodes: text nodes, and links for the http(s) URLs in it. Nothing a
 * message holds is ever parsed as HTML; a link's address is checked by the URL parser and
 * only http: and https: become links.
 */
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`]+/gi;
/** Punctuation that ends a sentence rather than the address. */
const TRAILING = /[.,;:!?)\]}'"]+$/;

/** `text` split into plain strings and links, in order. */
export function segments(text: string): ({ text: string } | { href: string; text: string })[] {
  const out: ({ text: string } | { href: string; text: string })[] = [];
  let at = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    let raw = match[0];
    const trail = TRAILING.exec(raw)?.[0] ?? '';
    raw = raw.slice(0, raw.length - trail.length);
    const start = match.index ?? 0;
    let href: string | null = null;
    try {
      const url = new URL(raw);
      if (url.protocol === 'http:' || url.protocol === 'https:') href = url.href;
    } catch {
      href = null;
    }
    if (!href) continue;
    if (start > at) out.push({ text: text.slice(at, start) });
    out.push({ href, text: raw });
    at = start + raw.length;
  }
  if (at < text.length) out.push({ text: text.slice(at) });
  return out;
}

/** The DOM nodes of `text` (for a message's paragraph). */
export function linkified(doc: Document, text: string): Node[] {
  return segments(text).map((s) => {
    if (!('href' in s)) return doc.createTextNode(s.text);
    const a = doc.createElement('a');
    a.href = s.href;
    a.textContent = s.text;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow ugc';
    return a;
  });
}
