/**
 * A self-signed certificate for a test server on loopback: valid for `localhost` and
 * 127.0.0.1, its own CA (clients verify against the certificate itself).
 */
import { generate } from "selfsigned";

export async function localhostCertificate(): Promise<{ readonly cert: string; readonly key: string }> {
  const pems = await generate([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    curve: "P-256",
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
