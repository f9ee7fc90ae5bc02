import { Snapshot } from '../../src/xds/snapshot';
import { TypeUrl } from '../../src/resource/type-urls';
import { getEnvoyRoot } from '../../src/envoy/protos';
import { encodedResource, type EncodedResource } from '../../src/resource/encoded';

export const PER_TYPE = 10;

function encode(typeUrl: string, name: string, value: Record<string, unknown>): EncodedResource {
  const type = getEnvoyRoot().lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
  return encodedResource(typeUrl, name, type.encode(type.fromObject(value)).finish());
}

/** ~50 resources over five types, shaped like a sidecar's: `generation` changes every one. */
export function benchSnapshot(generation: number): Snapshot {
  const out: EncodedResource[] = [];
  for (let i = 0; i < PER_TYPE; i++) {
    const svc = `svc-${i}`;
    out.push(
      encode(TypeUrl.Cluster, svc, { name: svc, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: { seconds: 1 + generation } }),
    );
    out.push(
      encode(TypeUrl.ClusterLoadAssignment, svc, {
        cluster_name: svc,
        endpoints: [
          {
            lb_endpoints: Array.from({ length: 4 }, (_, j) => ({
              endpoint: { address: { socket_address: { address: `10.0.${i}.${j + 1}`, port_value: 8000 + generation } } },
            })),
          },
        ],
      }),
    );
    out.push(
      encode(TypeUrl.Listener, `listener-${i}`, {
        name: `listener-${i}`,
        address: { socket_address: { address: '0.0.0.0', port_value: 9000 + i } },
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                  stat_prefix: `in_${i}_${generation}`,
                  rds: { route_config_name: `route-${i}`, config_source: { ads: {} } },
                },
              },
            ],
          },
        ],
      }),
    );
    out.push(
      encode(TypeUrl.RouteConfiguration, `route-${i}`, {
        name: `route-${i}`,
        virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: `/v${generation}` }, route: { cluster: svc } }] }],
      }),
    );
    out.push(
      encode(TypeUrl.ExtensionConfig, `rbac-${i}`, {
        name: `rbac-${i}`,
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
          rules: { policies: { [`p${generation}`]: { permissions: [{ any: true }], principals: [{ any: true }] } } },
        },
      }),
    );
  }
  return Snapshot.fromResources(out);
}

export const NAMED_SUBSCRIPTIONS: Record<string, string[]> = {
  [TypeUrl.Cluster]: [],
  [TypeUrl.Listener]: [],
  [TypeUrl.ClusterLoadAssignment]: Array.from({ length: PER_TYPE }, (_, i) => `svc-${i}`),
  [TypeUrl.RouteConfiguration]: Array.from({ length: PER_TYPE }, (_, i) => `route-${i}`),
  [TypeUrl.ExtensionConfig]: Array.from({ length: PER_TYPE }, (_, i) => `rbac-${i}`),
};
