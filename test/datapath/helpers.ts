/**
 * Real-kernel fixtures for the datapath tests: a private pin directory and cgroup per test
 * file, network namespaces, and peer processes started inside them. Everything created is
 * recorded and removed by cleanup(), which the tests call from after() hooks so a failing
 * test leaves no attachment, pin, cgroup or namespace behind.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as readline from 'readline';
import { attach, detach, status, AttachOptions, AttachResult, DatapathStatus } from '../../src/datapath/bpf/datapath';
import { BPFFS_MOUNT } from '../../src/datapath/bpf/abi';
import { mountBpffs } from '../../src/datapath/bpf/bpffs';
import { cgroup2Root } from '../../src/datapath/bpf/cgroup';
import { missingRequirements, preflight } from '../../src/datapath/bpf/preflight';

/** Why the kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(): string | undefined {
  const root = cgroup2Root();
  const missing = missingRequirements(preflight({ cgroup: root ?? '/sys/fs/cgroup', bpffsMountable: true }));
  if (!root) missing.push({ name: 'cgroup-v2', ok: false, detail: 'no cgroup2 mount in /proc/self/mounts' });
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    missing.push({ name: 'root', ok: false, detail: 'iproute2 (`ip`) not installed' });
  }
  if (missing.length > 0) return missing.map((m) => m.detail).join('; ');
  // A fresh machine has no bpffs mounted; the suites set it up as `datapath attach` does.
  try {
    mountBpffs(BPFFS_MOUNT);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/** mocha: skip with the reason printed, never silently pass. */
export function skipUnlessKernel(ctx: Mocha.Context): void {
  const reason = kernelSkipReason();
  if (reason) {
    console.log(`    skipping datapath kernel tests: ${reason}`);
    ctx.skip();
  }
}

/**
 * The hooks every kernel suite needs: skip (saying why) without the kernel features, a test
 * cgroup (with the programs attached when `attach` is set) for the suite or for each test, and
 * everything removed afterwards. `env` is set by the before hook.
 */
export function kernelSuite(options: { attach?: boolean; perTest?: boolean } = {}): { env: KernelEnv } {
  const suite = {} as { env: KernelEnv };
  (options.perTest ? beforeEach : before)(function () {
    skipUnlessKernel(this);
    suite.env = new KernelEnv();
    suite.env.makeCgroup();
    if (options.attach) suite.env.attach();
  });
  (options.perTest ? afterEach : after)(async function () {
    if (suite.env) await suite.env.cleanup();
  });
  return suite;
}

const PEER = path.join(__dirname, 'peer.js');
let serial = 0;

export interface PeerOptions {
  cgroup?: string;
  netns?: string;
}

/** A peer.js child; server() waits for it to listen, cmd() drives a client. */
export class Peer {
  private lines: string[] = [];
  private waiters: ((line: string) => void)[] = [];
  private stderr = '';

  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const w = this.waiters.shift();
      if (w) w(line);
      else this.lines.push(line);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  nextLine(timeoutMs = 60000): Promise<string> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer sent nothing in ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      const onExit = (code: number | null): void => reject(new Error(`peer exited (${code}); stderr: ${this.stderr}`));
      this.child.once('exit', onExit);
      this.waiters.push((line) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        resolve(line);
      });
    });
  }

  async json<T = Record<string, unknown>>(timeoutMs?: number): Promise<T> {
    return JSON.parse(await this.nextLine(timeoutMs)) as T;
  }

  /** Sends one client command and returns its JSON answer. */
  async cmd<T = { ok: boolean; error?: string; mismatches?: number; localPorts?: number[]; ms?: number }>(line: string, timeoutMs?: number): Promise<T> {
    this.child.stdin!.write(line + '\n');
    return this.json<T>(timeoutMs);
  }

  kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

export class KernelEnv {
  readonly id = `${process.pid}-${++serial}`;
  readonly pinDir = `/sys/fs/bpf/meshaccel-test-${this.id}`;
  readonly cgroup: string;
  private peers: Peer[] = [];
  private netnses: string[] = [];
  private cgroups: string[] = [];

  constructor() {
    const root = cgroup2Root();
    if (!root) throw new Error('no cgroup2 mount');
    this.cgroup = path.join(root, `meshaccel-test-${this.id}`);
  }

  /** A cgroup v2 directory under the root (the main test cgroup by default). */
  makeCgroup(dir = this.cgroup): string {
    fs.mkdirSync(dir, { recursive: true });
    this.cgroups.push(dir);
    return dir;
  }

  /** A network namespace with loopback up. */
  makeNetns(suffix: string): string {
    const name = `ma-${this.id}-${suffix}`;
    execFileSync('ip', ['netns', 'add', name]);
    this.netnses.push(name);
    execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  attach(opts: Omit<AttachOptions, 'pinDir'> = {}): AttachResult {
    return attach({ cgroup: this.cgroup, ...opts, pinDir: this.pinDir });
  }

  detach(): string[] {
    return detach({ pinDir: this.pinDir }).removed;
  }

  status(): DatapathStatus {
    return status({ pinDir: this.pinDir, maxSockets: 4096 });
  }

  /** Starts peer.js; the process joins the cgroup and netns before it creates any socket. */
  spawn(args: string[], opts: PeerOptions = {}): Peer {
    return this.spawnProgram([process.execPath, PEER, ...args], opts);
  }

  /** Starts any line-driven program the same way (in the cgroup and netns from its first socket). */
  spawnProgram(argv: string[], opts: PeerOptions = {}): Peer {
    const inner = [...(opts.netns ? ['ip', 'netns', 'exec', opts.netns] : []), ...argv];
    const quoted = inner.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const script = opts.cgroup ? `echo $$ > '${opts.cgroup}/cgroup.procs' && exec ${quoted}` : `exec ${quoted}`;
    const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new Peer(child);
    this.peers.push(peer);
    return peer;
  }

  async server(host: string, port: number, opts: PeerOptions & { sink?: boolean } = {}): Promise<Peer> {
    const p = this.spawn([opts.sink ? 'sink' : 'server', host, String(port)], opts);
    const first = await p.json<{ event: string; port: number }>(20000);
    if (first.event !== 'listening') throw new Error(`server did not start: ${JSON.stringify(first)}`);
    return p;
  }

  client(host: string, port: number, opts: PeerOptions = {}): Peer {
    return this.spawn(['client', host, String(port)], opts);
  }

  async killPeers(): Promise<void> {
    await Promise.all(this.peers.map((p) => p.kill()));
    this.peers = [];
  }

  /** Removes everything this env created; collects errors and reports them together. */
  async cleanup(): Promise<void> {
    const errors: string[] = [];
    await this.killPeers();
    try {
      detach({ pinDir: this.pinDir });
    } catch (err) {
      errors.push(`detach: ${(err as Error).message}`);
    }
    for (const ns of this.netnses.splice(0)) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch (err) {
        errors.push(`netns ${ns}: ${(err as Error).message}`);
      }
    }
    for (const cg of this.cgroups.splice(0).reverse()) {
      // A killed process leaves its cgroup asynchronously: retry briefly.
      for (let i = 0; ; i++) {
        try {
          if (fs.existsSync(cg)) fs.rmdirSync(cg);
          break;
        } catch (err) {
          if (i >= 50) {
            errors.push(`cgroup ${cg}: ${(err as Error).message}`);
            break;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    if (errors.length > 0) throw new Error(`cleanup failed: ${errors.join('; ')}`);
  }
}

let portSeq = Math.floor(Math.random() * 2000);
/**
 * Ports for test servers: below the ephemeral range (32768+) so no client socket on the host
 * holds them, spread by pid so concurrent suites rarely meet.
 */
export function testPort(): number {
  return 10000 + ((process.pid * 131 + portSeq++ * 7) % 20000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
