import * as assert from 'node:assert/strict';
import { checkText, policyDoc } from './helpers';

/**
 * One test per error class of `policy check`. Each asserts the full compiler-style line, so a
 * wrong line, column, document number or field path fails the test as surely as a missing error.
 */
describe('policy check error classes', () => {
  const portWith = (rules: string, port = '80', protocol = 'TCP'): string =>
    policyDoc(
      `  endpointSelector:\n    matchLabels:\n      app: api\n  ingress:\n    - toPorts:\n        - ports:\n            - port: ${port}\n              protocol: ${protocol}\n${rules}`,
    );

  it('accepts a valid policy', () => {
    assert.deepEqual(checkText(portWith('          rules:\n            http:\n              - method: GET\n                path: /v1/.*\n')), []);
  });

  it('YAML syntax error', () => {
    assert.deepEqual(checkText(`${policyDoc('  endpointSelector: {}\n')}---\nb: [1,\n`), [
      'policy.yaml:10:1: document 2: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  it('document that is not a mapping', () => {
    assert.deepEqual(checkText('- 1\n- 2\n'), ['policy.yaml:1:1: document 1: a document must be a mapping with apiVersion, kind, metadata and spec']);
  });

  it('unknown kind', () => {
    const out = checkText('apiVersion: meshaccel.io/v1alpha1\nkind: L7Polcy\nmetadata: {name: x}\n');
    assert.equal(out.length, 1);
    assert.match(out[0], /^policy\.yaml:2:7: document 1: kind: unknown kind L7Polcy of apiVersion meshaccel\.io\/v1alpha1; expected one of L7Policy/);
  });

  it('missing required field (points at the parent)', () => {
    assert.deepEqual(checkText(policyDoc('  ingress: []\n')), [
      'policy.yaml:7:3: document 1 (L7Policy default/api): spec.endpointSelector: required field is missing',
    ]);
  });

  it('unknown field (points at the key)', () => {
    assert.deepEqual(checkText(policyDoc('  endpointSelector: {}\n  ingres: []\n')), [
      'policy.yaml:8:3: document 1 (L7Policy default/api): spec.ingres: unknown field',
    ]);
  });

  it('wrong type', () => {
    assert.deepEqual(checkText(policyDoc('  endpointSelector: {}\n  ingress: {}\n')), [
      'policy.yaml:8:12: document 1 (L7Policy default/api): spec.ingress: must be of type array',
    ]);
  });

  it('value outside an enum', () => {
    assert.deepEqual(checkText(portWith('', '80', 'SCTP')), [
      'policy.yaml:14:25: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].ports[0].protocol: must be one of "TCP", "UDP", "ANY"',
    ]);
  });

  it('int-or-string that is neither', () => {
    assert.deepEqual(checkText(portWith('', '[80]')), [
      'policy.yaml:13:21: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].ports[0].port: must be an integer or a string',
    ]);
  });

  it('port out of range', () => {
    assert.deepEqual(checkText(portWith('', '"70000"')), [
      'policy.yaml:13:21: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].ports[0].port: "70000" is not a port number (1-65535)',
    ]);
  });

  it('invalid RE2: lookahead (valid ECMAScript, not RE2)', () => {
    assert.deepEqual(checkText(portWith('          rules:\n            http:\n              - path: /a\n              - path: "/(?=x)"\n')), [
      'policy.yaml:18:23: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.http[1].path: invalid RE2 regular expression: invalid perl operator: (?=',
    ]);
  });

  it('invalid RE2: backreference in host, and in method', () => {
    assert.deepEqual(checkText(portWith('          rules:\n            http:\n              - host: "(a)\\\\1"\n                method: "GET|("\n')), [
      'policy.yaml:17:23: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.http[0].host: invalid RE2 regular expression: invalid escape sequence: \\1',
      'policy.yaml:18:25: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.http[0].method: invalid RE2 regular expression: missing ): GET|(',
    ]);
  });

  it('http and kafka rules on one port entry', () => {
    assert.deepEqual(checkText(portWith('          rules:\n            http: []\n            kafka: []\n')), [
      'policy.yaml:16:13: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules: must hold either http or kafka rules, not both',
    ]);
  });

  it('L7 rules on UDP', () => {
    assert.deepEqual(checkText(portWith('          rules:\n            http: [{}]\n', '53', 'UDP')), [
      'policy.yaml:14:25: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].ports[0].protocol: L7 rules apply to TCP only; use TCP or ANY',
    ]);
  });

  it('Kafka role and apiKey together', () => {
    assert.deepEqual(checkText(portWith('          rules:\n            kafka:\n              - role: produce\n                apiKey: fetch\n', '9092')), [
      'policy.yaml:18:25: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.kafka[0].apiKey: role "produce" and apiKey "fetch" are mutually exclusive; give one',
    ]);
  });

  it('unknown Kafka API key name and role', () => {
    const out = checkText(portWith('          rules:\n            kafka:\n              - apiKey: produceit\n              - role: read\n', '9092'));
    assert.equal(out.length, 2);
    assert.match(out[0], /^policy\.yaml:17:25: .*rules\.kafka\[0\]\.apiKey: unknown Kafka API key "produceit"/);
    assert.equal(
      out[1],
      'policy.yaml:18:23: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.kafka[1].role: unknown Kafka role "read" (expected produce or consume)',
    );
  });

  it('Kafka API key names are case-insensitive (Cilium and Kafka spellings)', () => {
    assert.deepEqual(
      checkText(
        portWith(
          '          rules:\n            kafka:\n              - apiKey: ApiVersions\n              - apiKey: offsetcommit\n              - role: Consume\n',
          '9092',
        ),
      ),
      [],
    );
  });

  it('Kafka topic: bad characters and over 255 characters', () => {
    const out = checkText(
      portWith(
        `          rules:\n            kafka:\n              - topic: "a b"\n              - topic: ${'t'.repeat(256)}\n              - topic: ${'t'.repeat(255)}\n`,
        '9092',
      ),
    );
    assert.deepEqual(out, [
      'policy.yaml:17:24: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.kafka[0].topic: must match pattern "^[a-zA-Z0-9._-]*$"',
      'policy.yaml:18:24: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.kafka[1].topic: must NOT have more than 255 characters',
    ]);
  });

  it('Kafka apiVersion not a non-negative int16', () => {
    assert.deepEqual(
      checkText(
        portWith(
          '          rules:\n            kafka:\n              - apiVersion: "-1"\n              - apiVersion: 40000\n              - apiVersion: "3"\n',
          '9092',
        ),
      ),
      [
        'policy.yaml:17:29: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.kafka[0].apiVersion: "-1" is not a Kafka API version (0-32767)',
        'policy.yaml:18:29: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.kafka[1].apiVersion: 40000 is not a Kafka API version (0-32767)',
      ],
    );
  });

  it('invalid CIDR', () => {
    assert.deepEqual(checkText(policyDoc('  endpointSelector: {}\n  egress:\n    - toCIDR: [10.0.0.0/33, 10.0.0.0/8, "::1/129", 2001:db8::/32]\n')), [
      'policy.yaml:9:16: document 1 (L7Policy default/api): spec.egress[0].toCIDR[0]: "10.0.0.0/33" is not an IPv4 or IPv6 CIDR',
      'policy.yaml:9:41: document 1 (L7Policy default/api): spec.egress[0].toCIDR[2]: "::1/129" is not an IPv4 or IPv6 CIDR',
    ]);
  });

  it('an IPv6 zone id, which no CIDR set can hold (in a peer CIDR or a workload address)', () => {
    assert.deepEqual(checkText(policyDoc('  endpointSelector: {}\n  ingress:\n    - fromCIDR: ["fe80::1%eth0/64", "fe80::/64"]\n')), [
      'policy.yaml:9:18: document 1 (L7Policy default/api): spec.ingress[0].fromCIDR[0]: "fe80::1%eth0/64" is not an IPv4 or IPv6 CIDR',
    ]);
    assert.deepEqual(
      checkText(
        'apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: w\nspec:\n  addresses: ["fe80::1%eth0", "fe80::1"]\n  proxy:\n    nodeId: n\n',
      ),
      ['policy.yaml:6:15: document 1 (Workload default/w): spec.addresses[0]: "fe80::1%eth0" is not an IPv4 or IPv6 address'],
    );
  });

  it('matchExpressions: In without values, Exists with values, unknown operator', () => {
    const sel =
      '  endpointSelector:\n    matchExpressions:\n      - {key: a, operator: In}\n      - {key: b, operator: Exists, values: [x]}\n      - {key: c, operator: Equals}\n';
    assert.deepEqual(checkText(policyDoc(sel)), [
      'policy.yaml:9:9: document 1 (L7Policy default/api): spec.endpointSelector.matchExpressions[0].values: operator In needs at least one value',
      'policy.yaml:10:44: document 1 (L7Policy default/api): spec.endpointSelector.matchExpressions[1].values: operator Exists takes no values',
      'policy.yaml:11:28: document 1 (L7Policy default/api): spec.endpointSelector.matchExpressions[2].operator: must be one of "In", "NotIn", "Exists", "DoesNotExist"',
    ]);
  });

  it('metadata: invalid name, namespace on a cluster-scoped policy', () => {
    assert.deepEqual(checkText(policyDoc('  endpointSelector: {}\n', 'Bad_Name')), [
      'policy.yaml:4:9: document 1 (L7Policy default/Bad_Name): metadata.name: must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", at most 253 characters)',
    ]);
    assert.deepEqual(
      checkText('apiVersion: meshaccel.io/v1alpha1\nkind: ClusterL7Policy\nmetadata:\n  name: c\n  namespace: x\nspec:\n  endpointSelector: {}\n'),
      ['policy.yaml:5:14: document 1 (ClusterL7Policy c): metadata.namespace: a cluster-scoped resource has no namespace'],
    );
  });

  it('workload: bad address, both proxy bindings, unquoted label value', () => {
    const w =
      'apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: w\n  labels:\n    on: true\nspec:\n  addresses: [10.0.0.256]\n  proxy:\n    nodeId: n\n    nodeMetadata: {a: b}\n';
    assert.deepEqual(checkText(w), [
      'policy.yaml:6:9: document 1 (Workload default/w): metadata.labels.on: label values must be strings (quote numbers and booleans)',
      'policy.yaml:8:15: document 1 (Workload default/w): spec.addresses[0]: "10.0.0.256" is not an IPv4 or IPv6 address',
      'policy.yaml:10:5: document 1 (Workload default/w): spec.proxy: give exactly one of nodeId or nodeMetadata',
    ]);
  });

  it('errors name the right document of a multi-document file', () => {
    const good = policyDoc('  endpointSelector: {}\n', 'one');
    const bad = policyDoc('  endpointSelector: {}\n  ingress:\n    - fromCIDR: [nonsense]\n', 'two', 'web');
    assert.deepEqual(checkText(`${good}---\n${bad}`), [
      'policy.yaml:17:18: document 2 (L7Policy web/two): spec.ingress[0].fromCIDR[0]: "nonsense" is not an IPv4 or IPv6 CIDR',
    ]);
  });
});
