/**
 * A SAML 2.0 identity provider fixture: builds Responses with an Assertion signed (enveloped
 * XML-DSig, RSA-SHA256, exclusive c14n) by a test key with xml-crypto, the way a real IdP
 * does. Options let tests produce every kind of bad response (unsigned, tampered, other key,
 * wrong audience/issuer, expired, no InResponseTo, a signed Response around an unsigned Assertion).
 */
import { randomUUID } from "node:crypto";
import { inflateRawSync } from "node:zlib";
import { generate } from "selfsigned";
import { SignedXml } from "xml-crypto";

export interface SamlIdpKeys {
  readonly cert: string;
  readonly key: string;
}

export async function samlIdpKeys(): Promise<SamlIdpKeys> {
  const pems = await generate([{ name: "commonName", value: "test-idp" }], { keySize: 2048, algorithm: "sha256" });
  return { cert: pems.cert, key: pems.private };
}

/** The AuthnRequest ID inside an HTTP-Redirect login URL (SAMLRequest = base64(deflate(xml))). */
export function authnRequestId(loginUrl: string): string {
  const req = new URL(loginUrl).searchParams.get("SAMLRequest") ?? "";
  const xml = inflateRawSync(Buffer.from(req, "base64")).toString("utf8");
  const m = /\bID="([^"]+)"/.exec(xml);
  if (m?.[1] === undefined) throw new Error("no ID in the AuthnRequest");
  return m[1];
}

export interface ResponseOptions {
  readonly keys: SamlIdpKeys;
  readonly idpIssuer: string;
  readonly audience: string;
  readonly acsUrl: string;
  readonly inResponseTo?: string;
  readonly nameId: string;
  readonly attributes?: Readonly<Record<string, readonly string[]>>;
  readonly sign?: boolean;
  /** Also sign the whole Response (enveloped signature after its Issuer), as some IdPs do. */
  readonly signResponse?: boolean;
  readonly notOnOrAfterMs?: number;
  /** Change the signed XML afterwards (tamper tests). */
  readonly mutate?: (signedXml: string) => string;
  /** Change the assertion XML before it is signed (what a careless or hostile IdP would sign). */
  readonly mutateAssertion?: (assertionXml: string) => string;
  readonly assertionId?: string;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A base64 SAMLResponse as the browser would POST it to the ACS. */
export function samlResponse(o: ResponseOptions): string {
  const now = new Date();
  const issueInstant = now.toISOString();
  const notBefore = new Date(now.getTime() - 60_000).toISOString();
  const notOnOrAfter = new Date(now.getTime() + (o.notOnOrAfterMs ?? 5 * 60_000)).toISOString();
  const assertionId = o.assertionId ?? `_a${randomUUID().replace(/-/g, "")}`;
  const irt = o.inResponseTo === undefined ? "" : ` InResponseTo="${esc(o.inResponseTo)}"`;
  const attrs = Object.entries(o.attributes ?? {})
    .map(([name, values]) => `<saml:Attribute Name="${esc(name)}">${values.map((v) => `<saml:AttributeValue>${esc(v)}</saml:AttributeValue>`).join("")}</saml:Attribute>`)
    .join("");
  const assertion =
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${assertionId}" Version="2.0" IssueInstant="${issueInstant}">` +
    `<saml:Issuer>${esc(o.idpIssuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${esc(o.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter}" Recipient="${esc(o.acsUrl)}"${irt}/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${esc(o.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${issueInstant}" SessionIndex="${assertionId}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` +
    `</saml:Assertion>`;
  const toSign = o.mutateAssertion === undefined ? assertion : o.mutateAssertion(assertion);
  let signedAssertion = toSign;
  if (o.sign !== false) {
    const sig = new SignedXml({ privateKey: o.keys.key, publicCert: o.keys.cert, signatureAlgorithm: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", canonicalizationAlgorithm: "http://www.w3.org/2001/10/xml-exc-c14n#" });
    sig.addReference({
      xpath: "//*[local-name(.)='Assertion']",
      transforms: ["http://www.w3.org/2000/09/xmldsig#enveloped-signature", "http://www.w3.org/2001/10/xml-exc-c14n#"],
      digestAlgorithm: "http://www.w3.org/2001/04/xmlenc#sha256",
    });
    sig.computeSignature(toSign, { location: { reference: "//*[local-name(.)='Issuer']", action: "after" } });
    signedAssertion = sig.getSignedXml();
  }
  let xml =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${randomUUID().replace(/-/g, "")}" Version="2.0" IssueInstant="${issueInstant}" Destination="${esc(o.acsUrl)}"${irt}>` +
    `<saml:Issuer>${esc(o.idpIssuer)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    signedAssertion +
    `</samlp:Response>`;
  if (o.signResponse === true) {
    const sig = new SignedXml({ privateKey: o.keys.key, publicCert: o.keys.cert, signatureAlgorithm: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", canonicalizationAlgorithm: "http://www.w3.org/2001/10/xml-exc-c14n#" });
    sig.addReference({
      xpath: "/*[local-name(.)='Response']",
      transforms: ["http://www.w3.org/2000/09/xmldsig#enveloped-signature", "http://www.w3.org/2001/10/xml-exc-c14n#"],
      digestAlgorithm: "http://www.w3.org/2001/04/xmlenc#sha256",
    });
    sig.computeSignature(xml, { location: { reference: "/*/*[local-name(.)='Issuer']", action: "after" } });
    xml = sig.getSignedXml();
  }
    if (o.mutate !== undefined) xml = o.mutate(xml);
  return Buffer.from(xml).toString("base64");
}
