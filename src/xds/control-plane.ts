import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../resource/type-urls';
import type { SnapshotSource } from './cache';
import { DeltaSession } from './delta-session';
import { NodeStatusRegistry, type NodeStatus } from './node-status';
import { decodeSotwRequest } from './requests';
import { serviceDefinition, XDS_SERVICES } from './services';
import { combineCallbacks, type XdsCallbacks } from './callbacks';
import { NodeClaims } from './flow';
import { checkLength, checkNames, DEFAULT_LIMITS, type StreamLimits } from './limits';
import {
  admitNode,
  failureStatus,
  nodeFingerprint,
  statusDetails,
  StreamError,
  type NodeAuthorizer,
  type SessionContext,
  type XdsCall,
} from './stream-session';
import { clientText, silentLogger, withLevels, type Logger } from '../log';
import { SotwSession } from './sotw-session';
import { Subscription } from './subscription';
import { controlPlaneField, withNonce } from './wire';

export interface XdsControlPlaneOptions {
  /** Where configuration comes from: a SnapshotCache, or your own implementation. */
  source: SnapshotSource;
  /** Type URLs served in addition to Envoy's standard ones (LDS, RDS, CDS, EDS, ECDS, SDS, ...). */
  extraTypeUrls?: readonly string[];
  /** Per-node admission, e.g. `certificateIdentityAuthorizer()` for mTLS. */
  authorize?: NodeAuthorizer;
  limits?: Partial<StreamLimits>;
  /** Sent as control_plane.identifier in every response. */
  controlPlaneId?: string;
  /** Register only ADS, not the per-type services. */
  adsOnly?: boolean;
  log?: Logger;
  /**
   * Observers of every stream (go-control-plane's Callbacks): metrics, audit, tracing. Called
   * after `status`, which is itself one of them, in the order given.
   */
  callbacks?: XdsCallbacks | readonly XdsCallbacks[];
}

/**
 * The xDS services (ADS plus the per-type services, SotW and Delta) over a SnapshotSource.
 * Embed it in an existing grpc.Server with `addTo(server)`; `status` tells what each node has
 * been sent, has ACKed and has NACKed. A node id is bound to the cluster and metadata of its
 * first open stream: another stream claiming it with different ones is refused
 * (FAILED_PRECONDITION) until every stream of the first has closed.
 */
export class XdsControlPlane {
  readonly status = new NodeStatusRegistry();
  private readonly ctx: SessionContext;
  private streamIds = 0;

  constructor(private readonly options: XdsControlPlaneOptions) {
    const knownTypes = new Set<string>([...Object.values(TypeUrl), ...(options.extraTypeUrls ?? [])]);
    const id = options.controlPlaneId;
    const log = withLevels(options.log ?? silentLogger);
    const extra = options.callbacks === undefined ? [] : Array.isArray(options.callbacks) ? options.callbacks : [options.callbacks as XdsCallbacks];
    this.ctx = {
      source: options.source,
      callbacks: combineCallbacks([this.status, ...extra], log),
      claims: new NodeClaims(),
      knownTypes,
      authorize: options.authorize,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      controlPlane: id ? { sotw: controlPlaneField(id, 6), delta: controlPlaneField(id, 7) } : undefined,
      log,
      nextStreamId: () => ++this.streamIds,
    };
  }

  /** Adds the xDS services to `server` (before or after it is bound; before start). */
  addTo(server: grpc.Server): this {
    const specs = this.options.adsOnly ? XDS_SERVICES.slice(0, 1) : XDS_SERVICES;
    for (const spec of specs) {
      const impl: grpc.UntypedServiceImplementation = {
        [spec.sotw]: (call: XdsCall) => new SotwSession(call, this.ctx, spec.typeUrl),
        [spec.delta]: (call: XdsCall) => new DeltaSession(call, this.ctx, spec.typeUrl),
      };
      const typeUrl = spec.typeUrl;
      if (spec.fetch && typeUrl) {
        impl[spec.fetch] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => this.fetch(typeUrl, call, callback);
      }
      server.addService(serviceDefinition(spec), impl);
    }
    return this;
  }

  nodes(): NodeStatus[] {
    return this.status.list();
  }

  /** REST-style one-shot fetch (FetchListeners etc.): the current selection, no stream state. */
  private fetch(typeUrl: string, call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
    try {
      const req = decodeSotwRequest(call.request);
      checkLength('type_url', req.typeUrl, this.ctx.limits.maxTypeUrlLength);
      if (req.typeUrl && req.typeUrl !== typeUrl)
        throw new StreamError(grpc.status.INVALID_ARGUMENT, `type_url ${clientText(req.typeUrl)} sent to the ${typeUrl} fetch`);
      checkNames('resource_names', req.resourceNames, req.resourceNames.length, this.ctx.limits);
      const node = admitNode(this.ctx, req.node, call as unknown as XdsCall, 'fetch request');
      // A fetch may not rebind a connected node either (asking for its key may rebuild it).
      if (this.ctx.claims.conflict(node.id, nodeFingerprint(node))) {
        throw new StreamError(grpc.status.FAILED_PRECONDITION, `node "${clientText(node.id)}" is connected on a stream with a different cluster or metadata`);
      }
      const snapshot = this.ctx.source.getSnapshot(this.ctx.source.nodeKey(node));
      if (!snapshot) throw new StreamError(grpc.status.UNAVAILABLE, `no configuration for node ${clientText(node.id)} yet`);
      const sub = new Subscription(typeUrl);
      sub.replace(req.resourceNames, true);
      const response = snapshot.sotwResponse(typeUrl, sub.digest(), () => sub.select(snapshot));
      callback(null, withNonce(response.body, '', this.ctx.controlPlane?.sotw));
    } catch (err) {
      const status = failureStatus(err, this.ctx.log, `xds fetch ${typeUrl}`);
      callback({ ...status, details: statusDetails(status.details) } as grpc.ServiceError, null);
    }
  }
}

/** Adds the xDS services to an existing server; the embedding entry point. */
export function addXdsServices(server: grpc.Server, options: XdsControlPlaneOptions): XdsControlPlane {
  return new XdsControlPlane(options).addTo(server);
}
