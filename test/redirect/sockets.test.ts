/**
 * The meshaccel_sockets addon through its TypeScript API, exercised inside a namespace the test
 * creates (lo, and a veth whose silent peer makes a connect time out).
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import { run, runRaw } from '../../src/datapath/redirect/exec';
import { socketsAddonPath } from '../tools/transparent-socket';
import { nsProcScript } from './fixtures/netns';

describe('transparent sockets addon', function () {
  const ns = `ma-rd-${process.pid}-sock`;
  let created = false;

  before(async function () {
    const reasons: string[] = [];
    if (process.getuid?.() !== 0) reasons.push('not root');
    if (!fs.existsSync(socketsAddonPath())) reasons.push(`addon not built (${socketsAddonPath()}; run make addon)`);
    if (reasons.length > 0) {
      console.log(`      skipping sockets addon tests: ${reasons.join('; ')}`);
      this.skip();
    }
    await runRaw(['ip', 'netns', 'del', ns]);
    await run(['ip', 'netns', 'add', ns]);
    created = true;
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    // 10.98.0.2 is on a veth whose peer answers nothing: a SYN there is never answered.
    await run(['ip', '-n', ns, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
    await run(['ip', '-n', ns, 'addr', 'add', '10.98.0.1/24', 'dev', 'd0']);
    await run(['ip', '-n', ns, 'link', 'set', 'd0', 'up']);
    await run(['ip', '-n', ns, 'link', 'set', 'd1', 'up']);
  });

  after(async () => {
    if (created) await runRaw(['ip', 'netns', 'del', ns]);
  });

  it('listens with IP_TRANSPARENT + SO_MARK, connects with SO_MARK, reports connect errors like Node', async () => {
    const r = await run(['nsenter', `--net=/run/netns/${ns}`, '--', process.execPath, nsProcScript(), 'sockets', '10.98.0.2']);
    const { checks } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { checks: Record<string, unknown> };
    assert.equal(checks.listenerPort, true);
    assert.equal(checks.listenerMark, 0x77);
    assert.equal(checks.upstreamMark, 0x539);
    assert.equal(checks.upstreamRemote, '127.0.0.1:true');
    assert.equal(checks.reply, 'hi');
    assert.equal(checks.acceptedMark, 0x77, 'accepted sockets inherit the listener mark');
    assert.equal(checks.refused, 'ECONNREFUSED:connect');
    assert.equal(checks.timeout, 'ETIMEDOUT');
    assert.ok((checks.timeoutMs as number) >= 250 && (checks.timeoutMs as number) < 3000, `timeout took ${checks.timeoutMs} ms`);
    assert.equal(checks.badAddress, 'TypeError');
    // IP_TRANSPARENT is set automatically with a foreign localHost, so the bind succeeds.
    assert.match(String(checks.foreignSourceNeedsTransparent), /^connected fd \d+$|^ECONNREFUSED$|^ETIMEDOUT$/);
  });
});
