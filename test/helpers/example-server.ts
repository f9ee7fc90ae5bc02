import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type * as grpc from '@grpc/grpc-js';
import { startControlServer, type ControlServerOptions, type RunningControlServer } from '../../src/server/control-server';
import { packageRoot } from '../../src/paths';
import { rawClient } from './raw-xds-client';

export interface ExampleServer {
  /** A private copy of examples/, so a test may edit the files. */
  dir: string;
  server: RunningControlServer;
  client: grpc.Client;
}

/** `meshaccel serve` on a copy of the example policies and workloads, on loopback, with a raw client. */
export async function startExampleServer(prefix: string, options: Partial<ControlServerOptions> & Pick<ControlServerOptions, 'log'>): Promise<ExampleServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.cpSync(path.join(packageRoot(), 'examples/policies'), path.join(dir, 'policies'), { recursive: true });
  fs.cpSync(path.join(packageRoot(), 'examples/workloads'), path.join(dir, 'workloads'), { recursive: true });
  const server = await startControlServer({
    directories: [path.join(dir, 'policies'), path.join(dir, 'workloads')],
    mode: 'standalone',
    host: '127.0.0.1',
    port: 0,
    ...options,
  });
  return { dir, server, client: rawClient(server.xds.port) };
}

export async function stopExampleServer(bed: ExampleServer): Promise<void> {
  bed.client.close();
  await bed.server.close();
  fs.rmSync(bed.dir, { recursive: true, force: true });
}
