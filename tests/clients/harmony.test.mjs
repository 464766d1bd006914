// harmony.test.mjs — the reasoning field through the HTTP layer with a gpt-oss file: a tiny
// random-weight gpt-oss model made by the build's mkmodel (its text is noise, but the
// channels the harmony parser sorts it into must reach the client the same way streamed
// and not streamed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startServer } from './server.mjs';

let srv;
let client;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'minfer-harmony-'));
  const model = join(dir, 'gpt-oss-tiny.gguf');
  execFileSync(`${process.env.MINFER_BIN}/mkmodel`, ['-o', model, '--arch', 'gpt-oss', '--preset', 'tiny', '--seed', '7'], { stdio: 'ignore' });
  srv = await startServer([], { model });
  client = new OpenAI({ baseURL: srv.base, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  const r = await srv.stop();
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(r, { code: 0, signal: null }, srv.log());
});

const ask = (extra = {}) => client.chat.completions.create({
  model: 'gpt-oss', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }],
  temperature: 0, max_tokens: 60, ...extra,
});

test('harmony: content and reasoning_content streamed equal the whole answer (temperature 0)', async () => {
  const whole = (await ask()).choices[0];
  let content = '';
  let reasoning = '';
  for await (const c of await ask({ stream: true })) {
    const d = c.choices[0]?.delta ?? {};
    content += d.content ?? '';
    reasoning += d.reasoning_content ?? '';
  }
  assert.equal(content, whole.message.content);
  assert.equal(reasoning, whole.message.reasoning_content ?? '');
  assert.ok(['stop', 'length'].includes(whole.finish_reason), whole.finish_reason);
});

test('harmony: reasoning_effort low, medium, high are accepted; others are a 400', async () => {
  for (const e of ['low', 'medium', 'high']) {
    const r = await ask({ reasoning_effort: e, max_tokens: 2 });
    assert.equal(r.usage.completion_tokens, 2);
  }
  const medium = await ask({ reasoning_effort: 'medium', max_tokens: 1 });
  const none = await ask({ max_tokens: 1 });
  assert.equal(none.usage.prompt_tokens, medium.usage.prompt_tokens, 'the default effort is medium');
  await assert.rejects(ask({ reasoning_effort: 'extreme' }), (e) => e.status === 400 && /reasoning_effort/.test(e.message));
});
