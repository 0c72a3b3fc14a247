import assert from 'node:assert/strict';
import { test } from 'node:test';
import { segments } from '../src/app/text';

test('a message with markup stays text: nothing becomes a link or an element', () => {
  const body = '<script>alert(1)</script><img src=x onerror=alert(2)>';
  assert.deepEqual(segments(body), [{ text: body }]);
});

test('http and https addresses become links, sentence punctuation stays outside', () => {
  assert.deepEqual(segments('See https://example.org/a?b=1, then http://x.test/.'), [
    { text: 'See ' },
    { href: 'https://example.org/a?b=1', text: 'https://example.org/a?b=1' },
    { text: ', then ' },
    { href: 'http://x.test/', text: 'http://x.test/' },
    { text: '.' },
  ]);
});

test('no other scheme is ever a link', () => {
  for (const body of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'vbscript:msgbox', 'file:///etc/passwd']) {
    assert.ok(segments(body).every((s) => !('href' in s)), body);
  }
  // An address that hides a script in its quotes ends at the quote.
  const s = segments('https://ok.test/"onmouseover="alert(1)');
  assert.deepEqual(s[0], { href: 'https://ok.test/', text: 'https://ok.test/' });
});

test('non-Latin text and addresses keep every character', () => {
  const body = 'Привет 👋 مرحبا 你好 https://例え.テスト/パス';
  const parts = segments(body);
  assert.equal(parts.map((p) => p.text).join(''), body);
  const link = parts.find((p) => 'href' in p) as { href: string };
  assert.equal(new URL(link.href).protocol, 'https:');
});
