import type { KafkaRule, L7RulesOf } from '../compiled';
import { kafkaApiKey, kafkaRoleKeys, parseKafkaApiVersion } from '../kafka';
import type { KafkaRuleSpec } from '../model';
import type { L7Protocol, SpecCheck } from './protocol';

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/** Cilium's Kafka rules, with `role` expanded to the API keys it stands for. */
export const KAFKA_PROTOCOL: L7Protocol<'kafka'> = {
  kind: 'kafka',
  name: 'Kafka',
  compile(specs: readonly KafkaRuleSpec[]): L7RulesOf<'kafka'> {
    const rules = specs.map((k) => {
      const apiKeys = k.role ? [...(kafkaRoleKeys(k.role) ?? [])] : k.apiKey ? [kafkaApiKey(k.apiKey) as number] : [];
      const out: KafkaRule = { apiKeys };
      if (k.apiVersion !== undefined && k.apiVersion !== '') out.apiVersion = parseKafkaApiVersion(k.apiVersion);
      if (nonEmpty(k.clientID)) out.clientID = k.clientID;
      if (nonEmpty(k.topic)) out.topic = k.topic;
      return out;
    });
    return { kind: 'kafka', rules };
  },
  check(k, at, check: SpecCheck): void {
    const role = typeof k.role === 'string' ? k.role : undefined;
    const apiKey = typeof k.apiKey === 'string' ? k.apiKey : undefined;
    if (role && apiKey) check.error([...at, 'apiKey'], `role "${role}" and apiKey "${apiKey}" are mutually exclusive; give one`);
    if (role && kafkaRoleKeys(role) === undefined) check.error([...at, 'role'], `unknown Kafka role "${role}" (expected produce or consume)`);
    if (apiKey && kafkaApiKey(apiKey) === undefined) {
      check.error(
        [...at, 'apiKey'],
        `unknown Kafka API key "${apiKey}" (names such as produce, fetch, offsets, metadata, offsetcommit, offsetfetch, findcoordinator, joingroup, heartbeat, leavegroup, syncgroup, apiversions, createtopics, deletetopics)`,
      );
    }
    const version = k.apiVersion;
    if ((typeof version === 'number' || (typeof version === 'string' && version !== '')) && parseKafkaApiVersion(version) === undefined) {
      check.error([...at, 'apiVersion'], `${JSON.stringify(version)} is not a Kafka API version (0-32767)`);
    }
  },
  copy: (l7) => ({ kind: 'kafka', rules: l7.rules.map((k) => ({ ...k, apiKeys: [...k.apiKeys] })) }),
  allowAll: () => ({ kind: 'kafka', rules: [] }),
};
