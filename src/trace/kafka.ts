import * as fs from 'fs';
import type { PolicyOrigin } from '../policy/compiled';
import { kafkaRequestFrame, type KafkaRequestSpec } from '../kafka/request-frame';
import { kafkaFilterWasmPath } from '../kafka/wasm-path';
import * as k from '../kafka/wire';
import { ProxyWasmVm, type StreamProperties } from '../wasm-host/proxy-wasm-host';

/**
 * Judges one Kafka request the way the Kafka filter on the chain would: the `.wasm` the served
 * resource names (the built filter), configured with the plugin configuration that resource
 * carries, on a connection with the trace's addresses and principal, fed a real encoded request
 * frame. The filter explains itself at debug log level (its "decision" and "answer" lines); a
 * denied request's carrier is answered as a broker would, so what the client receives is what
 * the filter synthesizes.
 */

export interface KafkaJudgement {
  allowed: boolean;
  /** `Produce v9`. */
  request: string;
  /** The allowing rules: index in the filter configuration (= the port's rules) and in that rule's `kafka` list (undefined: a rule without Kafka rules). */
  by: Array<{ rule: number; kafka: number | undefined }>;
  /** Why it was denied. */
  reason?: string;
  /** What the client sees. */
  client: string;
}

const ERROR_NAMES: Record<number, string> = { 29: 'TOPIC_AUTHORIZATION_FAILED', 30: 'GROUP_AUTHORIZATION_FAILED', 53: 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED' };

function reasonOf(code: number, topic: string | undefined): string {
  if (code === 1) return 'no rule allows this API key, version and client id (default deny)';
  if (code === 2) return `topic ${topic} is allowed by no rule whose other fields match (default deny)`;
  if (code === 3) return `a topic rule applies and the request names topic ${topic} by an id no Metadata response on this port has named (KIP-516)`;
  return "a topic rule applies and the filter does not read this request's topics";
}

const modules = new Map<string, WebAssembly.Module>();

function moduleAt(file: string): WebAssembly.Module {
  let m = modules.get(file);
  if (!m) {
    if (!fs.existsSync(file)) throw new Error(`${file} (the Kafka filter) is missing: run \`make wasm\``);
    m = new WebAssembly.Module(fs.readFileSync(file));
    modules.set(file, m);
  }
  return m;
}

/** The `.wasm` a served resource names, when it is a local file here; else the built filter. */
export function kafkaModuleFile(localPath: string | undefined): string {
  return localPath && fs.existsSync(localPath) ? localPath : kafkaFilterWasmPath();
}

export function judgeKafkaRequest(moduleFile: string, pluginConfig: Uint8Array, properties: StreamProperties, spec: KafkaRequestSpec): KafkaJudgement {
  const req = kafkaRequestFrame(spec);
  const logs: string[] = [];
  const vm = ProxyWasmVm.fromModule(moduleAt(moduleFile), { logLevel: 'debug', log: (_level, message) => logs.push(message) });
  const root = vm.configure(pluginConfig);
  if (root === undefined) throw new Error(`the Kafka filter refused the served configuration: ${logs.join('; ')}`);
  let closed = false;
  const stream = vm.newConnection(root, properties, () => {
    closed = true;
  });
  try {
    const upstream = stream.downstream(req.frame);
    const decision = logs.map((l) => /^kafka filter: decision (allow|deny) .*?(?: by=(\S+))?(?: reason=(\d+))?(?: topic=(\S+))?$/.exec(l)).find((m) => m);
    if (!decision) {
      const why = logs.filter((l) => l.includes('closing connection')).join('; ') || logs.join('; ');
      return { allowed: false, request: req.label, by: [], reason: `the filter did not judge the request: ${why}`, client: 'a closed connection' };
    }
    if (decision[1] === 'allow') {
      const by = (decision[2] ?? '').split(',').map((s) => {
        const [rule, kafka] = s.split('.');
        return { rule: Number(rule), kafka: kafka === '*' ? undefined : Number(kafka) };
      });
      if (closed || !upstream.equals(req.frame)) throw new Error('the filter allowed the request but did not forward it unchanged');
      return {
        allowed: true,
        request: req.label,
        by: [...new Map(by.map((b) => [`${b.rule}.${b.kafka}`, b])).values()],
        client: "the broker's own answer (the request is forwarded unchanged)",
      };
    }
    const reason = reasonOf(Number(decision[3]), decision[4]);
    const answer = logs.map((l) => /^kafka filter: answer (close|none|code=(\d+))$/.exec(l)).find((m) => m);
    if (!answer || answer[1] === 'close')
      return { allowed: false, request: req.label, by: [], reason, client: `a closed connection (no authorization-failed ${req.label} response is built)` };
    if (answer[1] === 'none') return { allowed: false, request: req.label, by: [], reason, client: 'no response (a Produce with acks=0 expects none)' };
    const code = Number(answer[2]);
    // The carrier the filter sent in the request's place, answered as the broker would.
    const carrierKey = upstream.readInt16BE(4);
    const carrierVersion = upstream.readInt16BE(6);
    const corr = upstream.readInt32BE(8);
    const response = carrierKey === 3 ? k.metadataResponse(carrierVersion, corr, (w) => w.array([], () => undefined)) : k.apiVersionsResponse(corr);
    const toClient = stream.upstream(response);
    if (closed || toClient.length < 8 || toClient.readInt32BE(4) !== corr) throw new Error('the filter did not answer the denied request in its turn');
    return {
      allowed: false,
      request: req.label,
      by: [],
      reason,
      client: `a ${req.label} response with error ${ERROR_NAMES[code] ?? 'code'} (${code}) in ${req.apiKey <= 3 || req.apiKey === 8 || req.apiKey === 9 ? 'every topic/partition' : 'its error field'} (${toClient.length} bytes; the connection stays open)`,
    };
  } finally {
    stream.finish();
  }
}

/** `ns/name (file:line) spec.ingress[0] kafka[1]` for each allowing rule. */
export function describeKafkaRules(
  j: KafkaJudgement,
  origins: Record<string, PolicyOrigin>,
  describe: (o: PolicyOrigin | undefined, policy: string) => string,
): string {
  return j.by
    .map((b) => `${describe(origins[String(b.rule)], `rule ${b.rule}`)}${b.kafka === undefined ? ' (a rule without Kafka rules)' : ` kafka[${b.kafka}]`}`)
    .join(', ');
}
