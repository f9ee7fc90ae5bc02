import * as assert from 'node:assert/strict';
import { NodeStatusRegistry } from '../../src/xds/node-status';
import { Subscription } from '../../src/xds/subscription';
import { TypeUrl } from '../../src/resource/type-urls';

describe('Subscription (xDS wildcard rules)', () => {
  it('an empty first LDS/CDS request is a legacy wildcard; naming resources later leaves it', () => {
    const s = new Subscription(TypeUrl.Listener);
    s.replace([], true);
    assert.equal(s.wildcard, true);
    s.replace([], false);
    assert.equal(s.wildcard, true, 'still wildcard on a later empty request');
    s.replace(['a'], false);
    assert.equal(s.wildcard, false);
    assert.equal(s.key(), 'a');
    s.replace(['*', 'a'], false);
    assert.equal(s.wildcard, true, 'explicit * is wildcard');
  });

  it('an empty first RDS/EDS request is not a wildcard', () => {
    const s = new Subscription(TypeUrl.RouteConfiguration);
    s.replace([], true);
    assert.equal(s.wildcard, false);
    assert.equal(s.size, 0);
  });

  it('Delta subscribe/unsubscribe, including unsubscribing from *', () => {
    const s = new Subscription(TypeUrl.ClusterLoadAssignment);
    assert.deepEqual(s.subscribe(['a', 'b', 'a'], true), ['a', 'b']);
    assert.equal(s.key(), 'a\nb');
    s.subscribe(['*'], false);
    assert.equal(s.wildcard, true);
    assert.deepEqual(s.unsubscribe(['*', 'a', 'zz']), ['a']);
    assert.equal(s.wildcard, false);
    assert.equal(s.key(), 'b');
  });
});

describe('NodeStatusRegistry', () => {
  it('keeps a bounded number of disconnected nodes, evicting the oldest', () => {
    const r = new NodeStatusRegistry(2);
    for (let i = 0; i < 5; i++) {
      r.streamOpened(i, `n${i}`, `n${i}`, '', '', 'peer', 'sotw');
      r.streamClosed(i, `n${i}`);
    }
    assert.deepEqual(
      r.list().map((n) => n.nodeId),
      ['n3', 'n4'],
    );
    // A reconnecting node is no longer counted as disconnected.
    r.streamOpened(10, 'n3', 'n3', '', '', 'peer', 'delta');
    r.streamOpened(11, 'x', 'x', '', '', 'peer', 'sotw');
    r.streamClosed(11, 'x');
    assert.deepEqual(
      r.list().map((n) => n.nodeId),
      ['n3', 'n4', 'x'],
    );
  });

  it('a NACK is kept until the next ACK', () => {
    const r = new NodeStatusRegistry();
    r.streamOpened(1, 'n', 'n', '', '', 'p', 'sotw');
    r.sent('n', TypeUrl.Cluster, 'v1');
    r.nacked('n', TypeUrl.Cluster, { version: 'v1', nonce: 'x', code: 3, message: 'bad', at: new Date() });
    assert.equal(r.get('n')!.types[0].lastNack?.message, 'bad');
    r.acked('n', TypeUrl.Cluster, 'v0');
    assert.equal(r.get('n')!.types[0].lastNack, undefined);
    assert.equal(r.get('n')!.types[0].ackedVersion, 'v0');
  });
});
