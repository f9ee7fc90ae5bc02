import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson, UnenforceableError } from '../../src/envoy/proxy-resources';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { formatDiagnostic } from '../../src/policy/diagnostics';
import { loadFiles } from '../../src/policy/loader';
import { policyDoc, tmpDir } from './helpers';

/**
 * Cilium's header mismatch actions let a non-matching request through and log or rewrite the
 * header. Envoy's RBAC can do neither, so meshaccel used to drop the condition with a warning
 * while traffic flowed; rule 1 makes that a refusal at the field.
 */

const POLICY = policyDoc(
  [
    '  endpointSelector: {matchLabels: {app: web}}',
    '  ingress:',
    '    - toPorts:',
    '        - ports: [{port: "8080"}]',
    '          rules:',
    '            http:',
    '              - method: GET',
    '                headerMatches:',
    '                  - {name: X-Tenant, value: acme}',
    '                  - {name: X-Debug, mismatch: LOG}',
    '',
  ].join('\n'),
  'web',
);

describe('header mismatch actions are refused (rule 1)', () => {
  for (const mode of ['standalone', 'istio', 'grpc'] as const) {
    it(`policy check --mode ${mode} names the field`, () => {
      const dir = tmpDir('mismatch');
      const file = path.join(dir, 'policy.yaml');
      fs.writeFileSync(file, POLICY);
      try {
        const out = loadFiles([file], undefined, { mode }).diagnostics.map((d) => formatDiagnostic(d).replace(file, 'policy.yaml'));
        const field =
          /^policy\.yaml:\d+:\d+: document 1 \(L7Policy default\/web\): spec\.ingress\[0\]\.toPorts\[0\]\.rules\.http\[0\]\.headerMatches\[1\]\.mismatch: Cilium's mismatch actions/;
        assert.ok(
          out.some((l) => field.test(l)),
          out.join('\n'),
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('the builder refuses a compiled policy that carries one, and serves nothing for it', () => {
    const compiled: CompiledProxyPolicy = {
      nodeId: 'web-0',
      workloads: ['default/web'],
      ingress: [
        {
          port: 8080,
          protocol: 'TCP',
          l7: 'http',
          rules: [
            {
              origin: { policy: 'default/web', file: 'policy.yaml', line: 7, rule: { section: 'ingress', index: 0 } },
              peers: { any: true, cidrs: [], principals: [] },
              l7: { kind: 'http', rules: [{ method: 'GET', headerMatches: [{ name: 'X-Debug', mismatch: 'LOG' }] }] },
            },
          ],
        },
      ],
      egress: [],
    };
    assert.throws(
      () => buildProxyResourceJson(compiled, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }),
      (err: unknown) => err instanceof UnenforceableError && /X-Debug has the mismatch action LOG/.test(err.message) && /policy\.yaml:7/.test(err.message),
    );
  });
});
