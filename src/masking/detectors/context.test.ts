/**
 * Detectors that find what they claim, and little else: national phone formats (regions from
 * libphonenumber metadata), and the context rules that keep section numbers, command-line
 * flags and tables of numbers from being masked (the prose regressions of bench/detectors.ts).
 */
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../core/errors.js";
import { ValueMasker } from "../masker.js";
import { DETECTORS, phoneDetectorFor, type DetectorKind } from "./index.js";

const found = (kind: DetectorKind, text: string): string[] => DETECTORS[kind].find(text).map((m) => text.slice(m.start, m.end));

describe("phone: national formats of the default regions", () => {
  it.each([
    ["es", "933 57 34 91"],
    ["es", "946-636-925"],
    ["es", "971.754.016"],
    ["fr", "01 44 63 41 29"],
    ["fr", "0786707330"],
    ["nl", "06 54692561"],
    ["nl", "0360 869 943"],
    ["de", "(05734) 7057919"],
    ["de", "09604 7518877"],
    ["de", "030/12345678"],
    ["ja", "062-308-8504"],
    ["ja", "06843-3-2411"],
    ["gb", "0191 941 4973"],
    ["it", "05 8035 8537"],
    ["it", "345 123 4567"],
    ["br", "(91) 99418-2214"],
    ["in", "084063 27606"],
    ["00-international", "0044 20 7946 0958"],
    ["00-international", "0033-1-44-63-41-29"],
  ])("%s: finds %j alone and in a sentence", (_, phone) => {
    expect(found("phone", phone)).toEqual([phone]);
    expect(found("phone", `Llámame al ${phone}, gracias.`)).toEqual([phone]);
  });

  it.each([
    "tps = 896.967014", // a decimal
    "15:12:02.020.001230", // a time
    "08002b:0102030405", // a MAC address
    "00 00 00 00 00 00", // zeros
    "0a 02 82 01 01 00 b6", // a hex dump
    "2000 3000 4000", // a row of numbers
    "12 34 56 78 90", // 2-digit numbers
    "00 44 20 79 46", // "00" not glued to a country code: a row of numbers
    "973614170", // unseparated and not 0-led: an id by default
    "2147483647",
  ])("does not match %j", (text) => {
    expect(found("phone", text)).toEqual([]);
  });

  it("finds unseparated numbers of countries written without a trunk prefix when the policy names them", () => {
    const es = phoneDetectorFor(["ES"]);
    expect(es.find("tel 973614170").map((m) => m.end - m.start)).toEqual([9]);
    expect(es.find("tel 123456789")).toEqual([]); // not a Spanish number
    const masker = new ValueMasker({ detectors: ["phone"], strategy: "redact", key: Buffer.alloc(32, 1), phoneRegions: ["ES"] });
    expect(masker.maskText("tel 973614170")?.value).toBe("tel [PHONE]");
    const byDefault = new ValueMasker({ detectors: ["phone"], strategy: "redact", key: Buffer.alloc(32, 1) });
    expect(byDefault.maskText("tel 973614170")).toBeUndefined();
  });

  it("refuses an unknown region as a configuration error", () => {
    expect(() => phoneDetectorFor(["XX"])).toThrow(GatewayError);
    expect(() => new ValueMasker({ detectors: ["phone"], strategy: "redact", key: Buffer.alloc(32, 1), phoneRegions: ["Spain"] })).toThrow(/phone region/);
  });
});

describe("ipv4: addresses, not section or version numbers", () => {
  it.each([
    "(See Section 55.2.2.1",
    "Section\u00a025.1.5.1).",
    "Sections 9.7.1.2 and 9.7.1.3",
    "§ 4.1.2.7",
    "version 1.2.3.4",
    "24.2.2.1. Standard Collations",
    "  26.3.6.3. archive_command Scripts",
    "010.1.1.1", // leading zeros: not how an address is printed
    "1.02.3.4",
  ])("does not match %j", (text) => {
    expect(found("ipv4", text)).toEqual([]);
  });

  it.each(["host 192.168.12.10/32 trust", "from 10.0.0.1. Then", "hostaddr=127.0.0.1 port=5432", "0.0.0.0/0"])("still finds the address in %j", (text) => {
    expect(found("ipv4", text)).toHaveLength(1);
  });
});

describe("credit_card: printed as cards are, not a row of numbers", () => {
  it.each([
    "1 4 8416 0 1499414498 76311 0",
    "73984 220121792172 1171 62083 3037380 9666800914 0 9998",
    "| 26 00 00 00 00 00 00 00 | f",
    "+4947374606620",
  ])("does not match %j", (text) => {
    expect(found("credit_card", text)).toEqual([]);
  });

  /** Luhn-complete `body`, then print it in groups of the given sizes joined by `sep`. */
  function card(body: string, groups: number[], sep: string): string {
    let sum = 0;
    for (let i = body.length - 1, dbl = true; i >= 0; i--, dbl = !dbl) {
      let d = body.charCodeAt(i) - 48;
      if (dbl) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    const digits = body + String((10 - (sum % 10)) % 10);
    const out: string[] = [];
    let at = 0;
    for (const g of groups) {
      out.push(digits.slice(at, at + g));
      at += g;
    }
    return out.join(sep);
  }

  it.each([
    card("411111111111111", [4, 4, 4, 4], " "),
    card("34070505392587", [4, 6, 5], "-"),
    card("3025512175833", [4, 6, 4], "-"),
    card("448724277637", [13], ""),
    card("633300000000000000", [4, 4, 4, 4, 3], " "),
  ])("finds %j", (c) => {
    expect(found("credit_card", `card ${c}.`)).toEqual([c]);
  });
});

describe("secret: key=value context that names a credential", () => {
  it.each([
    "--auth-host=authmethod",
    "-A authmethod--auth=authmethod",
    "auth_delay.milliseconds = '500'",
    "set password_encryption = 'scram-sha-256'",
    "password: faker.internet.password(),",
    "- 'passReqToCallback': if truthy",
    "<img src=\"https://img.shields.io/badge/license-Apache_2.0-green\">",
    "Francisco_PizarroLeal49@hotmail.com",
  ])("does not match %j", (text) => {
    expect(found("secret", text)).toEqual([]);
  });

  it.each([
    ["--password=hunter", "hunter"],
    ["--token=abc123", "abc123"],
    ["--auth-key=Zx9Kq2", "Zx9Kq2"],
    ["DB_PASSWORD=correcthorse", "correcthorse"],
    ["https://docs.example.com/d/1U1RGAehQwRypUTovF1KRlpiOFze0b-_2gc6fAH0KY0k/edit", "1U1RGAehQwRypUTovF1KRlpiOFze0b-_2gc6fAH0KY0k"],
  ])("still finds the secret in %j", (text, secret) => {
    expect(found("secret", text)).toEqual([secret]);
  });
});

describe("api_key: Basic credentials are base64", () => {
  it.each(["customized beyond the basic language+country", "Basic Statements43.5.1. Assignment"])("does not match %j", (text) => {
    expect(found("api_key", text)).toEqual([]);
  });

  it("still finds a Basic credential", () => {
    const cred = Buffer.from("admin:S3cret-passw0rd").toString("base64");
    expect(found("api_key", `Authorization: Basic ${cred}`)).toEqual([cred]);
  });
});

describe("phone prefilter", () => {
  it("passes separated numbers and 0-led compact ones, not plain ids or epoch times", () => {
    const could = (s: string): boolean => DETECTORS.phone.couldMatch(s);
    expect(could("0786707330")).toBe(true);
    expect(could("030/12345678")).toBe(true);
    expect(could("933 57 34 91")).toBe(true);
    expect(could("1700000000")).toBe(false);
    expect(could("123456789012")).toBe(false);
    expect(phoneDetectorFor(["ES"]).couldMatch("973614170")).toBe(true);
  });
});
