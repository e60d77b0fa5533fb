import { describe, expect, it } from "vitest";
import { isGatewayError } from "../../core/errors.js";
import { isProtectedSetting } from "../../policy/sql-settings.js";
import { checkClientEncoding, parseOptions, readStartupSettings, splitOptions } from "./startup.js";

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isGatewayError(e) ? e.code : "not a GatewayError";
  }
  return undefined;
}

describe("options (libpq/server syntax)", () => {
  it("splits on whitespace, with backslash escapes as the server does", () => {
    expect(splitOptions("  -c a=1   --b=2 ")).toEqual(["-c", "a=1", "--b=2"]);
    expect(splitOptions("-c search_path=my\\ schema,public")).toEqual(["-c", "search_path=my schema,public"]);
    expect(splitOptions("--x=a\\\\b")).toEqual(["--x=a\\b"]);
    expect(splitOptions("")).toEqual([]);
  });

  it("reads -c name=value (separate or attached), --name=value, dashes as underscores", () => {
    expect(parseOptions("-c statement_timeout=1234 -cwork_mem=64kB --search-path=app,public --DateStyle=ISO")).toEqual([
      ["statement_timeout", "1234"],
      ["work_mem", "64kB"],
      ["search_path", "app,public"],
      ["datestyle", "ISO"],
    ]);
  });

  it("refuses a setting without a value, a dangling -c and other server switches", () => {
    expect(codeOf(() => parseOptions("-c statement_timeout"))).toBe("GW_PROTOCOL");
    expect(codeOf(() => parseOptions("-c"))).toBe("GW_PROTOCOL");
    expect(codeOf(() => parseOptions("--=1"))).toBe("GW_PROTOCOL");
    expect(codeOf(() => parseOptions("-e"))).toBe("GW_UNSUPPORTED");
    expect(codeOf(() => parseOptions("-B 100"))).toBe("GW_UNSUPPORTED");
    expect(codeOf(() => parseOptions(Array.from({ length: 65 }, (_, i) => `--a${i}=1`).join(" ")))).toBe("GW_LIMIT");
  });
});

describe("readStartupSettings", () => {
  it("forwards settings from parameters and options (a parameter wins), consumes airlock.approval", () => {
    const r = readStartupSettings(
      new Map([
        ["user", "agent"],
        ["database", "shop"],
        ["options", "-c statement_timeout=1234 --search_path=app --airlock.approval=async"],
        ["idle_in_transaction_session_timeout", "5000"],
        ["Application_Name", "psql"],
        ["_pq_.something", "x"],
        ["search_path", "other"],
      ]),
    );
    expect([...r.settings]).toEqual([
      ["statement_timeout", "1234"],
      ["search_path", "other"],
      ["idle_in_transaction_session_timeout", "5000"],
      ["application_name", "psql"],
    ]);
    expect(r.approval).toBe("async");
  });

  it("refuses unknown airlock settings, bad approval modes, owned settings and odd names, naming them", () => {
    expect(codeOf(() => readStartupSettings(new Map([["airlock.approval", "yes"]])))).toBe("GW_UNSUPPORTED");
    expect(codeOf(() => readStartupSettings(new Map([["options", "-c airlock.bypass=on"]])))).toBe("GW_UNSUPPORTED");
    expect(codeOf(() => readStartupSettings(new Map([["options", "-c standard_conforming_strings=off"]])))).toBe("GW_POLICY_DENIED");
    expect(codeOf(() => readStartupSettings(new Map([["session_preload_libraries", "x"]])))).toBe("GW_POLICY_DENIED");
    expect(codeOf(() => readStartupSettings(new Map([["bad name", "x"]])))).toBe("GW_PROTOCOL");
    expect(readStartupSettings(new Map([["standard_conforming_strings", "on"]])).settings.size).toBe(0);
  });

  it("accepts UTF8 client encodings only, in any spelling the server accepts", () => {
    for (const ok of ["UTF8", "utf8", "UTF-8", "utf_8", "UNICODE", "unicode"]) expect(codeOf(() => checkClientEncoding(ok))).toBeUndefined();
    for (const bad of ["LATIN1", "SQL_ASCII", "SJIS", "WIN1252", "auto"]) expect(codeOf(() => checkClientEncoding(bad))).toBe("GW_UNSUPPORTED");
    expect(codeOf(() => readStartupSettings(new Map([["options", "-c client_encoding=LATIN1"]])))).toBe("GW_UNSUPPORTED");
    expect(readStartupSettings(new Map([["client_encoding", "UTF8"]])).settings.has("client_encoding")).toBe(false);
  });
});

describe("isProtectedSetting (policy/sql-settings.ts)", () => {
  it("protects the session's identity always and the injected limits when injected", () => {
    expect(isProtectedSetting("role", {})).toBe(true);
    expect(isProtectedSetting("Session_Authorization", {})).toBe(true);
    expect(isProtectedSetting("statement_timeout", {})).toBe(false);
    // The gateway times a policy's statementTimeout itself: the session's own setting is free.
    expect(isProtectedSetting("statement_timeout", { statement_timeout: "5000" })).toBe(false);
    expect(isProtectedSetting("transaction_read_only", { default_transaction_read_only: "on" })).toBe(true);
    expect(isProtectedSetting("default_transaction_read_only", { default_transaction_read_only: "on" })).toBe(true);
    expect(isProtectedSetting("default_transaction_read_only", { statement_timeout: "5000" })).toBe(false);
    expect(isProtectedSetting("work_mem", { statement_timeout: "5000", default_transaction_read_only: "on" })).toBe(false);
  });
});
