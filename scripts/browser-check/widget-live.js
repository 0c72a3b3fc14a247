// Opt-in: the chat widget's cloud transport on real Twilio, through a deployed Context Chat API.
// Not part of scripts/test (it needs a deployment and the internet). Two pages, as alex and sam
// in one context: a message each way, typing, history after a reload.
//
//   CONTEXT_CHAT_LIVE_API_URL=https://….appsync-api….amazonaws.com/graphql \
//   CONTEXT_CHAT_LIVE_API_KEY=da2-… CONTEXT_CHAT_LIVE_CONTEXT=general \
//   CONTEXT_CHAT_LIVE_TOKEN_ALEX=eyJ… CONTEXT_CHAT_LIVE_TOKEN_SAM=eyJ… \
//   node scripts/browser-check/widget-live.js      (after: cd widget && npm run build)
//
// The two context tokens are your platform's (or the dev-extras stack's), each naming the
// context. The widget is served from widget/dist on loopback, as CloudFront would serve it.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const { launch, check } = require('./serve');

const env = (name) => process.env[`CONTEXT_CHAT_LIVE_${name}`];
const needed = ['API_URL', 'API_KEY', 'CONTEXT', 'TOKEN_ALEX', 'TOKEN_SAM'];
if (needed.some((n) => !env(n))) {
  console.log(`skipped: set ${needed.map((n) => `CONTEXT_CHAT_LIVE_${n}`).join(', ')} to run on real Twilio`);
  process.exit(0);
}
const dist = path.join(__dirname, '..', '..', 'widget', 'dist');
const manifest = JSON.parse(fs.readFileSync(path.join(dist, 'manifest.json'), 'utf8'));
const WAIT = { timeout: 30000 };

const attr = (s) => String(s).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
function page(who) {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>${who}</title><main>
<context-chat open api-url="${attr(env('API_URL'))}" api-key="${attr(env('API_KEY'))}" context="${attr(env('CONTEXT'))}"
  token="${attr(env(`TOKEN_${who.toUpperCase()}`))}" data-identity="${who}"></context-chat></main>
<script src="/widget/${manifest.version}/context-chat.js" integrity="${manifest.loader.integrity}" crossorigin="anonymous"></script>`;
}

async function main() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const file = url.pathname.startsWith(`/widget/${manifest.version}/`) && path.basename(url.pathname);
    if (file && fs.existsSync(path.join(dist, file))) {
      res.writeHead(200, { 'content-type': 'text/javascript', 'access-control-allow-origin': '*' });
      return res.end(fs.readFileSync(path.join(dist, file)));
    }
    const who = url.searchParams.get('as');
    if (who === 'alex' || who === 'sam') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(page(who));
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch();
  try {
    const open = async (who) => {
      const p = await browser.newPage();
      await p.goto(`${origin}/?as=${who}`);
      const chat = p.locator('context-chat');
      await chat.getByRole('status').getByText('Connected').waitFor(WAIT);
      return { p, chat };
    };
    const alex = await open('alex');
    const sam = await open('sam');
    check(true, 'both widgets connect to Twilio with the tokens the API issued');
    const text = `live check ${new Date().toISOString()}`;
    await alex.chat.getByRole('textbox', { name: 'Message' }).fill(text);
    await alex.chat.getByRole('button', { name: 'Send' }).click();
    await sam.chat.getByRole('log').getByText(text).waitFor(WAIT);
    check(true, "sam sees alex's message live");
    await sam.chat.getByRole('textbox', { name: 'Message' }).pressSequentially('typing…', { delay: 50 });
    await alex.chat.getByText(/is typing/).waitFor(WAIT);
    check(true, 'alex sees sam typing');
    await sam.chat.getByRole('textbox', { name: 'Message' }).press('Enter');
    await alex.chat.getByRole('log').getByText('typing…').waitFor(WAIT);
    await alex.p.reload();
    await alex.p.locator('context-chat').getByRole('log').getByText(text).waitFor(WAIT);
    check(true, 'history after a reload');
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
