/**
 * The thread that compiles RE2 patterns for `re2.ts`. re2-wasm lives here, not in the main
 * thread, because its fixed 16 MB heap fills up (compiles leak a little, some patterns a lot) and
 * then aborts for good: a dead worker is replaced, a dead main-thread module would reject every
 * later pattern until restart.
 */
import { workerData, type MessagePort } from 'worker_threads';
import type { Re2Reply, Re2Request, Re2Verdict } from './re2';

// Emscripten prints an abort's message and stack to stderr; the verdict goes back in the reply.
// Silenced before re2-wasm is loaded, which binds console.warn once at load time.
const silent = (): void => undefined;
console.log = console.warn = console.error = silent;

const { RE2 } = require('re2-wasm') as { RE2: new (pattern: string, flags: string) => { wrapper?: { delete(): void } } };

const { port, signal } = workerData as { port: MessagePort; signal: SharedArrayBuffer };
const done = new Int32Array(signal);

function compile(pattern: string): Re2Verdict {
  try {
    new RE2(pattern, 'u').wrapper?.delete();
    return { verdict: 'valid' };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // A SyntaxError is RE2's verdict on the pattern; anything else is the wasm module failing.
    if (err instanceof SyntaxError) return { verdict: 'invalid', reason: message.replace(/^Invalid regular expression: \/.*\/u: /s, '') || message };
    return { verdict: 'failed', reason: message.split('\n')[0].slice(0, 200) };
  }
}

port.on('message', (request: Re2Request) => {
  const verdicts: Re2Verdict[] = [];
  for (const pattern of request.patterns) {
    const v = compile(pattern);
    verdicts.push(v);
    // After an abort the module is dead: the rest go to a fresh worker.
    if (v.verdict === 'failed') break;
  }
  port.postMessage({ id: request.id, verdicts } satisfies Re2Reply);
  // The reply is queued on the port before the waiting thread is woken to take it.
  Atomics.store(done, 0, request.id);
  Atomics.notify(done, 0);
});
