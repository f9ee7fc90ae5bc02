import * as fs from 'fs';
import * as path from 'path';
import { KafkaProxy, type KafkaProxyOptions, type PolicyResult } from '../../src/kafka/proxy';
import type { MockCluster } from './mock-cluster';

/**
 * The policy the real-client Kafka suites serve: a broker workload bound to `nodeId` and an
 * L7Policy admitting loopback peers on 9092 with the given Kafka rules (YAML list items,
 * indented for the `kafka:` key).
 */
export function writeKafkaAcl(dir: string, nodeId: string, kafkaRules: string): void {
  fs.writeFileSync(
    path.join(dir, 'workloads.yaml'),
    `apiVersion: meshaccel.io/v1alpha1
kind: Workload
metadata: {name: kafka-0, namespace: default, labels: {app: kafka}}
spec:
  addresses: [10.20.0.1]
  proxy: {nodeId: ${nodeId}}
`,
  );
  fs.writeFileSync(
    path.join(dir, 'policy.yaml'),
    `apiVersion: meshaccel.io/v1alpha1
kind: L7Policy
metadata: {name: kafka-acl, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: kafka}}
  ingress:
    - fromCIDR: [127.0.0.0/8]
      toPorts:
        - ports: [{port: 9092, protocol: TCP}]
          rules:
            kafka:
${kafkaRules}
`,
  );
}

/** The relay with the filter in front of `mock`, configured from a compiled port; a policy with errors fails the suite. */
export function startFilteredRelay(compiled: PolicyResult, mock: MockCluster, log: KafkaProxyOptions['log'] = () => undefined): Promise<KafkaProxy> {
  if (!compiled.ok) throw new Error(`policy: ${JSON.stringify(compiled.errors)}`);
  return KafkaProxy.start({ listenHost: '127.0.0.1', listenPort: 0, upstreamHost: mock.host, upstreamPort: mock.port, config: compiled.config, log });
}
