import * as assert from 'node:assert/strict';
import { NodeSnapshotBuilder as PolicySnapshotSource } from '../../src/server/node-snapshot-builder';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import type { NodeInfo } from '../../src/xds/cache';

describe('PolicySnapshotSource', () => {
  it('builds a node once per metadata it connects with, and again when the metadata changes', () => {
    const built: string[] = [];
    const source = new PolicySnapshotSource(
      { policyForNode: (id, metadata) => void built.push(`${id} ${JSON.stringify(metadata)}`) },
      { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG },
      { info: () => undefined, warn: () => undefined },
    );
    const node = (metadata: Record<string, unknown>): NodeInfo => ({ id: 'p', cluster: '', metadata, userAgentName: '' });
    assert.equal(source.nodeKey(node({ app: 'a' })), 'p');
    source.nodeKey(node({ app: 'a' }));
    assert.deepEqual(built, ['p {"app":"a"}']);
    source.nodeKey(node({ app: 'b' }));
    assert.deepEqual(built, ['p {"app":"a"}', 'p {"app":"b"}']);
    assert.ok(source.getSnapshot('p'));
    source.policiesChanged((n) => n.metadata.app === 'b');
    assert.equal(built.length, 3);
  });
});
