import { createServer } from "node:net";

/** A free TCP port on `host` (taken by binding port 0, then released). */
export function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = addr !== null && typeof addr === "object" ? addr.port : 0;
      srv.close(() => (port === 0 ? reject(new Error("no free port")) : resolve(port)));
    });
  });
}
