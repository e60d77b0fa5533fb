/**
 * A bare TCP relay in Node.js — no parsing, no policy, no audit: `socket.pipe` both ways. Not
 * part of Airlock: `npm run bench` runs it as the "Node pipe" path to show the ceiling any proxy
 * written on Node's socket layer has on this machine, next to PgBouncer (C, libevent) and Airlock.
 *
 *   node dist/bench/node-pipe.js LISTEN_PORT TARGET_HOST TARGET_PORT
 *
 * Prints "listening" once the port is open. Nagle is off on both legs, as in the gateway.
 */
import { connect, createServer } from "node:net";

const [listenPort, targetHost, targetPort] = process.argv.slice(2);
if (listenPort === undefined || targetHost === undefined || targetPort === undefined) {
  console.error("usage: node-pipe LISTEN_PORT TARGET_HOST TARGET_PORT");
  process.exit(2);
}

const server = createServer((client) => {
  client.setNoDelay(true);
  const upstream = connect({ host: targetHost, port: Number(targetPort), noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", close).on("close", close);
  upstream.on("error", close).on("close", close);
});
server.listen(Number(listenPort), "127.0.0.1", () => console.log("listening"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
