import type * as grpc from '@grpc/grpc-js';

/** Identities a peer certificate asserts: every DNS and URI subjectAltName, and the CN. */
export function certificateIdentities(call: Pick<grpc.ServerDuplexStream<Buffer, Buffer>, 'getAuthContext'>): string[] {
  const cert = call.getAuthContext().sslPeerCertificate;
  if (!cert) return [];
  const ids: string[] = [];
  for (const entry of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*(DNS|URI):(.+)$/.exec(entry);
    if (m) ids.push(m[2].trim());
  }
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') ids.push(cn);
  return ids;
}
