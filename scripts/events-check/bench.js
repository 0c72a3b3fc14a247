// A dead platform does not slow createChatToken: chatctl serve (embedded local mode) three
// times — no events, events to a receiver that answers at once, events to one that accepts
// connections and never answers — and the latency of N first-seen users' createChatToken
// (each joins a room, so each queues a membership.joined). A bench, not a test: not in CI.
//   node bench.js path/to/chatctl [N]
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const { serve } = require('./serve');

const [chatctl, n = '200'] = process.argv.slice(2);
const N = Number(n);

async function started(env) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'events-bench-'));
  const { child, origin } = await serve(chatctl, dataDir, { RUST_LOG: 'error', ...env });
  return { child, origin, dataDir };
}

/** N + 10 context tokens for user-1 … in `room`, signed with the server's development key
 * (the /token route allows 10 a minute). */
function tokens(dataDir) {
  const kid = fs.readFileSync(path.join(dataDir, 'dev-issuer.kid'), 'utf8').trim();
  const out = execFileSync(chatctl, [
    'token', '--private-key', path.join(dataDir, 'dev-issuer-private.pem'), '--kid', kid,
    '--identity', 'user', '--context', 'room', '--count', String(N + 10),
  ]);
  return out.toString().trim().split('\n');
}

async function run(label, env) {
  const { child, origin, dataDir } = await started(env);
  const minted = tokens(dataDir);
  const times = [];
  for (let i = 0; i < N + 10; i++) {
    const token = minted[i];
    const start = process.hrtime.bigint();
    const response = await fetch(`${origin}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation($t: ID!) { createChatToken(deviceId: "b", token: $t) }', variables: { t: token } }),
    });
    const body = await response.json();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (!body.data) throw new Error(JSON.stringify(body));
    if (i >= 10) times.push(ms); // the first ten warm up
  }
  child.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(2);
  console.log(`${label.padEnd(34)} median ${at(0.5)} ms  p90 ${at(0.9)} ms  p99 ${at(0.99)} ms  (n=${N})`);
}

(async () => {
  const ok = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(204).end()));
  await new Promise((r) => ok.listen(0, '127.0.0.1', r));
  const dead = net.createServer(() => {}); // accepts, never answers
  await new Promise((r) => dead.listen(0, '127.0.0.1', r));
  const secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
  await run('no events', {});
  await run('events, receiver answers', { PLATFORM_EVENTS_URL: `http://127.0.0.1:${ok.address().port}/`, PLATFORM_EVENTS_SECRET: secret });
  await run('events, receiver never answers', { PLATFORM_EVENTS_URL: `http://127.0.0.1:${dead.address().port}/`, PLATFORM_EVENTS_SECRET: secret });
  ok.close();
  dead.close();
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
