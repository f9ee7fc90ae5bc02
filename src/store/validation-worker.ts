/**
 * The thread that parses and validates policy text for `validation-pool.ts`, with the loader
 * `policy check` uses. Its RE2 checks run in a recycled worker of its own (`policy/re2.ts`).
 */
import { parentPort } from 'worker_threads';
import { countDocuments, loadText } from '../policy/loader';
import type { ValidationReply, ValidationRequest } from './validation-pool';

const port = parentPort;
if (!port) throw new Error('validation-worker.js runs as a worker thread');

function answer(request: ValidationRequest): ValidationReply {
  try {
    if (request.kind === 'count') return { id: request.id, kind: 'count', count: countDocuments(request.text) };
    return { id: request.id, kind: 'load', result: loadText(request.file, request.text, undefined, request.options) };
  } catch (err) {
    return { id: request.id, kind: 'error', message: (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 200) };
  }
}

port.on('message', (request: ValidationRequest) => {
  const reply = answer(request);
  try {
    port.postMessage(reply);
  } catch (err) {
    // A value structured clone cannot carry: said so, rather than leaving the job to time out.
    port.postMessage({ id: request.id, kind: 'error', message: `result not transferable: ${(err as Error).message}` } satisfies ValidationReply);
  }
});
