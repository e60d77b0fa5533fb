import { describe, expect, it } from "vitest";
import { signV4, signingKey } from "./aws-sigv4.js";

// AWS's published SigV4 test suite (aws-sig-v4-test-suite): these credentials, region, service
// and clock, and the signatures it lists for each request.
const CREDS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const NOW = new Date("2015-08-30T12:36:00Z");
const sign = (method: string, url: string, body = ""): ReturnType<typeof signV4> =>
  signV4({ method, url: new URL(url), headers: { host: "example.amazonaws.com" }, body, region: "us-east-1", service: "service", now: NOW }, CREDS);

describe("aws: SigV4 signer against AWS's published test suite", () => {
  it("get-vanilla", () => {
    const r = sign("GET", "https://example.amazonaws.com/");
    expect(r.canonicalRequest).toBe("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(r.headers["authorization"]).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
  });

  it("get-vanilla-query-order-key-case (query sorted)", () => {
    expect(sign("GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1").signature).toBe("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
  });

  it("get-utf8 (path segments percent-encoded once)", () => {
    expect(sign("GET", "https://example.amazonaws.com/ሴ").signature).toBe("8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
  });

  it("post-vanilla", () => {
    expect(sign("POST", "https://example.amazonaws.com/").signature).toBe("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
  });

  it("derives the published signing key", () => {
    expect(signingKey(CREDS.secretAccessKey, "20150830", "us-east-1", "service").toString("hex")).toBe("938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
    // The IAM user guide's example (20120215, us-east-1, iam).
    expect(signingKey(CREDS.secretAccessKey, "20120215", "us-east-1", "iam").toString("hex")).toBe("f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
  });

  it("signs a session token as x-amz-security-token", () => {
    const r = signV4({ method: "POST", url: new URL("https://example.amazonaws.com/"), headers: {}, body: "{}", region: "us-east-1", service: "service", now: NOW }, { ...CREDS, sessionToken: "tok" });
    expect(r.headers["x-amz-security-token"]).toBe("tok");
    expect(r.headers["authorization"]).toContain("SignedHeaders=host;x-amz-date;x-amz-security-token,");
  });
});
