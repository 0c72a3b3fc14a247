// Our events to the platform against Standard Webhooks' own JavaScript library (npm
// standardwebhooks): chatctl serve in local mode sends to a receiver here; each request must
// pass the library's Webhook.verify with the secret we gave, and fail it once its body, id or
// timestamp is changed.
//   node check.js path/to/chatctl
'use strict';
const { execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { Webhook } = require('standardwebhooks');
const { serve } = require('./serve');

const chatctl = process.argv[2];
if (!chatctl) {
  console.error('usage: node check.js path/to/chatctl');
  process.exit(2);
}

const secret = 'whsec_' + crypto.randomBytes(32).toString('base64');
const received = [];
const receiver = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    received.push({ headers: req.headers, body });
    res.writeHead(204).end();
  });
});

async function json(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

function verifies(headers, body) {
  try {
    return new Webhook(secret).verify(body, headers);
  } catch (e) {
    return null;
  }
}

(async () => {
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${receiver.address().port}/events`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'events-check-'));
  const { child, origin } = await serve(chatctl, dataDir, {
    PLATFORM_EVENTS_URL: url,
    PLATFORM_EVENTS_SECRET: secret,
  });
  let failures = 0;
  const check = (ok, what) => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failures++;
  };
  try {
    const graphql = async (query, variables) =>
      (await json(`${origin}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      })).data;
    const contextToken = async (identity) =>
      (await json(`${origin}/token?identity=${identity}&context=general`, { method: 'POST' })).token;
    // sam wants email about general (and, with no stream open, is offline); alex joins general
    // by a token and writes there; the platform revokes alex.
    const sam = await contextToken('sam');
    await graphql('mutation($t: ID!) { createChatToken(deviceId: "events-check", token: $t) }', { t: sam });
    await graphql('mutation($t: String!) { enableChannelNotifications(channel: "general", email: "sam@example.org", token: $t) { emailVerified } }', { t: sam });
    const outbox = path.join(dataDir, 'outbox');
    const mail = fs.readdirSync(outbox).map((f) => fs.readFileSync(path.join(outbox, f), 'utf8')).find((m) => m.startsWith('To: sam@example.org'));
    const code = mail.split('code is: ')[1].slice(0, 8);
    await graphql('mutation($code: String!) { verifyEmail(email: "sam@example.org", code: $code) }', { code });
    const alex = await contextToken('alex');
    const access = (await graphql('mutation($t: ID!) { createChatToken(deviceId: "events-check", token: $t) }', { t: alex })).createChatToken;
    await json(`${origin}/local/v1/conversations/general/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${access}` },
      body: JSON.stringify({ body: 'hello' }),
    });
    const typesOf = () => received.map((r) => JSON.parse(r.body).type).sort();
    for (let i = 0; i < 100 && !typesOf().includes('notification.sent'); i++) await new Promise((r) => setTimeout(r, 100));
    execFileSync(chatctl, ['platform', '--api-url', `${origin}/graphql`, '--token-url', `${origin}/oauth/token`, '--data-dir', dataDir, 'revoke-identity', '--identity', 'alex'], { stdio: 'ignore' });
    for (let i = 0; i < 100 && received.length < 6; i++) await new Promise((r) => setTimeout(r, 100));
    const types = [...new Set(typesOf())];
    const all = ['identity.revoked', 'membership.joined', 'membership.left', 'message.added', 'notification.sent'];
    check(JSON.stringify(types) === JSON.stringify(all), `every type came: ${types}`);
    for (const { headers, body } of received) {
      const payload = verifies(headers, body);
      check(payload !== null, `Webhook.verify accepts ${payload && payload.type}`);
      check(payload && ['alex', 'sam'].includes(payload.data.identity), 'its data names the identity');
      check(payload && !('body' in payload.data), 'no message text without eventsIncludeBody');
      check(!body.includes('@example.org'), 'no address');
      check(verifies(headers, body.replace('general', 'generaX')) === null, 'a changed body is refused');
      check(verifies({ ...headers, 'webhook-id': headers['webhook-id'] + 'x' }, body) === null, 'a changed id is refused');
      const old = String(Number(headers['webhook-timestamp']) - 600);
      check(verifies({ ...headers, 'webhook-timestamp': old }, body) === null, 'a replay ten minutes later is refused');
    }
  } finally {
    child.kill();
    receiver.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  if (failures) {
    console.error(`${failures} check(s) failed`);
    process.exit(1);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
