/**
 * A transparent TCP relay that keeps every byte sent to the client, so a test can prove what
 * a client could ever have seen (e.g. that a canary secret never crossed the wire).
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface Tap {
  readonly port: number;
  /** Everything the upstream side sent towards clients, across all connections. */
  toClient(): Buffer;
  close(): Promise<void>;
}

export async function startTap(target: { host: string; port: number }): Promise<Tap> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    client.on("data", (d: Buffer) => upstream.write(d));
    upstream.on("data", (d: Buffer) => {
      chunks.push(Buffer.from(d));
      client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = addr !== null && typeof addr === "object" ? addr.port : 0;
  return {
    port,
    toClient: () => Buffer.concat(chunks),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
