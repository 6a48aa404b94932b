// What a first visit to the console costs: bytes over the wire and time until the page is
// interactive (hydrated), in Debian's Chromium with an empty cache, then a second visit.
//
//   node scripts/first-load.mjs http://127.0.0.1:8080/
//
// Run against a release build (`./dev demo` serves one): only it has fingerprinted,
// precompressed assets. Chromium asks for brotli only over HTTPS, so over plain HTTP it gets
// gzip; the brotli sizes are printed beside, as a browser gets them behind TLS.
import { chromium } from 'playwright';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });

async function visit(page) {
  const responses = [];
  page.on('response', (r) => responses.push(r));
  const started = Date.now();
  await page.goto(url);
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 60_000 });
  const ms = Date.now() - started;
  let wire = 0;
  const rows = [];
  for (const r of responses) {
    const sizes = await r.request().sizes();
    const path = new URL(r.url()).pathname;
    wire += sizes.responseBodySize + sizes.responseHeadersSize;
    let brotli = '';
    if (path.startsWith('/pkg/')) {
      const br = await fetch(r.url(), { headers: { 'accept-encoding': 'br' } });
      brotli = br.headers.get('content-encoding') === 'br' ? br.headers.get('content-length') : '';
    }
    rows.push({ path, encoding: r.headers()['content-encoding'] ?? 'none', body: sizes.responseBodySize, brotli });
  }
  return { ms, wire, rows };
}

const page = await browser.newPage();
const first = await visit(page);
console.table(first.rows);
const brotliTotal = first.rows.reduce((sum, r) => sum + Number(r.brotli || r.body), 0);
console.log(`first visit: ${first.wire} bytes over the wire, ${brotliTotal} with brotli; interactive after ${first.ms} ms`);
page.removeAllListeners('response');
const second = await visit(page);
console.log(`second visit: ${second.wire} bytes over the wire; interactive after ${second.ms} ms`);
await browser.close();
