/**
 * The gateway's own caching_sha2_password login to a target (issue 14).
 *
 * Debian's MariaDB 10.11 cannot serve caching_sha2_password: its plugin directory has no
 * caching_sha2 / auth_sha2 module (MariaDB's server-side plugin for it came with 11.x/12.x, and
 * MySQL 8 is not packaged). The target here is therefore a second Airlock gateway, whose MySQL
 * front door offers caching_sha2_password and always asks for full authentication (it needs
 * the token in the clear): this proves the full-authentication paths of the target login —
 * the RSA public key asked of the target on plain TCP, and the password over TLS — end to end
 * with a real MariaDB behind. The fast path (0x03: the server's cached scramble) needs a real
 * MySQL 8 and is covered by the scramble unit tests only (src/protocols/mysql/auth.test.ts).
 */
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startMariaDb, type MariaDbServer } from "./harness/mariadb.js";

let db: MariaDbServer;
let inner: TestGateway;
let outer: TestGateway;

beforeAll(async () => {
  db = await startMariaDb();
  inner = await startTestGateway({
    listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [{ name: "relay", groups: ["relays"] }],
    connections: [{ name: "shop", type: "mysql", host: "127.0.0.1", port: db.port, database: "shop", user: "airlock_native", password: db.password, groups: ["relays"], sslmode: "disable" }],
    policies: [{ name: "cards", action: "mask", columns: ["customers.card_number"], strategy: "redact" }],
  });
  const innerPort = inner.gw.addresses.mysql?.port ?? 0;
  const innerToken = await inner.mint("relay", "1h");
  const viaInner = { type: "mysql" as const, host: "127.0.0.1", port: innerPort, database: "shop", user: "relay", password: innerToken, groups: ["agents"] };
  outer = await startTestGateway({
    listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      // Plain TCP: full authentication with the RSA key the target sends when asked.
      { name: "rsa", ...viaInner, sslmode: "disable" as const },
      // TLS: full authentication with the password inside the TLS session.
      { name: "tls", ...viaInner, sslmode: "require" as const },
    ],
  });
}, 180_000);

afterAll(async () => {
  await outer.stop();
  await inner.stop();
  await db.stop();
});

describe("target login with caching_sha2_password (full authentication)", () => {
  for (const database of ["rsa", "tls"]) {
    it(`logs in over ${database === "rsa" ? "plain TCP with the target's RSA key" : "TLS"} and serves queries`, async () => {
      const token = await outer.mint("agent", "1h");
      const c = await mysql.createConnection({ host: "127.0.0.1", port: outer.gw.addresses.mysql?.port ?? 0, user: "agent", password: token, database, allowPublicKeyRetrieval: true, connectTimeout: 60_000 });
      try {
        const [rows] = await c.query("SELECT id, name, card_number FROM customers WHERE id = 1");
        expect(rows).toMatchObject([{ id: 1, name: "Ada" }]);
        // The inner gateway's mask rule applied: the login really went through it.
        expect(JSON.stringify(rows)).not.toContain("4111 1111 1111 1111");
      } finally {
        await c.end();
      }
    });
  }
});
