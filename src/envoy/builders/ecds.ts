import type { Json } from './rbac';
import { deepFreeze } from '../../json/object-id';

/**
 * ECDS plumbing: the RBAC config travels as its own TypedExtensionConfig resource and the
 * listener's HTTP filter only names it (`config_discovery`), so a policy change updates one
 * ECDS resource and never modifies (and so never drains) a listener.
 */

export type Direction = 'inbound' | 'outbound';

export function rbacEcdsName(direction: Direction, port: number): string {
  return `meshaccel.rbac.${direction}.${port}`;
}

export function withType(typeUrl: string, config: Json): Json {
  return { '@type': typeUrl, ...config };
}

/** envoy.config.core.v3.TypedExtensionConfig as Envoy JSON. */
export function typedExtensionConfig(name: string, typeUrl: string, config: Json): Json {
  return { name, typed_config: withType(typeUrl, config) };
}

export const ADS_CONFIG_SOURCE: Json = deepFreeze({ ads: {}, resource_api_version: 'V3' });

/**
 * An HTTP filter whose config comes from ECDS over ADS. The filter name is the ECDS resource
 * name. `defaultConfig` is what Envoy applies when the resource is missing or rejected; the
 * builders pass a deny-all RBAC so the failure mode is closed, not open.
 */
export function ecdsHttpFilter(name: string, typeUrl: string, defaultConfig: Json): Json {
  return {
    name,
    config_discovery: {
      config_source: ADS_CONFIG_SOURCE,
      default_config: withType(typeUrl, defaultConfig),
      apply_default_config_without_warming: false,
      type_urls: [typeUrl],
    },
  };
}
