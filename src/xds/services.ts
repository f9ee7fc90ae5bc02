import type * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../resource/type-urls';

/**
 * gRPC method definitions for xDS with Buffer in and Buffer out: requests are decoded by the
 * sessions, and responses are pre-framed bytes (see wire.ts), so grpc-js must not re-encode.
 */
const identity = (b: Buffer): Buffer => b;

function streamMethod(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

function unaryMethod(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return { ...streamMethod(path), requestStream: false, responseStream: false };
}

export interface XdsServiceSpec {
  service: string;
  /** undefined for ADS, which multiplexes every type. */
  typeUrl?: string;
  sotw: string;
  delta: string;
  fetch?: string;
}

export const XDS_SERVICES: readonly XdsServiceSpec[] = [
  { service: 'envoy.service.discovery.v3.AggregatedDiscoveryService', sotw: 'StreamAggregatedResources', delta: 'DeltaAggregatedResources' },
  {
    service: 'envoy.service.listener.v3.ListenerDiscoveryService',
    typeUrl: TypeUrl.Listener,
    sotw: 'StreamListeners',
    delta: 'DeltaListeners',
    fetch: 'FetchListeners',
  },
  {
    service: 'envoy.service.route.v3.RouteDiscoveryService',
    typeUrl: TypeUrl.RouteConfiguration,
    sotw: 'StreamRoutes',
    delta: 'DeltaRoutes',
    fetch: 'FetchRoutes',
  },
  {
    service: 'envoy.service.cluster.v3.ClusterDiscoveryService',
    typeUrl: TypeUrl.Cluster,
    sotw: 'StreamClusters',
    delta: 'DeltaClusters',
    fetch: 'FetchClusters',
  },
  {
    service: 'envoy.service.endpoint.v3.EndpointDiscoveryService',
    typeUrl: TypeUrl.ClusterLoadAssignment,
    sotw: 'StreamEndpoints',
    delta: 'DeltaEndpoints',
    fetch: 'FetchEndpoints',
  },
  {
    service: 'envoy.service.extension.v3.ExtensionConfigDiscoveryService',
    typeUrl: TypeUrl.ExtensionConfig,
    sotw: 'StreamExtensionConfigs',
    delta: 'DeltaExtensionConfigs',
    fetch: 'FetchExtensionConfigs',
  },
  { service: 'envoy.service.secret.v3.SecretDiscoveryService', typeUrl: TypeUrl.Secret, sotw: 'StreamSecrets', delta: 'DeltaSecrets', fetch: 'FetchSecrets' },
];

export function serviceDefinition(spec: XdsServiceSpec): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {
    [spec.sotw]: streamMethod(`/${spec.service}/${spec.sotw}`),
    [spec.delta]: streamMethod(`/${spec.service}/${spec.delta}`),
  };
  if (spec.fetch) def[spec.fetch] = unaryMethod(`/${spec.service}/${spec.fetch}`);
  return def as grpc.ServiceDefinition;
}
