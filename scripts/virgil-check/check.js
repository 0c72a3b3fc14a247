// Our Virgil tokens against Virgil's own SDK (npm virgil-sdk 6.2.0, virgil-crypto 5.1.2,
// WASM, offline): for fresh app keys, several identities, lifetimes and times, the token
// `chatctl virgil-token` prints equals the one Virgil's JwtGenerator makes with its clock
// frozen at the same second, byte for byte; Virgil's JwtVerifier accepts ours, and refuses
// it once tampered with.
//   node check.js path/to/chatctl
'use strict';
const { execFileSync } = require('child_process');
const { initCrypto, VirgilCrypto, VirgilAccessTokenSigner } = require('virgil-crypto');
const { JwtGenerator, JwtVerifier, Jwt } = require('virgil-sdk');

const chatctl = process.argv[2];
if (!chatctl) {
  console.error('usage: node check.js path/to/chatctl');
  process.exit(2);
}

/** Virgil's generator with `Date` frozen at `seconds`, as it reads the clock through it. */
function virgilToken(generator, identity, seconds) {
  const RealDate = global.Date;
  global.Date = class extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(seconds * 1000);
      else super(...args);
    }
    static now() {
      return seconds * 1000;
    }
  };
  try {
    return generator.generateToken(identity).toString();
  } finally {
    global.Date = RealDate;
  }
}

function tampered(token) {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('latin1'));
  claims.sub = 'identity-mallory';
  return [header, Buffer.from(JSON.stringify(claims), 'latin1').toString('base64url'), signature].join('.');
}

function accepts(verifier, token) {
  try {
    return verifier.verifyToken(Jwt.fromString(token));
  } catch (e) {
    return false;
  }
}

(async () => {
  await initCrypto();
  const crypto = new VirgilCrypto();
  const signer = new VirgilAccessTokenSigner(crypto);
  const cases = [
    { identity: 'alex', ttl: 1200, at: 1700000000 },
    { identity: 'user@example.org', ttl: 60, at: 1800000123 },
    { identity: 'o\'brien"quoted"', ttl: 86400, at: 1234567890 },
    { identity: 'x'.repeat(200), ttl: 3600, at: 1700000001 },
  ];
  let failures = 0;
  for (let k = 0; k < 3; k++) {
    const keys = crypto.generateKeys();
    const appKey = crypto.exportPrivateKey(keys.privateKey).toString('base64');
    const appId = crypto.getRandomBytes(16).toString('hex');
    const appKeyId = crypto.getRandomBytes(16).toString('hex');
    const verifier = new JwtVerifier({ accessTokenSigner: signer, apiPublicKey: keys.publicKey, apiKeyId: appKeyId });
    for (const c of cases) {
      const generator = new JwtGenerator({
        appId,
        apiKeyId: appKeyId,
        apiKey: keys.privateKey,
        accessTokenSigner: signer,
        millisecondsToLive: c.ttl * 1000,
      });
      const expected = virgilToken(generator, c.identity, c.at);
      const ours = execFileSync(
        chatctl,
        ['virgil-token', '--identity', c.identity, '--issued-at', String(c.at), '--ttl', String(c.ttl)],
        { env: { ...process.env, VIRGIL_APP_ID: appId, VIRGIL_APP_KEY_ID: appKeyId, VIRGIL_APP_KEY: appKey } },
      )
        .toString()
        .trim();
      const same = ours === expected;
      // Verified as Virgil's services would: the signature under the app key's public half.
      const verified = accepts(verifier, ours);
      const tamperRefused = !accepts(verifier, tampered(ours));
      const ok = same && verified && tamperRefused;
      if (!ok) failures++;
      console.log(
        `${ok ? 'ok  ' : 'FAIL'} key ${k + 1}, identity ${JSON.stringify(c.identity.slice(0, 24))}, ttl ${c.ttl} s: ` +
          `${same ? 'equal to virgil-sdk' : 'DIFFERS from virgil-sdk'}, ` +
          `${verified ? 'JwtVerifier accepts it' : 'JwtVerifier REFUSES it'}, ` +
          `${tamperRefused ? 'refuses it tampered' : 'ACCEPTS it tampered'}`,
      );
      if (!same) console.log(`  ours:     ${ours}\n  virgil's: ${expected}`);
    }
  }
  if (failures > 0) {
    console.error(`${failures} case(s) failed`);
    process.exit(1);
  }
  console.log('every token equals virgil-sdk\'s, byte for byte');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
