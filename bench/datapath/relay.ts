/**
 * The sidecar stand-in for the mesh-shaped benchmark: accepts on LISTEN_PORT and pipes each
 * connection to 127.0.0.1:APP_PORT, so a request crosses loopback twice (client -> relay ->
 * app), like app -> sidecar -> app in a pod.
 *   node relay.js LISTEN_PORT APP_PORT
 */
import * as net from 'net';

const [listenPort, appPort] = process.argv.slice(2).map(Number);
const srv = net.createServer({ noDelay: true }, (down) => {
  const up = net.connect({ host: '127.0.0.1', port: appPort, noDelay: true });
  down.pipe(up);
  up.pipe(down);
  const close = (): void => {
    down.destroy();
    up.destroy();
  };
  down.on('error', close);
  up.on('error', close);
  down.on('close', close);
  up.on('close', close);
});
srv.listen(listenPort, '127.0.0.1', () => console.log(`listening ${listenPort}`));
