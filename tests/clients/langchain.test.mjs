// langchain.test.mjs — LangChain.js (@langchain/openai's ChatOpenAI) against `minfer serve`,
// configured the way docs/serve.md tells users to: baseURL .../v1, any API key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatOpenAI } from '@langchain/openai';
import { HumanMessage } from '@langchain/core/messages';
import { startServer, tokenCount } from './server.mjs';

let srv;
const PROMPT = 'Once upon a time';

before(async () => { srv = await startServer(['--ctx', '512']); });
after(async () => {
  const r = await srv.stop();
  assert.deepEqual(r, { code: 0, signal: null }, srv.log());
});

const llm = (extra = {}) => new ChatOpenAI({
  model: 'stories260K', temperature: 0, maxTokens: 20, apiKey: 'unused', maxRetries: 0,
  configuration: { baseURL: srv.base }, ...extra,
});

test('invoke: an AIMessage with the text, usage and finish reason', async () => {
  const m = await llm().invoke([new HumanMessage(PROMPT)]);
  assert.equal(typeof m.content, 'string');
  assert.ok(m.content.length > 0);
  assert.equal(m.response_metadata.finish_reason, 'length');
  assert.equal(m.usage_metadata.input_tokens, tokenCount(PROMPT));
  assert.equal(m.usage_metadata.output_tokens, 20);
});

test('stream: the chunks concatenated equal invoke (temperature 0), usage on the stream', async () => {
  const whole = (await llm().invoke(PROMPT)).content;
  let text = '';
  let n = 0;
  let usage = null;
  for await (const chunk of await llm({ streamUsage: true }).stream(PROMPT)) {
    text += chunk.content;
    n++;
    if (chunk.usage_metadata) usage = chunk.usage_metadata;
  }
  assert.equal(text, whole);
  assert.ok(n > 3, 'several chunks');
  assert.ok(usage, 'usage_metadata on a chunk');
  assert.equal(usage.output_tokens, 20);
});

test('batch: several prompts at once, each as when asked alone', async () => {
  const prompts = ['Tom had a dog', 'Lily saw a cat', 'Ben found a ball'];
  const alone = [];
  for (const p of prompts) alone.push((await llm().invoke(p)).content);
  const together = (await llm().batch(prompts)).map((m) => m.content);
  assert.deepEqual(together, alone);
});
