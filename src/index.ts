/**
 * meshaccel as a library. The xDS control plane embeds in any @grpc/grpc-js server:
 *
 *   const cache = new SnapshotCache();
 *   const xds = addXdsServices(myGrpcServer, { source: cache });
 *   cache.setSnapshot('node-id', Snapshot.fromResources([...]));
 *   xds.status.on('nack', (node, typeUrl, nack) => ...);
 */
export { SnapshotCache, nodeIdHash, type NodeHash, type NodeInfo, type SnapshotSource, type SnapshotCacheOptions } from './xds/cache';
export { Snapshot, selectionVersion } from './xds/snapshot';
export { encodedResource, contentVersion, type EncodedResource } from './xds/resource';
export { XdsControlPlane, addXdsServices, type XdsControlPlaneOptions } from './xds/control-plane';
export { startXdsServer, type XdsServerOptions, type RunningXdsServer } from './xds/standalone';
export { certificateIdentityAuthorizer, certificateIdentities, serverCredentials, type TlsFiles } from './xds/tls';
export { NodeStatusRegistry, type NodeStatus, type TypeStatus, type NackRecord } from './xds/node-status';
export type { NodeAuthorizer, StreamLimits, Logger } from './xds/stream-session';
export { startAdminServer, type AdminServer } from './xds/admin-http';
export { TypeUrl, typeUrlOf } from './envoy/type-urls';
export { encodeEnvoyResource, SchemaError } from './envoy/encode';
export { buildProxyResources, buildProxyResourceJson, UnenforceableError, type EnvoyMode, type ProxyBuildOptions } from './envoy/proxy-resources';
export type { CompiledProxyPolicy, CompiledPortPolicy, CompiledRule, HttpRule, KafkaRule, L7Kind, L7Rules, PeerSet } from './policy/compiled';
export { FilePolicySource, type PolicyState, type PolicyUpdate } from './sources/file-source';
export { PolicySnapshotSource } from './server/policy-snapshot-source';
export { startControlServer, type ControlServerOptions } from './server/control-server';
export { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from './datapath/redirect-config';
