import { TypeUrl } from '../../src/resource/type-urls';
import { deltaStream, rawClient } from '../helpers/raw-xds-client';

/**
 * A stand-in for an Envoy holding one ADS stream, in a process of its own so a test can stop
 * it with SIGSTOP: its kernel still acknowledges TCP, but nothing answers HTTP/2 any more, as
 * with a proxy whose host froze or whose restart left the old connection half-open.
 * Usage: half-open-proxy PORT NODE_ID [NODE_NAME]; prints "served N" once Listeners arrive.
 */
const [port, nodeId, nodeName] = process.argv.slice(2);
const stream = deltaStream(rawClient(Number(port)));
const metadata = nodeName ? { fields: { NODE_NAME: { stringValue: nodeName } } } : { fields: {} };
stream.send({ node: { id: nodeId, metadata }, type_url: TypeUrl.Listener });
stream.next(10_000).then(
  (r) => {
    stream.send({ type_url: TypeUrl.Listener, response_nonce: r.nonce });
    process.stdout.write(`served ${r.resources.length}\n`);
  },
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
setInterval(() => undefined, 60_000);
