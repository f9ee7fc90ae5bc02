import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../paths';
import { isBpffs } from './bpffs';
import { isCgroup2 } from './cgroup';
import { addonPath, loadNative } from './native';
import { BPFFS_MOUNT } from './abi';

/**
 * What attach needs, checked up front so a failure names the missing piece instead of
 * surfacing as an EPERM from deep inside libbpf. The proxy path never calls this: without the
 * datapath, traffic simply keeps using plain loopback TCP.
 */
export interface Requirement {
  name: 'root' | 'addon' | 'objects' | 'bpf-syscall' | 'bpffs' | 'cgroup-v2';
  ok: boolean;
  detail: string;
}

export interface ObjectPaths {
  sockops: string;
  skMsg: string;
  /** The reader-CPU recorder (reader_cpu.bpf.c); without it every run reads "layout unknown" and only hands off sizes that suit TCP on both layouts. */
  readerCpu?: string;
}

export function defaultObjectPaths(objectDir = path.join(packageRoot(), 'bpf/build')): ObjectPaths {
  return { sockops: path.join(objectDir, 'sockops.o'), skMsg: path.join(objectDir, 'sk_msg.o'), readerCpu: path.join(objectDir, 'reader_cpu.o') };
}

export interface PreflightInput {
  cgroup?: string;
  objects?: ObjectPaths;
  addon?: string;
  /** bpffs may be missing when we can mount it ourselves (attach does, as root). */
  bpffsMountable?: boolean;
}

export function preflight(input: PreflightInput = {}): Requirement[] {
  const reqs: Requirement[] = [];
  const uid = process.getuid ? process.getuid() : -1;
  reqs.push({ name: 'root', ok: uid === 0, detail: uid === 0 ? 'running as root' : `not root (uid ${uid}): loading BPF programs and attaching to a cgroup need root` });

  const addon = input.addon ?? addonPath();
  let native: ReturnType<typeof loadNative> | undefined;
  try {
    native = loadNative(addon);
    reqs.push({ name: 'addon', ok: true, detail: addon });
  } catch (err) {
    reqs.push({ name: 'addon', ok: false, detail: `${(err as Error).message.split('\n')[0]}` });
  }

  const objects = input.objects ?? defaultObjectPaths();
  const wanted = [objects.sockops, objects.skMsg, ...(objects.readerCpu ? [objects.readerCpu] : [])];
  const missing = wanted.filter((f) => !fs.existsSync(f));
  reqs.push({
    name: 'objects',
    ok: missing.length === 0,
    detail: missing.length === 0 ? wanted.join(', ') : `BPF objects not built: ${missing.join(', ')} (run \`make bpf\`)`,
  });

  if (native) {
    const p = native.probeBpf();
    reqs.push({
      name: 'bpf-syscall',
      ok: p.ok,
      detail: p.ok ? 'bpf() works' : `bpf() syscall unavailable: ${p.message ?? 'unknown'} (errno ${p.errno ?? '?'})${p.errno === 1 ? ' - needs root/CAP_BPF, or kernel.unprivileged_bpf_disabled' : ''}`,
    });
  } else {
    reqs.push({ name: 'bpf-syscall', ok: false, detail: 'not probed: the addon is needed to call bpf()' });
  }

  const bpffs = isBpffs(BPFFS_MOUNT);
  reqs.push({
    name: 'bpffs',
    ok: bpffs || input.bpffsMountable === true,
    detail: bpffs ? `${BPFFS_MOUNT} is bpffs` : `bpffs not mounted at ${BPFFS_MOUNT}${input.bpffsMountable ? ' (attach mounts it)' : ' (mount -t bpf bpf /sys/fs/bpf)'}`,
  });

  if (input.cgroup !== undefined) {
    const ok = isCgroup2(input.cgroup);
    reqs.push({
      name: 'cgroup-v2',
      ok,
      detail: ok ? `${input.cgroup} is a cgroup v2 directory` : `no cgroup v2 at ${input.cgroup}${fs.existsSync(input.cgroup) ? ' (exists but is not cgroup2)' : ' (does not exist)'}`,
    });
  }
  return reqs;
}

export function missingRequirements(reqs: Requirement[]): Requirement[] {
  return reqs.filter((r) => !r.ok);
}

export class PreflightError extends Error {
  constructor(readonly missing: Requirement[]) {
    super(`eBPF datapath unavailable: ${missing.map((r) => r.detail).join('; ')}`);
  }
}
