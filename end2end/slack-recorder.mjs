// A stand-in for Slack's incoming-webhook endpoint in the browser tests: a real HTTP server
// that answers every POST with 200 "ok" and records it, and lists what it received at
// GET /received (JSON, oldest first). Usage: node end2end/slack-recorder.mjs PORT
import http from 'node:http';

const port = Number(process.argv[2]);
const received = [];

http
  .createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/received') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(received));
      return;
    }
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        // Recorded as text: a test that expected JSON will say so.
      }
      received.push({ at: new Date().toISOString(), path: request.url, body: json ?? body });
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok');
    });
  })
  .listen(port, '127.0.0.1', () => console.log(`slack recorder on http://127.0.0.1:${port}`));
