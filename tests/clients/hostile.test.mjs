// hostile.test.mjs — raw HTTP that real clients never send: malformed, huge and deeply nested
// JSON, invalid UTF-8, bodies over the limit, slow clients, half-closed and idle connections,
// bytes that are not HTTP, SIGTERM in the middle of a stream. Each gets a clear answer (or a
// closed connection where HTTP has no answer), and the server keeps serving: every test ends
// by checking that a normal request still works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, metric } from './server.mjs';

let srv;
before(async () => { srv = await startServer(['--ctx', '4096', '--max-body', '100000', '--timeout', '1']); });
after(async () => {
  const r = await srv.stop();
  assert.deepEqual(r, { code: 0, signal: null }, srv.log());
});

// Sends bytes (a string or Buffers, with pauses of `gapMs` between pieces), optionally closes
// the sending side, and returns everything the server sent until it closed the connection
// (or timeoutMs passed).
function raw(pieces, { gapMs = 0, halfClose = false, timeoutMs = 10000, port = srv.port } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const got = [];
    const timer = setTimeout(() => { s.destroy(); resolve({ text: Buffer.concat(got).toString('latin1'), timedOut: true }); }, timeoutMs);
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve({ text: Buffer.concat(got).toString('latin1'), timedOut: false }); });
    s.on('connect', async () => {
      try {
        for (const p of [].concat(pieces)) {
          if (s.destroyed) break;
          s.write(p);
          if (gapMs) await sleep(gapMs);
        }
        if (halfClose) s.end();
      } catch (e) { reject(e); }
    });
  });
}

const post = (path, body, headers = '') => {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return [Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n${headers}Content-Length: ${b.length}\r\n\r\n`), b];
};
const status = (text) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
const errorOf = (text) => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error;

async function stillServing() {
  const r = await fetch(`${srv.base}/chat/completions`, {
    method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, temperature: 0 }),
  });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).usage.completion_tokens, 3);
}

test('malformed JSON, wrong top-level types, NUL and lone surrogates: 400 naming the problem', async () => {
  const cases = [
    ['{"messages": [', /malformed JSON: .*line 1/],
    ['', /malformed JSON/],
    ['[1, 2]', /must be a JSON object, not an array/],
    ['{"messages": [{"role": "user", "content": "a\\u0000b"}]}', /malformed JSON: .*\\u0000/],
    ['{"messages": [{"role": "user", "content": "\\ud800"}]}', /malformed JSON: .*invalid Unicode/i],
    ['{"messages": 1, "messages": 2}', /malformed JSON: duplicate object key/],
    ['{"max_tokens": 1e999999, "messages": []}', /malformed JSON/],
    ['{"seed": 99999999999999999999999, "messages": []}', /malformed JSON: too big integer/],
  ];
  for (const [body, re] of cases) {
    const r = await raw(post('/v1/chat/completions', body));
    assert.equal(status(r.text), 400, body);
    const e = errorOf(r.text);
    assert.match(e.message, re, body);
    assert.equal(e.type, 'invalid_request_error');
  }
  await stillServing();
});

test('invalid UTF-8 in a string: 400', async () => {
  const body = Buffer.concat([Buffer.from('{"messages": [{"role": "user", "content": "ok '), Buffer.from([0xC3, 0x28, 0xFF]), Buffer.from('"}]}')]);
  const r = await raw(post('/v1/chat/completions', body));
  assert.equal(status(r.text), 400);
  assert.match(errorOf(r.text).message, /malformed JSON: .*(UTF-8|decode)/i);
  await stillServing();
});

test('deeply nested JSON: refused at jansson\'s depth limit, a shallower document is served', async () => {
  const deep = `{"messages": [{"role": "user", "content": "Hi"}], "x": ${'['.repeat(40000)}${']'.repeat(40000)}}`;
  const r = await raw(post('/v1/chat/completions', deep));
  assert.equal(status(r.text), 400);
  assert.match(errorOf(r.text).message, /maximum parsing depth/);
  const ok = `{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "x": ${'['.repeat(2000)}${']'.repeat(2000)}}`;
  const r2 = await raw(post('/v1/chat/completions', ok));
  assert.equal(status(r2.text), 200, 'unknown fields are ignored, however nested (within the limit)');
  await stillServing();
});

test('bodies over --max-body: 413, announced (Content-Length) or not (chunked)', async () => {
  const announced = await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100001\r\n\r\n`);
  assert.equal(status(announced.text), 413);
  assert.match(errorOf(announced.text).message, /limit is 100000/);
  const chunk = 'x'.repeat(30000);
  const pieces = ['POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n'];
  for (let i = 0; i < 5; i++) pieces.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  pieces.push('0\r\n\r\n');
  const chunked = await raw(pieces);
  assert.equal(status(chunked.text), 413);
  // the default limit is 8 MB (8388608 bytes)
  const def = await startServer([]);
  try {
    const over = await raw(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 8388609\r\n\r\n`, { port: def.port });
    assert.equal(status(over.text), 413);
    assert.match(errorOf(over.text).message, /limit is 8388608/);
  } finally {
    assert.equal((await def.stop()).code, 0, def.log());
  }
  await stillServing();
});

test('a slow client (a byte every 10 ms) is served, and others are served meanwhile', async () => {
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 2 });
  const bytes = Buffer.concat(post('/v1/chat/completions', body));
  const pieces = [...bytes].map((b) => Buffer.from([b]));
  const slow = raw(pieces, { gapMs: 10, timeoutMs: 20000 });
  await sleep(200);
  const t0 = Date.now();
  await stillServing();
  assert.ok(Date.now() - t0 < 2000, 'a slow client does not hold others up');
  const r = await slow;
  assert.equal(status(r.text), 200);
});

test('idle and half-sent connections are closed after --timeout; the server keeps serving', async () => {
  const idle = await raw([], { timeoutMs: 8000 });
  assert.equal(idle.timedOut, false, 'closed by the server');
  const half = await raw(['POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"mess'], { timeoutMs: 8000 });
  assert.equal(half.timedOut, false);
  await stillServing();
});

test('half-closed connections: a request then a closed sending side', async () => {
  const health = await raw(['GET /health HTTP/1.1\r\nHost: x\r\n\r\n'], { halfClose: true });
  assert.ok(health.text === '' || status(health.text) === 200, health.text);
  const before = await metric(srv.url, 'minfer_requests_cancelled_total');
  // a long answer (seconds): the client's closed side is taken as gone and the answer cancelled
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 4000, temperature: 0 });
  const r = await raw(post('/v1/chat/completions', body), { halfClose: true });
  assert.equal(r.text, '', 'no answer to a client that left');
  const t0 = Date.now();
  while (await metric(srv.url, 'minfer_requests_cancelled_total') !== before + 1 || await metric(srv.url, 'minfer_active_sequences') !== 0) {
    assert.ok(Date.now() - t0 < 5000, 'cancelled within 5 s');
    await sleep(20);
  }
  assert.ok(await metric(srv.url, 'minfer_generated_tokens_total') < 4000);
  await stillServing();
});

test('bytes that are not HTTP, huge headers, unknown routes and methods', async () => {
  const junk = await raw([Buffer.from([0, 1, 2, 255, 13, 10, 13, 10])]);
  assert.ok(junk.text === '' || status(junk.text) === 400, junk.text);
  const big = await raw([`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(200000)}\r\n\r\n`]);
  assert.ok(big.text === '' || [400, 413, 431].includes(status(big.text)), big.text.slice(0, 100));
  const nf = await raw(['GET /v2/anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assert.equal(status(nf.text), 404);
  const na = await raw(['DELETE /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assert.equal(status(na.text), 405);
  assert.match(na.text, /\r\nAllow: POST\r\n/i);
  await stillServing();
});

test('SIGTERM during a stream: the stream ends, the server exits 0 within the grace period', async () => {
  const s = await startServer(['--ctx', '4096', '--grace', '1']);
  const res = await fetch(`${s.base}/chat/completions`, {
    method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 4000, temperature: 0, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  await reader.read();
  const t0 = Date.now();
  s.proc.kill('SIGTERM');
  let text = '';
  for (;;) {
    const { done, value } = await reader.read().catch(() => ({ done: true }));
    if (done) break;
    text += Buffer.from(value).toString();
  }
  const r = await s.stop(15000);
  assert.deepEqual(r, { code: 0, signal: null }, s.log());
  assert.ok(Date.now() - t0 < 8000, `stopped in ${Date.now() - t0} ms`);
  assert.match(text, /shutting down|finish_reason/, 'the stream says how it ended');
  assert.match(s.log(), /SIGTERM: stopping/);
});
