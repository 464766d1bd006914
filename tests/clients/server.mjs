// server.mjs — start and stop `minfer serve` for the client tests (run.sh sets the env).
//   MINFER_BIN    the build folder holding `minfer`
//   MINFER_MODEL  stories260K.gguf
// Each server listens on 127.0.0.1 at a port the kernel picks (--port 0; the port is read
// from the "listening on" line), and is stopped with SIGTERM by the test that started it.
import { spawn, execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export const BIN = `${process.env.MINFER_BIN}/minfer`;
export const MODEL = process.env.MINFER_MODEL;

export async function startServer(args = [], { readyTimeoutMs = 30000, model = MODEL } = {}) {
  const proc = spawn(BIN, ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0', ...args],
                     { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  proc.stderr.on('data', (d) => { log += d; });
  const t0 = Date.now();
  let port = 0;
  while (!port) {
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
    if (m) port = Number(m[1]);
    else if (exited) throw new Error(`minfer serve exited (${JSON.stringify(exited)}):\n${log}`);
    else if (Date.now() - t0 > readyTimeoutMs) { proc.kill('SIGKILL'); throw new Error(`no "listening on" line:\n${log}`); }
    else await sleep(20);
  }
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() - t0 > readyTimeoutMs) { proc.kill('SIGKILL'); throw new Error(`not ready:\n${log}`); }
    await sleep(50);
  }
  while (!/minfer serve: ready: /.test(log)) {   // the line that says what the engine does
    if (Date.now() - t0 > readyTimeoutMs) { proc.kill('SIGKILL'); throw new Error(`no "ready" line:\n${log}`); }
    await sleep(20);
  }
  return {
    url, base: `${url}/v1`, port, proc,
    log: () => log,
    exited: () => exited,
    // SIGTERM, then the exit status (SIGKILL and an error past timeoutMs)
    async stop(timeoutMs = 30000) {
      if (!exited) proc.kill('SIGTERM');
      const r = await Promise.race([exit, sleep(timeoutMs, null, { ref: false })]);   // unref'd: no 30 s wait at exit
      if (!r) { proc.kill('SIGKILL'); throw new Error(`minfer serve did not stop within ${timeoutMs} ms:\n${log}`); }
      return r;
    },
  };
}

// Token count of a text as `minfer tokenize` makes it (BOS included, as the server counts).
export function tokenCount(text) {
  const out = execFileSync(BIN, ['tokenize', '-m', MODEL, '-p', text], { encoding: 'utf8' }).trim();
  return out ? out.split(/\s+/).length : 0;
}

// One metric's value from /metrics.
export async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`metric ${name} missing:\n${text}`);
  return Number(m[1]);
}
