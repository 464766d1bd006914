// openai.test.mjs — the official `openai` package against `minfer serve` with stories260K.
// Bounded: every request has max_tokens (the longest runs stop early by cancelling), each
// server is stopped by its test, node --test's timeout covers the rest.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, tokenCount, metric } from './server.mjs';

let srv;
let client;
const MODEL = 'stories260K';
const PROMPT = 'Once upon a time';

before(async () => {
  srv = await startServer(['--ctx', '512']);
  client = new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
});

after(async () => {
  const r = await srv.stop();
  assert.deepEqual(r, { code: 0, signal: null }, `exit status, log:\n${srv.log()}`);
  assert.match(srv.log(), /"POST \/v1\/chat\/completions" 200 /, 'one access-log line per request');
});

const chat = (extra = {}) => client.chat.completions.create({
  model: MODEL, messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 24, ...extra,
});

async function streamText(extra = {}) {
  const stream = await chat({ stream: true, ...extra });
  let text = '';
  const chunks = [];
  for await (const c of stream) {
    chunks.push(c);
    if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
  }
  return { text, chunks };
}

test('non-streamed chat: an OpenAI chat.completion object', async () => {
  const r = await chat();
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
});

test('streamed chat: the deltas concatenated equal the non-streamed text (temperature 0)', async () => {
  const whole = (await chat()).choices[0].message.content;
  const { text, chunks } = await streamText();
  assert.equal(text, whole);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.ok(chunks.length > 3, 'the text came in pieces');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
});

test('max_tokens and max_completion_tokens end with finish_reason length after exactly that many tokens', async () => {
  for (const field of ['max_tokens', 'max_completion_tokens']) {
    const r = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: PROMPT }], temperature: 0, [field]: 7,
    });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 7);
  }
});

test('usage: prompt tokens equal `minfer tokenize`, total is the sum', async () => {
  for (const content of [PROMPT, 'Tom and Lily went to the park. They saw a big dog.', 'ü ✓ 日本']) {
    const r = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content }], temperature: 0, max_tokens: 3,
    });
    assert.equal(r.usage.prompt_tokens, tokenCount(content), content);
    assert.equal(r.usage.completion_tokens, 3);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 3);
  }
});

test('stream_options.include_usage: a last chunk with no choices carries the usage', async () => {
  const { chunks } = await streamText({ max_tokens: 5, stream_options: { include_usage: true } });
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 5);
  assert.equal(last.usage.prompt_tokens, tokenCount(PROMPT));
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
});

test('content as an array of text parts equals the same text as a string', async () => {
  const a = await chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Once upon' }, { type: 'text', text: ' a time' }] }] });
  const b = await chat();
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
});

test('the same seed gives the same sampled text (temperature 1)', async () => {
  const a = await chat({ temperature: 1, seed: 42, max_tokens: 30 });
  const b = await chat({ temperature: 1, seed: 42, max_tokens: 30 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

test('/v1/models lists the model', async () => {
  const list = [];
  for await (const m of client.models.list()) list.push(m);
  assert.equal(list.length, 1);
  assert.equal(list[0].id, 'stories260K.gguf');
  assert.equal(list[0].object, 'model');
});

test('completions: raw prompt, non-streamed and streamed agree', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: PROMPT, temperature: 0, max_tokens: 12 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.prompt_tokens, tokenCount(PROMPT));
  const s = await client.completions.create({ model: MODEL, prompt: PROMPT, temperature: 0, max_tokens: 12, stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
  // without max_tokens: OpenAI's documented default of 16
  const d = await client.completions.create({ model: MODEL, prompt: PROMPT, temperature: 0 });
  assert.equal(d.usage.completion_tokens, 16);
});

test('16 parallel requests: each identical to its sequential answer', async () => {
  const prompts = Array.from({ length: 16 }, (_, i) => `${['Tom', 'Lily', 'Ben', 'Sue'][i % 4]} had a ${['dog', 'ball', 'cat', 'kite'][i >> 2]}`);
  const ask = (p) => client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: p }], temperature: 0, max_tokens: 16,
  }).then((r) => r.choices[0].message.content);
  const sequential = [];
  for (const p of prompts) sequential.push(await ask(p));
  const parallel = await Promise.all(prompts.map(ask));
  assert.deepEqual(parallel, sequential);
  assert.ok(new Set(sequential).size > 1, 'different prompts, different answers');
});

test('400 through the client: wrong types, n > 1, response_format, unknown role, context overflow', async () => {
  const cases = [
    [{ temperature: 'hot' }, /'temperature' must be a number/],
    [{ max_tokens: 0 }, /'max_tokens' must be between 1/],
    [{ n: 2 }, /'n' must be 1/],
    [{ response_format: { type: 'json_object' } }, /response_format 'json_object' is not supported/],
    [{ messages: [{ role: 'wizard', content: 'hi' }] }, /role' is 'wizard'/],
    [{ messages: [] }, /'messages' is empty/],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, /only text parts/],
    [{ messages: [{ role: 'user', content: 'go '.repeat(600) }] }, /the prompt has \d+ tokens but the context holds 512/],
  ];
  for (const [extra, re] of cases) {
    await assert.rejects(chat(extra), (e) => {
      assert.equal(e.status, 400, JSON.stringify(extra));
      assert.match(e.message, re);
      assert.equal(e.type, 'invalid_request_error');
      return true;
    });
  }
  const r = await chat({ some_unknown_field: { a: 1 }, user: 'x' });   // unknown fields are ignored
  assert.equal(r.choices[0].finish_reason, 'length');
});

test('a cancelled stream frees its sequence (metrics show it)', async () => {
  const long = await startServer(['--ctx', '4096']);
  try {
    const c = new OpenAI({ baseURL: long.base, apiKey: 'x', maxRetries: 0 });
    const stream = await c.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 4000, stream: true,
    });
    let n = 0;
    for await (const chunk of stream) { if (chunk && ++n === 3) break; }   // leaving the loop aborts the request
    const t0 = Date.now();
    while ((await metric(long.url, 'minfer_active_sequences')) !== 0 || (await metric(long.url, 'minfer_requests_cancelled_total')) !== 1) {
      assert.ok(Date.now() - t0 < 10000, 'the sequence was not freed within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(await metric(long.url, 'minfer_generated_tokens_total') < 4000, 'generation stopped early');
    const r = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 4 });
    assert.equal(r.usage.completion_tokens, 4);
  } finally {
    assert.equal((await long.stop()).code, 0, long.log());
  }
  assert.match(long.log(), /client gone/);
});

test('503 when the queue is full; a queued request waits its turn', async () => {
  const busy = await startServer(['--ctx', '4096', '--queue', '1']);
  try {
    const c = new OpenAI({ baseURL: busy.base, apiKey: 'x', maxRetries: 0 });
    const ctl = new AbortController();
    const stream = await c.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 4000, stream: true,
    }, { signal: ctl.signal });
    const it = stream[Symbol.asyncIterator]();
    await it.next();                       // A runs
    const queued = c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 3 });
    const t0 = Date.now();
    while ((await metric(busy.url, 'minfer_queue_depth')) !== 1) {   // B waits
      assert.ok(Date.now() - t0 < 10000, 'B never queued');
      await new Promise((r) => setTimeout(r, 20));
    }
    await assert.rejects(c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], max_tokens: 3 }),
      (e) => { assert.equal(e.status, 503); assert.equal(e.code, 'queue_full'); return true; });   // C refused
    ctl.abort();                           // A leaves: B runs
    const b = await queued;
    assert.equal(b.usage.completion_tokens, 3);
  } finally {
    assert.equal((await busy.stop()).code, 0, busy.log());
  }
});

test('401 with --api-key: wrong or missing key refused, right key served, /health open', async () => {
  const auth = await startServer(['--api-key', 'sesame']);
  try {
    const bad = new OpenAI({ baseURL: auth.base, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
      (e) => { assert.equal(e.status, 401); assert.equal(e.code, 'invalid_api_key'); return true; });
    await assert.rejects(bad.models.list(), (e) => e.status === 401);
    const none = await fetch(`${auth.base}/models`);
    assert.equal(none.status, 401);
    const good = new OpenAI({ baseURL: auth.base, apiKey: 'sesame', maxRetries: 0 });
    const r = await good.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(r.usage.completion_tokens, 2);
    assert.equal((await fetch(`${auth.url}/health`)).status, 200);
    assert.equal((await fetch(`${auth.url}/metrics`)).status, 200);
  } finally {
    assert.equal((await auth.stop()).code, 0, auth.log());
  }
});
