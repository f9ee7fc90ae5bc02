/**
 * Runs the tools the agent drives (nft, ip, tc, bpftool) inside the target network namespace.
 * `nsenter --net` switches only the network namespace, so bpffs pins and files stay visible
 * (`ip netns exec` would remount /sys and hide /sys/fs/bpf).
 */
import { spawn } from 'child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    super(`\`${argv.join(' ')}\` exited ${result.code}: ${result.stderr.trim() || result.stdout.trim() || '(no output)'}`);
  }
}

/** Where commands run: a named netns (/run/netns/NAME), or the caller's own when undefined. */
export interface NetnsTarget {
  netns?: string;
}

export function netnsPath(netns: string): string {
  return netns.includes('/') ? netns : `/run/netns/${netns}`;
}

export function inNetns(target: NetnsTarget, argv: readonly string[]): string[] {
  return target.netns ? ['nsenter', `--net=${netnsPath(target.netns)}`, '--', ...argv] : [...argv];
}

/** Runs argv; resolves whatever the exit status (use `run` to require success). */
export function runRaw(argv: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new Error(`cannot run \`${argv.join(' ')}\`: ${err.message}`)));
    child.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

export async function run(argv: readonly string[], input?: string): Promise<RunResult> {
  const result = await runRaw(argv, input);
  if (result.code !== 0) throw new CommandError(argv, result);
  return result;
}

export function runIn(target: NetnsTarget, argv: readonly string[], input?: string): Promise<RunResult> {
  return run(inNetns(target, argv), input);
}

export function runRawIn(target: NetnsTarget, argv: readonly string[], input?: string): Promise<RunResult> {
  return runRaw(inNetns(target, argv), input);
}
