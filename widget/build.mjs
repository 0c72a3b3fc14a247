// Builds the widget into dist/: the loader a page embeds (context-chat.js), the app chunk it
// loads on first open (context-chat-app.js) and the Twilio chunk for the cloud
// (context-chat-twilio.js), each minified with a source map; the loader carries each chunk's
// Subresource Integrity hash. dist/manifest.json lists every file with its integrity and
// sizes. Our own code (loader + app) must stay within 40 KB gzipped: over it, the build fails.
//   node build.mjs            (npm run build)
import { build, transform } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const OWN_CODE_BUDGET_GZIP = 40 * 1024;
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
const out = 'dist';
mkdirSync(out, { recursive: true });

/** Stylesheets are imported as their minified text (the shadow roots adopt them). */
const minifiedCss = {
  name: 'minified-css',
  setup(b) {
    b.onLoad({ filter: /\.css$/ }, async (args) => {
      const { code } = await transform(readFileSync(args.path, 'utf8'), { loader: 'css', minify: true });
      return { contents: code.trim(), loader: 'text' };
    });
  },
};

const common = {
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'iife',
  platform: 'browser',
  target: ['chrome111', 'firefox113', 'safari16.4'],
  legalComments: 'linked',
  logLevel: 'warning',
  // node_modules may be a link into the build cache (scripts/npm-tools): source maps name
  // the packages as node_modules/…, not the cache's folders.
  preserveSymlinks: true,
  plugins: [minifiedCss],
};

async function chunk(entry, file, define = {}) {
  await build({
    ...common,
    entryPoints: [entry],
    outfile: `${out}/${file}`,
    define: { __VERSION__: JSON.stringify(version), global: 'globalThis', ...define },
  });
  const bytes = readFileSync(`${out}/${file}`);
  return {
    file,
    integrity: `sha384-${createHash('sha384').update(bytes).digest('base64')}`,
    bytes: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
  };
}

const app = await chunk('src/app/index.ts', 'context-chat-app.js');
const twilio = await chunk('src/twilio/index.ts', 'context-chat-twilio.js');
const chunks = {
  app: { file: app.file, integrity: app.integrity },
  twilio: { file: twilio.file, integrity: twilio.integrity },
};
const loader = await chunk('src/loader.ts', 'context-chat.js', { __CHUNKS__: JSON.stringify(chunks) });

const manifest = { version, loader, app, twilio };
writeFileSync(`${out}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
// chatctl serves the loader and the app from its own folder (a crate includes no file outside
// it: adr/017); the repository keeps that copy, and scripts/test checks it is this build.
const served = '../scripts/chatctl/assets/widget';
mkdirSync(served, { recursive: true });
for (const file of [loader.file, `${loader.file}.map`, app.file, `${app.file}.map`, 'manifest.json']) {
  copyFileSync(`${out}/${file}`, `${served}/${file}`);
}

const own = loader.gzip + app.gzip;
console.log(
  `context-chat ${version}: loader ${loader.gzip} B + app ${app.gzip} B = ${own} B gzipped (budget ${OWN_CODE_BUDGET_GZIP}); ` +
    `Twilio chunk ${twilio.gzip} B gzipped (cloud only)`,
);
if (own > OWN_CODE_BUDGET_GZIP) {
  console.error(`over budget: our own code is ${own} B gzipped, the budget ${OWN_CODE_BUDGET_GZIP} B`);
  process.exit(1);
}
