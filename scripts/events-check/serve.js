// `chatctl serve` on a free loopback port in embedded local mode, for the events scripts:
// resolves with its process and origin once it says Ready. (browser-check/serve.js has the
// same for the browser checks, beside Chromium, which these scripts do not install.)
'use strict';
const { spawn } = require('child_process');
const readline = require('readline');

function serve(chatctl, dataDir, env) {
  const child = spawn(chatctl, ['serve', '--port', '0', '--data-dir', dataDir], {
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

module.exports = { serve };
