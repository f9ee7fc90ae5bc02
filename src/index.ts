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
export { encodedResource, contentVersion, type EncodedResource } from './resource/encoded';
export { XdsControlPlane, addXdsServices, type XdsControlPlaneOptions } from './xds/control-plane';
export { startXdsServer, type XdsServerOptions, type RunningXdsServer } from './xds/server';
export { certificateIdentityAuthorizer, certificateIdentities, serverCredentials, type TlsFiles } from './xds/tls';
export { NodeStatusRegistry, type NodeStatus, type TypeStatus, type NackRecord } from './xds/node-status';
export type { NodeAuthorizer } from './xds/stream-session';
export type { StreamLimits } from './xds/limits';
export { DEFAULT_LIMITS } from './xds/limits';
export { combineCallbacks, type XdsCallbacks, type StreamInfo, type RequestInfo, type ResponseInfo } from './xds/callbacks';
export { consoleLogger, clientText, withLevels, type Logger, type LogLevel } from './log';
export { startAdminServer, type AdminServer } from './xds/admin-http';
export { TypeUrl, typeUrlOf } from './resource/type-urls';
export { encodeEnvoyResource, SchemaError } from './envoy/encode';
export { buildProxyResources, buildProxyResourceJson, UnenforceableError, type EnvoyMode, type ProxyBuildOptions } from './envoy/proxy-resources';
export type { CompiledProxyPolicy, CompiledPortPolicy, CompiledRule, HttpRule, KafkaRule, L7Kind, L7Rules, PeerSet } from './policy/compiled';
export { PolicyStore, nodeAffected, type PolicyState, type PolicyUpdate, type ApplyResult } from './store/policy-store';
export type { ResourceEvent, PolicyObject, ObjectContent } from './store/events';
export type { PolicySource } from './sources/policy-source';
export { FilePolicySource } from './sources/file-source';
export { NodeSnapshotBuilder, type CompiledPolicyProvider, type NodeSnapshotBuilderOptions } from './server/node-snapshot-builder';
export { startControlServer, type ControlServerOptions } from './server/control-server';
export { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from './net/capture-config';
