/**
 * bpf mode: loads bpf/tproxy_sk_assign.bpf.c with bpftool (maps pinned per namespace in the
 * agent's own bpffs), fills its config maps, and attaches it on tc ingress (clsact) of the
 * namespace's interfaces and lo. The program replaces nft's `tproxy`: it looks up the proxy's
 * listener and calls bpf_sk_assign (see the program's header comment).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { makePinDir, mountBpffs } from '../bpf/bpffs';
import { packageRoot } from '../../paths';
import type { RedirectConfig } from '../../net/capture-config';
import { cidrsOf } from '../../net/cidr';
import { run, runIn, runRawIn, type NetnsTarget } from './exec';

export const PROGRAM_NAME = 'tproxy_sk_assign';
/** tc filter preference of our filter, so detach removes exactly ours. */
export const TC_PREF = 4242;
export const REDIRECT_BPFFS = '/run/meshaccel/bpffs';

export const STAT_NAMES = [
  'inbound_captured',
  'inbound_established',
  'inbound_excluded',
  'outbound_captured',
  'outbound_established',
  'no_listener',
  'assign_failed',
] as const;

const FLAG_INBOUND_PORTS_LISTED = 1;
const FLAG_INBOUND_ENABLED = 2;
const FLAG_OUTBOUND_ENABLED = 4;
const FLAG_IPV6 = 8;

/**
 * The compiled object: bpf/build/ (built by `make bpf`) when up to date, else built by the same
 * Makefile into a private temp dir, so the agent works before the shared build has run.
 */
export async function bpfObjectPath(): Promise<string> {
  const root = packageRoot();
  const source = path.join(root, 'bpf', `${PROGRAM_NAME}.bpf.c`);
  const built = path.join(root, 'bpf', 'build', `${PROGRAM_NAME}.o`);
  const srcStat = fs.statSync(source, { throwIfNoEntry: false });
  const builtStat = fs.statSync(built, { throwIfNoEntry: false });
  if (builtStat && (!srcStat || builtStat.mtimeMs >= srcStat.mtimeMs)) return built;
  if (!srcStat) throw new Error(`neither ${built} nor its source ${source} exists`);
  const dir = path.join(os.tmpdir(), `meshaccel-redirect-${process.getuid?.() ?? 0}`);
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `${PROGRAM_NAME}.o`);
  const outStat = fs.statSync(out, { throwIfNoEntry: false });
  if (outStat && outStat.mtimeMs >= srcStat.mtimeMs) return out;
  // Built in a directory of its own, then renamed: two agents building at once never see half a file.
  const buildDir = fs.mkdtempSync(path.join(dir, 'build-'));
  try {
    const object = path.join(buildDir, `${PROGRAM_NAME}.o`);
    await run(['make', '-s', '-f', path.join(root, 'bpf', 'Makefile'), `BUILDDIR=${buildDir}`, object]);
    fs.renameSync(object, out);
  } finally {
    fs.rmSync(buildDir, { recursive: true, force: true });
  }
  return out;
}

/** A bpffs instance of our own, so pins never collide with other components' /sys/fs/bpf. */
export async function ensureBpffs(): Promise<string> {
  return mountBpffs(REDIRECT_BPFFS, 'meshaccel-bpffs');
}

/** Where loadProgram pins the program and its maps under a pin directory. */
export const progPinOf = (pinDir: string): string => path.join(pinDir, 'prog');
const mapDirOf = (pinDir: string): string => path.join(pinDir, 'maps');

function u32le(n: number): string[] {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return [...b].map((x) => x.toString(16).padStart(2, '0'));
}

function u16le(n: number): string[] {
  return u32le(n).slice(0, 2);
}

async function mapUpdate(mapPin: string, key: string[], value: string[]): Promise<void> {
  await run(['bpftool', 'map', 'update', 'pinned', mapPin, 'key', 'hex', ...key, 'value', 'hex', ...value]);
}

function cidrKey(text: string, family: 4 | 6): string[] {
  const c = cidrsOf([text], family)[0];
  const addr = family === 4 ? Buffer.from(c.address.split('.').map(Number)) : ipv6Bytes(c.address);
  return [...u32le(c.prefix), ...[...addr].map((x) => x.toString(16).padStart(2, '0'))];
}

export function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  // An IPv4-embedded tail (::ffff:10.0.0.1) is two groups, not one.
  const group = (h: string): number[] => (h.includes('.') ? ((b) => [(b[0] << 8) | b[1], (b[2] << 8) | b[3]])(h.split('.').map(Number)) : [parseInt(h, 16)]);
  const parse = (s: string | undefined): number[] => (s ? s.split(':').filter((x) => x !== '') : []).flatMap(group);
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(g, i * 2));
  return buf;
}

/** Loads a fresh program + maps under pinDir and writes the configuration into the maps. */
/** Loads and configures the program under pinDir; returns its pin (progPinOf(pinDir)). */
export async function loadProgram(target: NetnsTarget, pinDir: string, config: RedirectConfig): Promise<string> {
  const object = await bpfObjectPath();
  fs.rmSync(pinDir, { recursive: true, force: true });
  const mapDir = mapDirOf(pinDir);
  makePinDir(mapDir);
  const progPin = progPinOf(pinDir);
  await runIn(target, ['bpftool', 'prog', 'load', object, progPin, 'type', 'classifier', 'pinmaps', mapDir]);
  const m = (name: string): string => path.join(mapDir, name);
  for (const p of config.inboundPorts) await mapUpdate(m('ma_rd_in_ports'), u16le(p), ['01']);
  for (const p of config.excludeInboundPorts) await mapUpdate(m('ma_rd_in_xports'), u16le(p), ['01']);
  for (const c of cidrsOf(config.excludeInboundCidrs, 4)) await mapUpdate(m('ma_rd_in_xv4'), cidrKey(c.text, 4), ['01']);
  for (const c of cidrsOf(config.excludeInboundCidrs, 6)) await mapUpdate(m('ma_rd_in_xv6'), cidrKey(c.text, 6), ['01']);
  const flags =
    FLAG_INBOUND_ENABLED |
    FLAG_OUTBOUND_ENABLED |
    (config.inboundPorts.length > 0 ? FLAG_INBOUND_PORTS_LISTED : 0) |
    (config.captureIpv6 !== false ? FLAG_IPV6 : 0);
  // struct rd_config { u32 tproxy_mark; u16 inbound; u16 outbound; u32 flags; u32 pad; }
  const value = [...u32le(config.tproxyMark), ...u16le(config.inboundProxyPort), ...u16le(config.outboundProxyPort), ...u32le(flags), ...u32le(0)];
  // Written last: until the config entry exists the program passes every packet.
  await mapUpdate(m('ma_rd_config'), u32le(0), value);
  return progPin;
}

export async function listInterfaces(target: NetnsTarget): Promise<string[]> {
  const r = await runIn(target, ['ip', '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
}

async function hasClsact(target: NetnsTarget, dev: string): Promise<boolean> {
  const r = await runIn(target, ['tc', 'qdisc', 'show', 'dev', dev]);
  return /qdisc clsact/.test(r.stdout);
}

/** Attaches (or atomically replaces) our ingress filter; returns whether clsact was created. */
export async function attachIngress(target: NetnsTarget, dev: string, progPin: string): Promise<boolean> {
  let created = false;
  if (!(await hasClsact(target, dev))) {
    await runIn(target, ['tc', 'qdisc', 'add', 'dev', dev, 'clsact']);
    created = true;
  }
  await runIn(target, [
    'tc',
    'filter',
    'replace',
    'dev',
    dev,
    'ingress',
    'pref',
    String(TC_PREF),
    'handle',
    '1',
    'bpf',
    'direct-action',
    'object-pinned',
    progPin,
  ]);
  return created;
}

/** Removes our filter; removes clsact too when we created it and nothing else uses it. */
export async function detachIngress(target: NetnsTarget, dev: string, removeClsact: boolean): Promise<void> {
  const show = await runRawIn(target, ['tc', 'filter', 'show', 'dev', dev, 'ingress']);
  if (show.code !== 0) return; // interface gone
  if (new RegExp(`pref ${TC_PREF} bpf`).test(show.stdout)) {
    await runIn(target, ['tc', 'filter', 'del', 'dev', dev, 'ingress', 'pref', String(TC_PREF)]);
  }
  if (!removeClsact) return;
  const ingress = await runIn(target, ['tc', 'filter', 'show', 'dev', dev, 'ingress']);
  const egress = await runIn(target, ['tc', 'filter', 'show', 'dev', dev, 'egress']);
  if (ingress.stdout.trim() === '' && egress.stdout.trim() === '') await runIn(target, ['tc', 'qdisc', 'del', 'dev', dev, 'clsact']);
}

/** Devices where our filter is attached (for status and for remove without a state file). */
export async function attachedDevices(target: NetnsTarget): Promise<string[]> {
  const out: string[] = [];
  for (const dev of await listInterfaces(target)) {
    const r = await runRawIn(target, ['tc', 'filter', 'show', 'dev', dev, 'ingress']);
    if (r.code === 0 && new RegExp(`pref ${TC_PREF} bpf`).test(r.stdout)) out.push(dev);
  }
  return out;
}

export async function readStats(pinDir: string): Promise<Record<string, number>> {
  const r = await run(['bpftool', '-j', 'map', 'dump', 'pinned', path.join(mapDirOf(pinDir), 'ma_rd_stats')]);
  // A per-CPU array: one value per CPU, summed.
  const rows = JSON.parse(r.stdout) as { formatted?: { key: number; values: { cpu: number; value: number }[] } }[];
  const stats: Record<string, number> = {};
  for (const row of rows) {
    const name = row.formatted && STAT_NAMES[row.formatted.key];
    if (name) stats[name] = row.formatted!.values.reduce((sum, v) => sum + v.value, 0);
  }
  return stats;
}
