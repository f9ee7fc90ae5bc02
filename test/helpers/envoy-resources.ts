import { getEnvoyRoot } from '../../src/envoy/protos';
import { encodedResource, type EncodedResource } from '../../src/resource/encoded';
import { TypeUrl } from '../../src/resource/type-urls';

/** Encodes a plain protobufjs-shaped object (Any as {'@type', ...}) as an xDS resource. */
export function resource(typeUrl: string, name: string, value: Record<string, unknown>, options?: { ttlMs?: number }): EncodedResource {
  const type = getEnvoyRoot().lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
  return encodedResource(typeUrl, name, type.encode(type.fromObject(value)).finish(), options);
}

export function decodeAny(typeUrl: string, value: Uint8Array): Record<string, unknown> {
  const type = getEnvoyRoot().lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
  return type.toObject(type.decode(value), { longs: Number, enums: String, defaults: false }) as Record<string, unknown>;
}

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

/** A client-side (api_listener) Listener that gRPC's xDS resolver accepts. */
export function apiListener(name: string, routeConfigName: string): EncodedResource {
  return resource(TypeUrl.Listener, name, {
    name,
    api_listener: {
      api_listener: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        rds: { route_config_name: routeConfigName, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [ROUTER],
      },
    },
  });
}

export function routeToCluster(name: string, cluster: string): EncodedResource {
  return resource(TypeUrl.RouteConfiguration, name, {
    name,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster } }] }],
  });
}

export function edsCluster(name: string): EncodedResource {
  return resource(TypeUrl.Cluster, name, {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    lb_policy: 'ROUND_ROBIN',
  });
}

export function endpoints(clusterName: string, ports: number[]): EncodedResource {
  return resource(TypeUrl.ClusterLoadAssignment, clusterName, {
    cluster_name: clusterName,
    endpoints: [
      {
        locality: { region: 'test' },
        // gRPC ignores localities without a weight.
        load_balancing_weight: { value: 1 },
        lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })),
      },
    ],
  });
}
