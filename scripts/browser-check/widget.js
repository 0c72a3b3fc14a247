// The chat widget in a real browser (Debian's Chromium, headless, the network cut to loopback)
// against `chatctl serve` with embedded defaults: what people chatting in it would notice.
//   node widget.js path/to/chatctl   (CHROMIUM: the browser; SCREENSHOT: where to save the demo's picture)
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const axe = require('axe-core');
const { serve, stop, launch, cutOff, check } = require('./serve');

const chatctl = process.argv[2];
if (!chatctl) {
  console.error('usage: node widget.js path/to/chatctl');
  process.exit(2);
}
const WAIT = { timeout: 15000 };

/** The widget of `identity` on `page` (a `context-chat` element; Playwright sees into its shadow root). */
const widget = (page, identity) => page.locator(`context-chat[data-identity="${identity}"]`);
const messageBox = (chat) => chat.getByRole('textbox', { name: 'Message' });
const log = (chat) => chat.getByRole('log');

async function send(chat, text) {
  await messageBox(chat).fill(text);
  await chat.getByRole('button', { name: 'Send' }).click();
  await log(chat).getByText(text.slice(0, 60), { exact: false }).first().waitFor(WAIT);
}

/** Emails and texts in the outbox, oldest first, as text. */
function outbox(dataDir) {
  const dir = path.join(dataDir, 'outbox');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.eml') || f.endsWith('.sms'))
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
}

async function until(what, condition, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > end) throw new Error(`not so within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A Twilio access token for `identity` (a dev context token traded at the API, as the widget does). */
async function accessToken(origin, identity, contexts) {
  const q = new URLSearchParams({ identity, context: contexts.join(',') });
  const { token } = await (await fetch(`${origin}/token?${q}`, { method: 'POST' })).json();
  const answer = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation($t: ID!) { issueChatToken(deviceId: "browser-check", token: $t) { token } }',
      variables: { t: token },
    }),
  });
  return (await answer.json()).data.issueChatToken.token;
}

async function localApi(origin, bearer, method, route, body) {
  const answer = await fetch(`${origin}/local/v1/${route}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return answer.status === 204 ? null : answer.json();
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'widget-check-'));
  const env = { CHAT_NOTIFY_WINDOW_SECS: '1' };
  let server = await serve(chatctl, dataDir, { env });
  const origin = server.origin;
  const browser = await launch();
  const offsite = [];
  const errors = [];
  const consoleText = [];
  let serverDown = false;
  const watch = (page) => {
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      consoleText.push(m.text());
      // While the server is down (on purpose, below) the browser says its requests failed.
      const dropped = serverDown && /Failed to load resource: net::ERR_/.test(m.text());
      if (m.type() === 'error' && !dropped && !m.text().includes('favicon')) errors.push(`console: ${m.text()}`);
    });
    return page;
  };
  try {
    const context = await cutOff(browser, origin, offsite, { viewport: { width: 1100, height: 900 } });
    const page = watch(await context.newPage());

    // The demo: alex and sam side by side in general.
    await page.goto(`${origin}/`);
    const alex = widget(page, 'alex');
    const sam = widget(page, 'sam');
    for (const [name, chat] of [['alex', alex], ['sam', sam]]) {
      await chat.getByRole('status').getByText('Connected').waitFor(WAIT);
      check((await chat.getByRole('heading').innerText()) === 'general', `${name}'s widget connects and opens general`);
    }
    const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime);
    console.log(`measured: first contentful paint of the demo page ${Math.round(paint)} ms (budget 1000 ms; a figure, not a check)`);

    await send(alex, 'Hello sam, shipment 42 left the port.');
    const seen = log(sam).locator('.msg').filter({ hasText: 'Hello sam, shipment 42 left the port.' });
    await seen.waitFor(WAIT);
    check((await seen.locator('.author').innerText()) === 'alex', "sam sees alex's message live, with its author");
    check(/^\d{2}:\d{2}/.test(await seen.locator('time').innerText()), 'and its time');
    check((await log(alex).locator('.msg.mine .author').first().innerText()) === 'You', "alex's own message is marked as his");

    // Typing shows on the other side.
    await messageBox(sam).click();
    await page.keyboard.type('Gre', { delay: 20 });
    await alex.getByText('sam is typing…').waitFor(WAIT);
    check(true, 'sam typing shows in alex\'s widget');
    await page.keyboard.type('at, thanks!');
    await page.keyboard.press('Enter');
    await log(alex).getByText('Great, thanks!').waitFor(WAIT);
    check(true, "Enter sends sam's message and alex sees it");
    if (process.env.SCREENSHOT) {
      await messageBox(alex).fill('Perfect, see you at the warehouse');
      await page.locator('section[aria-labelledby="demo"]').screenshot({ path: process.env.SCREENSHOT });
      await messageBox(alex).fill('');
    }
    await until('the typing line clears', async () => (await alex.locator('.typing').innerText()) === '', 8000);

    // Markup stays text; links are links, safely.
    const hostile = '<script>window.__owned = 1</script><img src=x onerror="window.__owned = 2"> see https://example.org/docs and javascript:alert(1)';
    await send(alex, hostile);
    const shown = log(sam).locator('.msg').filter({ hasText: '<script>window.__owned = 1</script>' });
    await shown.waitFor(WAIT);
    check((await shown.locator('.text').innerText()) === hostile, 'a message with <script> shows as its text');
    check((await shown.locator('img, script').count()) === 0, 'and makes no element');
    check((await page.evaluate(() => window.__owned)) === undefined, 'and runs nothing');
    const links = await shown.locator('a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.rel, a.target]));
    check(
      JSON.stringify(links) === JSON.stringify([['https://example.org/docs', 'noopener noreferrer nofollow ugc', '_blank']]),
      'the https address is a link (noopener, new tab); javascript: is not',
    );

    // Long and non-Latin messages keep every character.
    const long = 'مرحبا بالعالم — 你好，世界 — Привет, мир — '.repeat(40).slice(0, 1600);
    await send(sam, long);
    const longShown = log(alex).locator('.msg').filter({ hasText: 'مرحبا بالعالم' }).last();
    await longShown.waitFor(WAIT);
    check((await longShown.locator('.text').evaluate((p) => p.textContent)) === long, 'a 1,600-character non-Latin message arrives whole');

    // Unread counts and the read horizon: sam writes in random while alex reads general.
    await sam.getByRole('button', { name: /^random/ }).click();
    await sam.getByRole('heading', { name: 'random' }).waitFor(WAIT);
    await send(sam, 'Anyone in random?');
    const randomButton = alex.getByRole('button', { name: /^random/ });
    await until('alex sees 1 unread in random', async () => (await randomButton.innerText()).includes('1 unread message'));
    check(true, "alex's room list shows 1 unread message in random");
    const alexToken = await accessToken(origin, 'alex', ['general', 'random']);
    const before = (await localApi(origin, alexToken, 'GET', 'conversations')).conversations.find((c) => c.context === 'random');
    check(before.unread === 1, 'the service counts it unread for alex too');
    await randomButton.click();
    await log(alex).getByText('Anyone in random?').waitFor(WAIT);
    await until('the badge clears', async () => !(await randomButton.innerText()).includes('unread'));
    check(true, 'opening random clears the unread count');
    const after = await until('the horizon moves', async () => {
      const c = (await localApi(origin, alexToken, 'GET', 'conversations')).conversations.find((c) => c.context === 'random');
      return c.unread === 0 ? c : null;
    });
    check(after.lastReadIndex === before.lastMessage.index, "reading moved alex's read horizon to the newest message");

    // History after reload, and paging back.
    for (let i = 1; i <= 35; i++) await localApi(origin, alexToken, 'POST', 'conversations/general/messages', { body: `numbered ${i}` });
    await page.reload();
    await alex.getByRole('status').getByText('Connected').waitFor(WAIT);
    await log(alex).getByText('numbered 35').waitFor(WAIT);
    check((await log(alex).getByText('Hello sam, shipment 42').count()) === 0, 'after a reload the newest page shows (30 messages)');
    await alex.getByRole('button', { name: 'Earlier messages' }).click();
    await log(alex).getByText('Hello sam, shipment 42 left the port.').waitFor(WAIT);
    check(true, 'Earlier messages pages back to the first message');
    const indexes = await log(alex).locator('.msg').evaluateAll((ms) => ms.map((m) => Number(m.dataset.index)));
    check(indexes.every((v, i) => i === 0 || v > indexes[i - 1]), 'in order, each once');

    // A title the platform gives a room (updateContext) is what the rooms show.
    const platformArgs = ['platform', '--api-url', `${origin}/graphql`, '--token-url', `${origin}/oauth/token`, '--data-dir', dataDir];
    execFileSync(chatctl, [...platformArgs, 'update-context', '--context', 'random', '--title', 'Random things'], { stdio: 'pipe' });
    await page.reload();
    await alex.getByRole('status').getByText('Connected').waitFor(WAIT);
    await alex.getByRole('button', { name: /^Random things/ }).waitFor(WAIT);
    check(true, "a room's title from updateContext shows in the widget's list");

    // Accessibility: axe-core on the demo page, widgets included.
    // Through the debugging protocol: the page's policy allows no inline script, rightly.
    await page.evaluate(`${axe.source}; undefined`);
    const found = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations);
    const serious = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    check(serious.length === 0, `axe-core finds no serious violation${serious.length ? ': ' + serious.map((v) => `${v.id} (${v.nodes.length})`).join(', ') : ''}`);
    if (found.length) console.log(`axe-core, minor: ${found.map((v) => `${v.id}/${v.impact}`).join(', ')}`);

    // Keyboard only: a page of its own for kim, from the first Tab to a sent message.
    const kim = watch(await context.newPage());
    await kim.goto(`${origin}/chat?identity=kim&contexts=general,random&room=general`);
    const kimChat = widget(kim, 'kim');
    await kimChat.getByRole('status').getByText('Connected').waitFor(WAIT);
    let focused = '';
    for (let i = 0; i < 20 && focused !== 'textbox:Message'; i++) {
      await kim.keyboard.press('Tab');
      focused = await kim.evaluate(() => {
        let el = document.activeElement;
        while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
        return el ? `${el.tagName === 'TEXTAREA' ? 'textbox' : el.tagName}:${el.getAttribute('aria-label') ?? el.textContent}` : '';
      });
    }
    check(focused === 'textbox:Message', 'Tab reaches the message box');
    await kim.keyboard.type('Typed without a mouse');
    await kim.keyboard.press('Enter');
    await log(kimChat).getByText('Typed without a mouse').waitFor(WAIT);
    check(true, 'Enter sends it');
    await kim.keyboard.press('Shift+Tab');
    await kim.keyboard.press('Shift+Tab');
    for (let i = 0; i < 6; i++) {
      const name = await kim.evaluate(() => document.querySelector('context-chat').shadowRoot.activeElement?.textContent ?? '');
      if (name.startsWith('Random things')) break;
      await kim.keyboard.press('Shift+Tab');
    }
    await kim.keyboard.press('Enter');
    await kimChat.getByRole('heading', { name: 'Random things' }).waitFor(WAIT);
    check(true, 'a room is chosen with the keyboard');
    await kim.close();

    // The launcher, in German: nothing but the loader until it is pressed.
    const launcherPage = watch(await context.newPage());
    const loaded = [];
    launcherPage.on('request', (r) => r.url().includes('/widget/') && loaded.push(new URL(r.url()).pathname));
    await launcherPage.goto(`${origin}/chat?identity=kim&contexts=general&launcher=true&lang=de`);
    const open = widget(launcherPage, 'kim').getByRole('button', { name: 'Chat öffnen' });
    await open.waitFor(WAIT);
    check(!loaded.some((p) => p.endsWith('/context-chat-app.js')), 'a closed widget loads the loader only');
    await open.click();
    const german = widget(launcherPage, 'kim');
    await german.getByRole('status').getByText('Verbunden').waitFor(WAIT);
    check(loaded.some((p) => p.endsWith('/context-chat-app.js')), 'pressing the launcher loads the chat and connects');
    const germanNames = (await german.getByRole('textbox', { name: 'Nachricht' }).isVisible()) && (await german.getByRole('button', { name: 'Senden' }).isVisible());
    check(germanNames, 'in German: the message box is "Nachricht", its button "Senden"');
    await german.getByRole('button', { name: 'Schließen' }).click();
    await open.waitFor(WAIT);
    check(true, 'closing shows the launcher again');
    await launcherPage.close();

    // The cloud's Twilio chunk (built into widget/dist by scripts/test) runs in the browser and
    // hands over its transport. Evaluated through the debugging protocol, as its own origin is the CDN.
    const twilioChunk = path.join(__dirname, '..', '..', 'widget', 'dist', 'context-chat-twilio.js');
    if (fs.existsSync(twilioChunk)) {
      const probe = watch(await context.newPage());
      await probe.goto(`${origin}/chat?identity=kim&contexts=general&launcher=true`);
      await probe.evaluate(`${fs.readFileSync(twilioChunk, 'utf8')}; undefined`);
      const kind = await probe.evaluate(() => {
        const key = Object.getOwnPropertySymbols(globalThis).find((s) => String(s).startsWith('Symbol(context-chat@'));
        return typeof globalThis[key]?.values.get('twilio');
      });
      check(kind === 'function', "the Twilio chunk (Twilio's Conversations SDK) runs in Chromium and registers its transport");
      await probe.close();
    }

    // A reader (the token's roles): the room shows, the message box does not take input.
    const readerPage = watch(await context.newPage());
    await readerPage.goto(`${origin}/chat?identity=ann&contexts=general&roles=general:reader`);
    const ann = widget(readerPage, 'ann');
    await ann.getByRole('status').getByText('Connected').waitFor(WAIT);
    await ann.getByText('You can read this room, but not write in it.').waitFor(WAIT);
    check(await messageBox(ann).isDisabled(), "a reader's room is read-only in the widget");
    await readerPage.close();

    // An expired context token: the widget asks the page for a fresh one and chats on.
    const late = watch(await context.newPage());
    let asked = 0;
    late.on('request', (r) => r.url().startsWith(`${origin}/token?`) && asked++);
    await late.goto(`${origin}/chat?identity=lee&contexts=general&expired=true`);
    const leeChat = widget(late, 'lee');
    await leeChat.getByRole('status').getByText('Connected').waitFor(WAIT);
    check(asked === 1, 'an expired context token: getContextToken() is called once');
    await send(leeChat, 'Here with a fresh token');
    check(true, 'and chat goes on');
    await late.close();

    // Renewal: a minute before the access token expires (the page's clock runs fast here), the
    // widget asks the page for a fresh context token, trades it, and chats on.
    const renewing = watch(await context.newPage());
    const calls = { token: 0, issue: 0 };
    renewing.on('request', (r) => {
      if (r.url().startsWith(`${origin}/token?`)) calls.token++;
      if (r.url() === `${origin}/graphql` && /issueChatToken/.test(r.postData() ?? '')) calls.issue++;
    });
    await renewing.clock.install();
    await renewing.goto(`${origin}/chat?identity=lee&contexts=general`);
    const leeAgain = widget(renewing, 'lee');
    await leeAgain.getByRole('status').getByText('Connected').waitFor(WAIT);
    check(calls.issue === 1 && calls.token === 0, 'one access token at start, from the token the page gave');
    await renewing.clock.fastForward('23:59:30'); // the default lifetime is a day (twilio/accessTokenTTL)
    await until('a renewal', () => calls.issue === 2 && calls.token === 1);
    check(true, 'before it expires: getContextToken(), then issueChatToken');
    await send(leeAgain, 'Still here after renewing');
    check(true, 'and chat goes on with the renewed token');
    await renewing.close();

    // Notifications: sam subscribes by email with the code from the outbox, then goes offline.
    const samPage = watch(await context.newPage());
    await samPage.goto(`${origin}/chat?identity=sam&contexts=general,random&room=general`);
    const samChat = widget(samPage, 'sam');
    await samChat.getByRole('status').getByText('Connected').waitFor(WAIT);
    await samChat.getByText('Notifications').click();
    await samChat.getByRole('textbox', { name: 'Email address' }).fill('not an address');
    await samChat.getByRole('button', { name: 'Notify me by email' }).click();
    const valid = await samChat.getByRole('textbox', { name: 'Email address' }).evaluate((input) => input.validity.valid);
    check(!valid && outbox(dataDir).length === 0, 'a malformed address is refused before anything is sent');
    await samChat.getByRole('textbox', { name: /^Phone number/ }).fill('12345');
    await samChat.getByRole('button', { name: 'Notify me by text' }).click();
    const refusal = await until('the API refuses the number', async () => (await samChat.locator('details [role=status]').innerText()).trim());
    console.log(`the widget says: ${refusal}`);
    check(/E\.164|phone number/i.test(refusal), "a number the API refuses: the API's reason is shown");
    await samChat.getByRole('textbox', { name: 'Email address' }).fill('sam@example.org');
    await samChat.getByRole('button', { name: 'Notify me by email' }).click();
    await samChat.getByText('We sent a code to sam@example.org').waitFor(WAIT);
    const mail = await until('the code email', () => outbox(dataDir).find((m) => m.includes('To: sam@example.org') && /code/i.test(m)));
    const code = /Your confirmation code: (\d+)/.exec(mail)[1];
    const wrong = code.replace(/\d$/, (d) => String((Number(d) + 1) % 10));
    await samChat.getByRole('textbox', { name: 'Code' }).first().fill(wrong);
    await samChat.getByRole('button', { name: 'Confirm' }).first().click();
    await samChat.getByText('That code is not right, or has expired.').waitFor(WAIT);
    check(true, 'a wrong code is said to be wrong');
    await samChat.getByRole('textbox', { name: 'Code' }).first().fill(code);
    await samChat.getByRole('button', { name: 'Confirm' }).first().click();
    await samChat.getByText('You will get an email about new messages in this room.').waitFor(WAIT);
    check(true, 'the right code subscribes sam to general by email');

    // And by text: the embedded Verify texts a code to the outbox.
    await samChat.getByRole('textbox', { name: /^Phone number/ }).fill('+15551234567');
    await samChat.getByRole('button', { name: 'Notify me by text' }).click();
    await samChat.getByText('We sent a code to +15551234567').waitFor(WAIT);
    const text = await until('the code text', () => outbox(dataDir).find((m) => m.includes('To: +15551234567') && /verification code/.test(m)));
    await samChat.getByRole('textbox', { name: 'Code' }).last().fill(/verification code is: (\d+)/.exec(text)[1]);
    await samChat.getByRole('button', { name: 'Confirm' }).last().click();
    await samChat.getByText('You will get a text about new messages in this room.').waitFor(WAIT);
    check(true, 'and by text, with the code texted to the number');

    // Revocation: the platform revokes sam; sam's open widget says the access ended.
    const platform = ['platform', '--api-url', `${origin}/graphql`, '--token-url', `${origin}/oauth/token`, '--data-dir', dataDir];
    const mailsBefore = outbox(dataDir).length;
    await page.close(); // the demo page's sam goes offline, as does its alex
    await samPage.close(); // sam is offline now
    const alexPage = watch(await context.newPage());
    await alexPage.goto(`${origin}/chat?identity=alex&contexts=general,random&room=general`);
    await widget(alexPage, 'alex').getByRole('status').getByText('Connected').waitFor(WAIT);
    await send(widget(alexPage, 'alex'), 'Sam, the trucks are here.');
    const notice = await until(
      'an email to sam about the new message',
      () => outbox(dataDir).slice(mailsBefore).find((m) => m.includes('To: sam@example.org')),
      20000,
    );
    check(/general/.test(notice), 'sam, offline and subscribed, gets an email about general');

    const samAgain = watch(await context.newPage());
    await samAgain.goto(`${origin}/chat?identity=sam&contexts=general&room=general`);
    const samLive = widget(samAgain, 'sam');
    await samLive.getByRole('status').getByText('Connected').waitFor(WAIT);

    // Network loss: the server goes away and comes back; nothing is lost or shown twice.
    const port = new URL(origin).port;
    serverDown = true;
    await stop(server.child);
    await samLive.getByRole('status').getByText('Connection lost. Reconnecting…').waitFor(WAIT);
    check(true, 'a dropped connection is said');
    server = await serve(chatctl, dataDir, { port, env });
    const bearer = await accessToken(origin, 'alex', ['general', 'random']);
    const posted = await localApi(origin, bearer, 'POST', 'conversations/general/messages', { body: 'Sent while sam reconnected' });
    check(Number.isInteger(posted?.message?.index), `alex posts while sam reconnects (${JSON.stringify(posted)?.slice(0, 120)})`);
    await samLive.getByRole('status').getByText('Connected').waitFor({ timeout: 30000 });
    serverDown = false;
    await log(samLive).getByText('Sent while sam reconnected').waitFor(WAIT).catch(async (e) => {
      const said = await samLive.evaluate((el) => [...el.shadowRoot.querySelectorAll('[role=status], [role=alert], .msg')].map((n) => n.textContent));
      throw new Error(`${e.message}\nsam's widget shows: ${JSON.stringify(said)}`);
    });
    const after2 = await log(samLive).locator('.msg').evaluateAll((ms) => ms.map((m) => Number(m.dataset.index)));
    check(new Set(after2).size === after2.length, 'after reconnecting, every message shows once');

    execFileSync(chatctl, [...platform, 'revoke-identity', '--identity', 'sam'], { stdio: 'pipe' });
    await samLive.getByText('Your access to this chat has ended.').waitFor(WAIT);
    check(await messageBox(samLive).isDisabled(), "revoking sam: sam's widget says the access ended and stops");

    const tokens = consoleText.filter((t) => /eyJ[\w-]{10,}\.[\w-]{10,}/.test(t));
    check(tokens.length === 0, 'no token in the console');
    check(offsite.length === 0, `no request left loopback${offsite.length ? ': ' + offsite.join(', ') : ''}`);
    check(errors.length === 0, `no page errors${errors.length ? ': ' + errors.join('; ') : ''}`);
  } finally {
    await browser.close();
    await stop(server.child);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
