// load.mjs — a load generator for `minfer serve` (a benchmark, not a test): N clients each
// send chat completions one after another for a bounded time, then it reports the latency
// percentiles and the aggregate generated tokens per second (docs/serve.md).
//
//   node tests/clients/load.mjs --url http://127.0.0.1:8080 [--clients 32] [--seconds 20]
//        [--max-tokens 32] [--stream]
//
// Only loopback addresses are accepted as targets. Every request has a timeout, and no
// request starts after the deadline, so the run stops by itself. Exit status 1 when any
// request failed (an HTTP error or a dropped connection), 0 otherwise.
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '20' },
    'max-tokens': { type: 'string', default: '32' },
    stream: { type: 'boolean', default: false },
  },
});
const url = new URL(o.url);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
  console.error(`load.mjs: ${url.hostname} is not a loopback address; only 127.0.0.1, localhost and [::1] are accepted`);
  process.exit(2);
}
const clients = Number(o.clients);
const seconds = Number(o.seconds);
const maxTokens = Number(o['max-tokens']);
if (!(clients >= 1 && clients <= 1024 && seconds > 0 && seconds <= 3600 && maxTokens >= 1)) {
  console.error('load.mjs: --clients 1..1024, --seconds 0..3600, --max-tokens >= 1');
  process.exit(2);
}

const names = ['Tom', 'Lily', 'Ben', 'Sue', 'Max', 'Mia', 'Sam', 'Zoe'];
const things = ['a dog', 'a ball', 'a red kite', 'a box', 'a tree', 'a cake', 'a boat', 'a cat'];
const latencies = [];
const errors = new Map();
let tokens = 0;
const deadline = Date.now() + seconds * 1000;

async function one(i, k) {
  const body = {
    model: 'any', temperature: 0.8, seed: i * 100003 + k, max_tokens: maxTokens, stream: o.stream,
    messages: [{ role: 'user', content: `${names[i % 8]} had ${things[(i + k) % 8]}.` }],
    ...(o.stream ? { stream_options: { include_usage: true } } : {}),
  };
  const t0 = performance.now();
  const r = await fetch(`${url.origin}/v1/chat/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(120000),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
  let usage;
  if (o.stream) {
    const last = text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6))).filter((c) => c.usage).at(-1);
    if (!text.includes('data: [DONE]') || !last) throw new Error('stream without [DONE] or usage');
    usage = last.usage;
  } else {
    usage = JSON.parse(text).usage;
  }
  latencies.push(performance.now() - t0);
  tokens += usage.completion_tokens;
}

async function client(i) {
  for (let k = 0; Date.now() < deadline; k++) {
    try {
      await one(i, k);
    } catch (e) {
      const key = String(e.message ?? e);
      errors.set(key, (errors.get(key) ?? 0) + 1);
    }
  }
}

const t0 = Date.now();
await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
const wall = (Date.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : NaN);
const nErr = [...errors.values()].reduce((a, b) => a + b, 0);
console.log(JSON.stringify({
  clients, seconds: Number(wall.toFixed(2)), max_tokens: maxTokens, stream: o.stream,
  requests: latencies.length, errors: Object.fromEntries(errors),
  latency_ms: { p50: Number(pct(50).toFixed(1)), p99: Number(pct(99).toFixed(1)), max: Number((latencies.at(-1) ?? NaN).toFixed(1)) },
  generated_tokens: tokens, aggregate_tok_s: Number((tokens / wall).toFixed(1)),
}, null, 1));
process.exit(nErr ? 1 : 0);
