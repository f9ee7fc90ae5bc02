import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { loadProtoFiles, protoSearchPath } from '../resource/protos';

/** Every Envoy resource and extension meshaccel generates or checks. */
export const ENVOY_PROTO_FILES: readonly string[] = [
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/core/v3/extension.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/kafka_broker/v3/kafka_broker.proto',
  'envoy/extensions/filters/network/wasm/v3/wasm.proto',
];

let envoyRoot: protobuf.Root | undefined;

/**
 * The full Envoy root (resources, filters, bootstrap), loaded only by the compiler and the
 * schema checker: a server that is handed pre-encoded resources never pays for it.
 */
export function getEnvoyRoot(): protobuf.Root {
  return (envoyRoot ??= loadProtoFiles(ENVOY_PROTO_FILES));
}

export function lookupType(fullName: string): protobuf.Type {
  return getEnvoyRoot().lookupType(fullName.replace(/^type\.googleapis\.com\//, ''));
}

const lazilyLoadedDirs = new Set<string>();

/**
 * Resolves a message type by full name in the Envoy root, loading the .proto files of its
 * package on demand. Bootstraps and `typed_config`s name extensions (access loggers, other
 * filters) that ENVOY_PROTO_FILES does not list; they are real Envoy types and must check as
 * such, while a name that is not in Envoy's API at all stays unresolvable (null).
 */
const resolvedTypes = new Map<string, protobuf.Type>();

export function resolveEnvoyType(fullName: string): protobuf.Type | null {
  const cached = resolvedTypes.get(fullName);
  if (cached) return cached;
  const type = resolveUncached(fullName);
  // Only hits are cached: a miss may resolve later if another package gets loaded meanwhile.
  if (type) resolvedTypes.set(fullName, type);
  return type;
}

function resolveUncached(fullName: string): protobuf.Type | null {
  const name = fullName.replace(/^\./, '');
  const root = getEnvoyRoot();
  const found = root.lookup(name);
  if (found instanceof protobuf.Type) return found;
  if (found) return null;
  const packageDir = name.split('.').slice(0, -1).join('/');
  if (!packageDir || lazilyLoadedDirs.has(packageDir)) return null;
  lazilyLoadedDirs.add(packageDir);
  const files: string[] = [];
  for (const dir of protoSearchPath()) {
    const candidate = path.join(dir, packageDir);
    if (!fs.existsSync(candidate) || !fs.statSync(candidate).isDirectory()) continue;
    for (const entry of fs.readdirSync(candidate)) if (entry.endsWith('.proto')) files.push(path.join(packageDir, entry));
    break;
  }
  if (files.length === 0) return null;
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  const loaded = root.lookup(name);
  return loaded instanceof protobuf.Type ? loaded : null;
}
