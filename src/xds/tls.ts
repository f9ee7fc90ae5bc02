import * as grpc from '@grpc/grpc-js';
import * as fs from 'fs';
import type { NodeInfo } from './cache';
import type { NodeAuthorizer } from './stream-session';
import { certificateIdentities } from './peer-certificate';

export { certificateIdentities } from './peer-certificate';

export interface TlsFiles {
  /** PEM certificate chain of the server. */
  certFile: string;
  keyFile: string;
  /** CA bundle that client certificates must chain to; setting it turns on mTLS. */
  clientCaFile?: string;
}

export function serverCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const read = (file: string, what: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  const ca = tls.clientCaFile ? read(tls.clientCaFile, 'client CA') : null;
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: read(tls.certFile, 'certificate'), private_key: read(tls.keyFile, 'key') }], Boolean(ca));
}

/**
 * With mTLS, a node gets configuration only if its certificate names it: by default its node
 * id must equal one of the certificate's identities (`nodeIdOf` maps a certificate identity to
 * a node id for other conventions, e.g. SPIFFE IDs to Istio's sidecar~ ids).
 */
export function certificateIdentityAuthorizer(nodeIdMatches: (node: NodeInfo, identity: string) => boolean = (node, id) => node.id === id): NodeAuthorizer {
  return (node, call) => {
    const identities = certificateIdentities(call);
    if (identities.length === 0) return `node "${node.id}" presented no client certificate`;
    if (identities.some((id) => nodeIdMatches(node, id))) return undefined;
    return `node id "${node.id}" does not match the client certificate identities (${identities.join(', ')})`;
  };
}
