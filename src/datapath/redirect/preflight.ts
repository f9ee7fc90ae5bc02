/**
 * What must be present before the agent touches a namespace. Each missing piece is reported by
 * name with how to get it, instead of failing half-way through with a tool's raw error.
 */
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../paths';
import type { CaptureMode } from './validate';
import { netnsPath, runRaw } from './exec';

/** Whether argv runs and exits 0 (a tool's version flag). */
export async function hasTool(argv: string[]): Promise<boolean> {
  try {
    return (await runRaw(argv)).code === 0;
  } catch {
    return false;
  }
}

export async function missingPrerequisites(mode: CaptureMode, netns?: string): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid && process.getuid() !== 0) missing.push('root privileges (CAP_NET_ADMIN/CAP_SYS_ADMIN): run as root');
  if (!(await hasTool(['nft', '--version']))) missing.push('nft (Debian package nftables; `make setup`)');
  if (!(await hasTool(['ip', '-V']))) missing.push('ip (Debian package iproute2)');
  if (netns !== undefined) {
    if (!(await hasTool(['nsenter', '--version']))) missing.push('nsenter (Debian package util-linux)');
    if (!fs.existsSync(netnsPath(netns))) missing.push(`network namespace "${netns}" (${netnsPath(netns)} does not exist; create it with \`ip netns add\`)`);
  }
  if (mode === 'bpf') {
    if (!(await hasTool(['tc', '-V']))) missing.push('tc (Debian package iproute2)');
    if (!(await hasTool(['bpftool', 'version']))) missing.push('bpftool (Debian package bpftool)');
    const built = path.join(packageRoot(), 'bpf', 'build', 'tproxy_sk_assign.o');
    if (!fs.existsSync(built) && !((fs.existsSync('/usr/bin/clang-14') || fs.existsSync('/usr/bin/clang')) && (await hasTool(['make', '--version'])))) {
      missing.push(`${built} (run \`make bpf\`) or clang-14 and make to build it`);
    }
  }
  return missing;
}
