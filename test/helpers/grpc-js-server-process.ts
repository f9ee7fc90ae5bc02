import { spawn, type ChildProcess } from 'child_process';
import * as path from 'path';
import { startShopXdsServer, type ShopXdsServerOptions } from './grpc-xds-server';

/**
 * A real XdsServer (@grpc/grpc-js-xds, RBAC on) in a process of its own, so that a test sees it
 * die the way a user's server would (an exception its RBAC throws ends the process) without
 * taking mocha with it. The child prints `serving` once every bind serves, then waits.
 */

export interface ServerProcess {
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal) and what the child wrote to stderr. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  alive(): boolean;
  stop(): Promise<void>;
}

export function startServerProcess(o: ShopXdsServerOptions): Promise<ServerProcess> {
  const child = spawn(process.execPath, [path.join(__dirname, 'grpc-js-server-process.js'), JSON.stringify(o)], {
    env: { ...process.env, GRPC_XDS_EXPERIMENTAL_RBAC: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  let running = true;
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => {
      running = false;
      resolve({ code, signal, stderr });
    }),
  );
  const handle: ServerProcess = {
    child,
    exited,
    alive: () => running,
    stop: async () => {
      if (running) child.kill('SIGKILL');
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('serving\n')) resolve(handle);
    });
    void exited.then((e) => reject(new Error(`the XdsServer process ended before serving (code ${e.code}): ${e.stderr}`)));
  });
}

if (require.main === module) {
  const o = JSON.parse(process.argv[2]) as ShopXdsServerOptions;
  startShopXdsServer(o).then(
    () => process.stdout.write('serving\n'),
    (err: Error) => {
      process.stderr.write(`${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
