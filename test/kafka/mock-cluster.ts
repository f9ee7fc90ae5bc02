import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../src/paths';

export interface MockCluster {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** librdkafka's mock cluster (one broker) in a process of its own; built with `make kafka-mock` if missing. */
export async function startMockCluster(topics: string[]): Promise<MockCluster> {
  const root = packageRoot();
  const bin = path.join(root, 'test', 'kafka', 'build', 'mock-cluster');
  if (!fs.existsSync(bin)) execFileSync('make', ['-s', 'kafka-mock'], { cwd: root, stdio: 'inherit' });
  const child: ChildProcess = spawn(bin, ['1', ...topics], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl).trim());
    });
    child.once('exit', (code) => reject(new Error(`mock-cluster exited (${code}) before printing its address`)));
  });
  const [host, port] = line.split(',')[0].split(':');
  return {
    host,
    port: Number(port),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin!.end();
        setTimeout(() => child.kill('SIGKILL'), 2000).unref();
      }),
  };
}
