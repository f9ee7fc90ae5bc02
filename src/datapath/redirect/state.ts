/**
 * What the agent installed in a namespace, recorded under /run (tmpfs: gone after reboot, as are
 * the rules), so `remove` and `status` know the mode, marks, table, devices and pins without the
 * caller repeating the apply options.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { RedirectConfig } from '../../net/capture-config';
import type { CaptureMode } from './validate';

export const STATE_DIR = '/run/meshaccel/redirect';

export interface InstalledState {
  netns?: string;
  mode: CaptureMode;
  config: RedirectConfig;
  appliedAt: string;
  /** Devices inbound capture is limited to, when the apply named them. */
  interfaces?: string[];
  /** bpf mode: devices with our tc filter, and which of them got a clsact qdisc from us. */
  devices?: string[];
  createdClsact?: string[];
  pinDir?: string;
}

/**
 * A filesystem-safe key for the namespace: "host" for the agent's own, `ns-<name>` otherwise,
 * with every character outside [A-Za-z0-9.-] escaped as _XX so two names never share a key
 * (and a namespace named "host" is not the host).
 */
export function namespaceKey(netns: string | undefined): string {
  if (!netns) return 'host';
  return `ns-${netns.replace(/[^A-Za-z0-9.-]/g, (c) => [...Buffer.from(c)].map((b) => `_${b.toString(16).padStart(2, '0')}`).join(''))}`;
}

function file(netns: string | undefined): string {
  return path.join(STATE_DIR, `${namespaceKey(netns)}.json`);
}

export function readState(netns: string | undefined): InstalledState | undefined {
  try {
    return JSON.parse(fs.readFileSync(file(netns), 'utf8')) as InstalledState;
  } catch {
    return undefined;
  }
}

export function writeState(state: InstalledState): void {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const f = file(state.netns);
  fs.writeFileSync(`${f}.tmp`, JSON.stringify(state, null, 2));
  fs.renameSync(`${f}.tmp`, f);
}

export function deleteState(netns: string | undefined): void {
  fs.rmSync(file(netns), { force: true });
}
