// What the browser checks share: `chatctl serve` on loopback in embedded local mode, Debian's
// Chromium with the network cut to that server, and a check that says what held.
'use strict';
const { spawn } = require('child_process');
const readline = require('readline');
const { chromium } = require('playwright-core');

/**
 * `chatctl serve` on `port` (0: a free one) in embedded local mode with `env` added; resolves
 * with its origin and process once it says Ready.
 */
function serve(chatctl, dataDir, { port = 0, env = {} } = {}) {
  const child = spawn(chatctl, ['serve', '--port', String(port), '--data-dir', dataDir], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let origin;
    const timer = setTimeout(() => reject(new Error('chatctl serve did not say Ready. in 30 s')), 30000);
    child.on('exit', (code) => reject(new Error(`chatctl serve exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/^Context Chat is listening on (http:\/\/[^/ ]+)\//);
      if (m) origin = m[1];
      if (line === 'Ready.') {
        clearTimeout(timer);
        resolve({ child, origin });
      }
    });
  });
}

/** Stops a server started by `serve`, resolving once it has exited. */
function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.on('exit', () => resolve());
    child.kill();
  });
}

function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A browser context in which only `origin` is reachable; what else was asked for lands in `offsite`. */
async function cutOff(browser, origin, offsite, options = {}) {
  const context = await browser.newContext(options);
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    offsite.push(url);
    return route.abort('internetdisconnected');
  });
  return context;
}

function check(condition, what) {
  if (!condition) throw new Error(`not so: ${what}`);
  console.log(`ok: ${what}`);
}

module.exports = { serve, stop, launch, cutOff, check };
