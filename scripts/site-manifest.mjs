// Writes <site>/pkg/site.json, the manifest the server reads about the built site:
//
//   {"output_name": "backstop-<hash>", "erase_components": true}
//
// - output_name: the name of the wasm, JS and CSS (`backstop` unless fingerprinted);
// - erase_components: whether the wasm was built with `--cfg erase_components` (Leptos'
//   type-erased views; .cargo/config.toml sets it for every build). The server's HTML only
//   hydrates with a wasm built the same way as the server, so the server compares this with its
//   own build at start and refuses a mismatch (server/src/assets.rs).
//
// The answer comes from the wasm itself, not from the flags the build meant to use (RUSTFLAGS
// replaces the config's): the app exports `built_with_erase_components` only when built with the
// cfg (app/src/lib.rs).
//
//   node scripts/site-manifest.mjs <site>/pkg    debug build: plain names (build-site.sh)
//   import { writeManifest } from './site-manifest.mjs'   (fingerprint-site.mjs)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MARKER = 'built_with_erase_components';

// Writes <pkg>/site.json for the site's files named `outputName` (.js, _bg.wasm, .css).
export function writeManifest(pkg, outputName) {
  const wasm = join(pkg, `${outputName}_bg.wasm`);
  // Compiling only reads the module's exports here; nothing runs.
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(wasm)));
  const manifest = { output_name: outputName, erase_components: exports.some((e) => e.name === MARKER) };
  writeFileSync(join(pkg, 'site.json'), `${JSON.stringify(manifest)}\n`);
  console.log(`site.json: ${JSON.stringify(manifest)}`);
  return manifest;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const pkg = process.argv[2];
  if (!pkg) {
    console.error('usage: site-manifest.mjs <site>/pkg');
    process.exit(2);
  }
  writeManifest(pkg, 'backstop');
}
