// chatctl serve's pages in a real browser (Debian's Chromium, headless) with the network cut:
// every request that is not for the server on loopback is refused, and fails the check. The
// start page links what it promises and each link answers; GraphiQL renders from the copies
// inside chatctl and runs verifyToken with the sample token the start page offers.
//   node local-pages.js path/to/chatctl        (CHROMIUM: the browser; default /usr/bin/chromium)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { serve, launch, cutOff, check } = require('./serve');

const chatctl = process.argv[2];
if (!chatctl) {
  console.error('usage: node local-pages.js path/to/chatctl');
  process.exit(2);
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'browser-check-'));
  const { child, origin } = await serve(chatctl, dataDir);
  const browser = await launch();
  const offsite = [];
  const errors = [];
  try {
    // The cut: only the server's own origin is reachable.
    const context = await cutOff(browser, origin, offsite);
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));

    const start = await page.goto(`${origin}/`);
    check(start.status() === 200, 'GET / answers the start page');
    check((await page.title()) === 'Context Chat', 'the start page is titled Context Chat');
    const token = (await page.locator('pre.token').innerText()).trim();
    check(/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token), 'the start page offers a sample context token');
    const links = await page.locator('li a').evaluateAll((as) => as.map((a) => [a.textContent, a.getAttribute('href')]));
    const names = links.map(([name]) => name);
    for (const name of ['GraphiQL', 'verifyToken in GraphiQL', 'Outbox', 'Metrics', 'Context token keys', 'Platform API keys', 'Health']) {
      check(names.includes(name), `the start page links ${name}`);
    }
    for (const [name, href] of links.filter(([name]) => !name.includes('GraphiQL'))) {
      const answer = await page.request.get(new URL(href, origin).href);
      check(answer.status() === 200, `${name} (${href}) answers 200`);
    }

    // GraphiQL, from the start page's link: the query and the token are filled in.
    await page.getByRole('link', { name: 'verifyToken in GraphiQL' }).click();
    await page.waitForSelector('.graphiql-container', { timeout: 20000 });
    check(true, 'GraphiQL renders');
    await page.locator('.graphiql-execute-button').click();
    await page.waitForFunction(
      () => (document.querySelector('.result-window') || {}).innerText?.includes('"identity": "alex"'),
      null,
      { timeout: 20000 },
    );
    const result = await page.locator('.result-window').innerText();
    check(result.includes('"general"') && result.includes('"random"'), 'GraphiQL ran verifyToken: alex in general and random');

    // GraphiQL as GET /graphql shows it: the default query, and the schema from introspection.
    await page.goto(`${origin}/graphql`);
    await page.waitForSelector('.graphiql-container', { timeout: 20000 });
    const editor = await page.locator('.graphiql-query-editor').innerText();
    check(editor.includes('verifyToken'), 'GraphiQL opens with the verifyToken query');

    check(offsite.length === 0, `no request left loopback${offsite.length ? ': ' + offsite.join(', ') : ''}`);
    check(errors.length === 0, `no page errors${errors.length ? ': ' + errors.join('; ') : ''}`);
  } finally {
    await browser.close();
    child.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
