import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { packageRoot } from '../paths';

/**
 * Envoy's v3 API is not published on npm as protos; @grpc/grpc-js-xds vendors the
 * data-plane-api (with PGV, udpa/xds annotations and googleapis) under deps/. We read it from
 * there, plus meshaccel's own proto/ directory for the contrib and meshaccel types.
 */
export function protoSearchPath(): string[] {
  const xdsDeps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return [
    path.join(packageRoot(), 'proto'),
    path.join(xdsDeps, 'envoy-api'),
    path.join(xdsDeps, 'xds'),
    path.join(xdsDeps, 'protoc-gen-validate'),
    path.join(xdsDeps, 'googleapis'),
    // google/protobuf/descriptor.proto and friends, which the annotations import.
    path.dirname(require.resolve('protobufjs/package.json')),
  ];
}

/** Only what the xDS server itself decodes: requests, Node, google.rpc.Status. */
export const DISCOVERY_PROTO_FILES: readonly string[] = ['envoy/service/discovery/v3/discovery.proto'];

export function loadProtoFiles(files: readonly string[]): protobuf.Root {
  const searchPath = protoSearchPath();
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target) && fs.existsSync(target)) return target;
    for (const dir of searchPath) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return target;
  };
  // keepCase: Envoy's YAML/JSON and the PGV annotations use the proto field names.
  root.loadSync(files as string[], { keepCase: true });
  root.resolveAll();
  return root;
}

let discoveryRoot: protobuf.Root | undefined;

/** The small root the xDS server needs; loaded at first use. */
export function getDiscoveryRoot(): protobuf.Root {
  return (discoveryRoot ??= loadProtoFiles(DISCOVERY_PROTO_FILES));
}
