// Replaces Leptos' async hydration path in the console's wasm with traps, before wasm-opt runs,
// so wasm-opt drops the code only that path reaches.
//
//   node scripts/drop-async-hydration.mjs <wasm-bindgen output .wasm>   (rewrites it in place)
//
// Why: in Leptos 0.8 every `AnyView` keeps a pointer to `hydrate_async` for its view type, which
// only lazy routes and `hydrate_lazy` call. The console hydrates with `hydrate_body` (sync) and
// has no lazy routes, yet the pointers keep a second, async copy of the hydration code of every
// view in the bundle (leptos-rs/leptos#4852; Leptos 0.9 puts the field behind a feature). On
// 2026-11-30 this cut the release wasm from 1,717,162 to 1,513,332 bytes (brotli 460,385 to
// 397,306) with the same pages. With `--cfg erase_components` (.cargo/config.toml) every view is
// an `AnyView`, so the path is still there, only smaller: 222 functions, and the wasm goes from
// 1,323,164 to 1,254,731 bytes (brotli 337,274 to 325,363; after wasm-opt both, measured the
// same day). Should anything ever call it, the wasm traps ("unreachable") instead of hydrating:
// the release browser tests (`scripts/e2e.sh --release`) would fail.
//
// Only the functions `AnyView::hydrate_async` points to are replaced: `IntoAny::into_any`'s
// `hydrate_async::<T>` and the future it returns. The names come from the name section that
// wasm-bindgen keeps (demangled); finding none fails the build, so a Leptos upgrade that renames
// or removes them (0.9) is noticed here and this step can go.
import binaryen from 'binaryen';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/drop-async-hydration.mjs <file.wasm>');
  process.exit(2);
}

// `<T as tachys::view::any_view::IntoAny>::into_any::hydrate_async::h<hash>` and its
// `::{{closure}}::h<hash>` (the future's body).
const ASYNC_HYDRATION = /^<T as tachys::view::any_view::IntoAny>::into_any::hydrate_async(::\{\{closure\}\})?::h[0-9a-f]{16}$/;

const module = binaryen.readBinary(readFileSync(file));
const targets = [];
for (let i = 0; i < module.getNumFunctions(); i++) {
  const info = binaryen.getFunctionInfo(module.getFunctionByIndex(i));
  // Imports have no body.
  if (info.body && ASYNC_HYDRATION.test(info.name)) targets.push(info);
}
if (targets.length === 0) {
  console.error(
    `drop-async-hydration: no Leptos async hydration functions found in ${file}: ` +
      'was the name section stripped, or did Leptos change (0.9 no longer needs this step)?',
  );
  process.exit(1);
}
// LLVM merges identical functions, and a merged body keeps one of the names: a function that
// live code calls can carry a `hydrate_async` name (tachys' `hydrate` and `hydrate_async` share
// helpers that way). So only replace functions that nothing outside the set calls directly; they
// are reached only through the table, from the pointers `into_any` stores. binaryen's call graph
// (npm's wasm-opt, first on PATH in scripts/build-site.sh) lists the direct calls.
const names = new Set(targets.map((t) => t.name));
const graph = execFileSync('wasm-opt', [file, '--print-call-graph', '-o', '/dev/null'], {
  encoding: 'utf8',
  maxBuffer: 1 << 30,
});
const liveCalls = [];
let calls = 0;
for (const [, caller, callee] of graph.matchAll(/^\s*"(.*)" -> "(.*)"; \/\/ call$/gm)) {
  calls++;
  if (names.has(callee) && !names.has(caller)) liveCalls.push(`${caller} -> ${callee}`);
}
if (calls === 0) {
  console.error('drop-async-hydration: could not read the call graph from wasm-opt --print-call-graph');
  process.exit(1);
}
if (liveCalls.length > 0) {
  console.error(`drop-async-hydration: functions outside the async path call into it:\n${liveCalls.join('\n')}`);
  process.exit(1);
}
for (const { name, params, results } of targets) {
  // Same name and signature, so the table entries and calls that refer to it stay valid.
  module.removeFunction(name);
  module.addFunction(name, params, results, [], module.unreachable());
}
if (!module.validate()) {
  console.error('drop-async-hydration: the rewritten module does not validate');
  process.exit(1);
}
writeFileSync(file, module.emitBinary());
console.log(`drop-async-hydration: ${targets.length} functions replaced with traps`);
