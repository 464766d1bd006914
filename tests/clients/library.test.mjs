// library.test.mjs — what the HTTP layer passes through to the library's conversation API
// (docs/generate.md, docs/batching.md): stop strings, logprobs, multi-turn conversations,
// tools and tool results, prefix reuse, several sequences at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { ChatOpenAI } from '@langchain/openai';
import { startServer, metric } from './server.mjs';

let srv, client, oss, ossClient, dir;
const PROMPT = 'Once upon a time';

before(async () => {
  srv = await startServer(['--ctx', '512', '--parallel', '4']);
  client = new OpenAI({ baseURL: srv.base, apiKey: 'x', maxRetries: 0 });
  dir = mkdtempSync(join(tmpdir(), 'minfer-library-'));
  const model = join(dir, 'gpt-oss-tiny.gguf');
  execFileSync(`${process.env.MINFER_BIN}/mkmodel`, ['-o', model, '--arch', 'gpt-oss', '--preset', 'tiny', '--seed', '7'], { stdio: 'ignore' });
  oss = await startServer(['--ctx', '1024'], { model }); // the tools' developer message alone is ~450 tokens of this small vocabulary
  ossClient = new OpenAI({ baseURL: oss.base, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  const a = await srv.stop();
  const b = await oss.stop();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(a.code, 0, srv.log());
  assert.equal(b.code, 0, oss.log());
});

const chat = (extra = {}) => client.chat.completions.create({
  model: 'x', messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 30, ...extra,
});

test('stop strings end the answer before the stop string, finish_reason stop, streamed alike', async () => {
  const free = (await chat()).choices[0].message.content;
  const at = free.indexOf(' was', 1);
  assert.ok(at > 0, `the reference text has " was": ${free}`);
  const r = await chat({ stop: [' was', 'zzz never'] });
  assert.equal(r.choices[0].message.content, free.slice(0, at));
  assert.equal(r.choices[0].finish_reason, 'stop');
  let text = '';
  for await (const c of await chat({ stop: ' was', stream: true })) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, free.slice(0, at));
});

test('LangChain: invoke with stop, and CrewAI\'s "\\nObservation:" stop word is accepted', async () => {
  const llm = new ChatOpenAI({ model: 'x', temperature: 0, maxTokens: 30, apiKey: 'x', maxRetries: 0, configuration: { baseURL: srv.base } });
  const free = (await llm.invoke(PROMPT)).content;
  const at = free.indexOf(' was', 1);
  assert.equal((await llm.invoke(PROMPT, { stop: [' was'] })).content, free.slice(0, at));
  const m = await llm.invoke(PROMPT, { stop: ['\nObservation:'] });
  assert.equal(typeof m.content, 'string');
});

test('logprobs: one entry per generated token, top_logprobs sorted, greedy picks the best', async () => {
  const r = await chat({ logprobs: true, top_logprobs: 3, max_tokens: 8 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  for (const e of lp) {
    assert.equal(e.top_logprobs.length, 3);
    assert.ok(e.logprob <= 0);
    assert.equal(e.logprob, e.top_logprobs[0].logprob, 'temperature 0 takes the most likely token');
    assert.equal(e.token, e.top_logprobs[0].token);
  }
  assert.equal(lp.map((e) => e.token).join(''), r.choices[0].message.content);
  const c = await client.completions.create({ model: 'x', prompt: PROMPT, temperature: 0, max_tokens: 5, logprobs: 2 });
  assert.equal(c.choices[0].logprobs.tokens.length, 5);
  assert.equal(c.choices[0].logprobs.top_logprobs[0] && Object.keys(c.choices[0].logprobs.top_logprobs[0]).length, 2);
});

test('multi-turn: a conversation that comes back reuses its cached prefix', async () => {
  const turn1 = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }];
  const a = await ossClient.chat.completions.create({ model: 'x', messages: turn1, temperature: 0, max_tokens: 8 });
  const turn2 = [...turn1, { role: 'assistant', content: a.choices[0].message.content || 'Hi.' }, { role: 'user', content: 'Again' }];
  const b = await ossClient.chat.completions.create({ model: 'x', messages: turn2, temperature: 0, max_tokens: 8 });
  assert.ok(b.usage.prompt_tokens > a.usage.prompt_tokens);
  assert.ok(b.usage.prompt_tokens_details.cached_tokens > 0, 'turn 2 reused turn 1');
});

test('tools: a history with an assistant tool call and the tool result renders and answers', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const messages = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp_c": 21}' },
  ];
  const r = await ossClient.chat.completions.create({ model: 'x', messages, tools, tool_choice: 'auto', temperature: 0, max_tokens: 16 });
  assert.ok(['stop', 'length', 'tool_calls'].includes(r.choices[0].finish_reason));
  for (const c of r.choices[0].message.tool_calls ?? []) {
    assert.equal(c.type, 'function');
    assert.match(c.id, /\S/);
    assert.equal(typeof c.function.arguments, 'string');
  }
  const none = await ossClient.chat.completions.create({ model: 'x', messages, tools, tool_choice: 'none', temperature: 0, max_tokens: 4 });
  assert.ok(none.usage.prompt_tokens < r.usage.prompt_tokens, "tool_choice 'none' leaves the tools out of the prompt");
});

test('--parallel 4: four concurrent requests share forward steps', async () => {
  assert.match(srv.log(), /4 sequences/);
  const steps0 = await metric(srv.url, 'minfer_batch_steps_total');
  const gen0 = await metric(srv.url, 'minfer_generated_tokens_total');
  const ask = (i) => client.chat.completions.create({
    model: 'x', messages: [{ role: 'user', content: `${PROMPT} ${i}` }], temperature: 0, max_tokens: 32,
  });
  const rs = await Promise.all([0, 1, 2, 3].map(ask));
  const generated = (await metric(srv.url, 'minfer_generated_tokens_total')) - gen0;
  const steps = (await metric(srv.url, 'minfer_batch_steps_total')) - steps0;
  assert.equal(generated, rs.reduce((a, r) => a + r.usage.completion_tokens, 0));
  // alone, every generated token takes a step of its own (and each prompt one more): shared
  // steps are the only way to need fewer steps than tokens
  assert.ok(steps < generated, `${steps} steps for ${generated} tokens: the sequences did not decode together`);
});
