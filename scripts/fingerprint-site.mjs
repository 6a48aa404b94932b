// Gives the built console's wasm, JS and CSS content-addressed names and compresses them ahead
// of time, so the server can send them with `immutable` caching and in brotli or gzip without
// compressing per request. Run by `scripts/build-site.sh --release` on <site>/pkg:
//
//   backstop.js, backstop_bg.wasm, backstop.css
//     -> backstop-<hash>.js, backstop-<hash>_bg.wasm, backstop-<hash>.css (+ .br and .gz of each)
//   site.json: {"output_name": "backstop-<hash>", ...}, which the server reads to name them in
//   pages (scripts/site-manifest.mjs writes it).
//
// One hash over the three files names all of them: they are built together, and Leptos derives
// the JS and wasm names from one `output_name`.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { writeManifest } from './site-manifest.mjs';

const pkg = process.argv[2];
if (!pkg) {
  console.error('usage: fingerprint-site.mjs <site>/pkg');
  process.exit(2);
}

const built = { js: 'backstop.js', wasm: 'backstop_bg.wasm', css: 'backstop.css' };
const hash = createHash('sha256');
for (const name of Object.values(built)) hash.update(readFileSync(join(pkg, name)));
const outputName = `backstop-${hash.digest('hex').slice(0, 16)}`;

// An earlier build's names would otherwise be embedded too.
for (const name of readdirSync(pkg)) {
  if (name.startsWith('backstop-') || name === 'site.json') rmSync(join(pkg, name));
}

const named = { js: `${outputName}.js`, wasm: `${outputName}_bg.wasm`, css: `${outputName}.css` };
for (const [kind, from] of Object.entries(built)) {
  const to = join(pkg, named[kind]);
  renameSync(join(pkg, from), to);
  const bytes = readFileSync(to);
  const br = brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
  writeFileSync(`${to}.br`, br);
  const gz = gzipSync(bytes, { level: 9 });
  writeFileSync(`${to}.gz`, gz);
  console.log(`${named[kind]}: ${bytes.length} bytes, brotli ${br.length}, gzip ${gz.length}`);
}
writeManifest(pkg, outputName);
