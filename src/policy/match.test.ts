import { describe, expect, it } from "vitest";
import { inferMatchKind, typedMatch, typesNamed } from "./match.js";

const PG = new Set(["postgres"] as const);
const SSH = new Set(["ssh"] as const);
const BOTH = new Set(["postgres", "ssh"] as const);

describe("policy match kinds", () => {
  it("infers the kind from the keys", () => {
    expect(inferMatchKind({ operations: ["drop"], noWhere: true }, BOTH)).toEqual({ kind: "sql" });
    expect(inferMatchKind({ forwardTo: ["*:5432"] }, BOTH)).toEqual({ kind: "shell" });
  });

  it("settles keys shared between kinds by the policy's connections, or by an explicit kind", () => {
    // commands: shell or redis; only shell targets exist here.
    expect(inferMatchKind({ commands: ["rm"] }, SSH)).toEqual({ kind: "shell" });
    expect(inferMatchKind({ kind: "shell", commands: ["rm"] }, SSH)).toEqual({ kind: "shell" });
  });

  it("names the key that fits none of the policy's connections", () => {
    expect(inferMatchKind({ commands: ["rm"] }, PG)).toEqual({ problem: "match.commands is a shell or redis key, but the policy applies to only postgres connections" });
    expect(inferMatchKind({ operations: ["drop"] }, SSH)).toEqual({ problem: "match.operations is a sql key, but the policy applies to only ssh connections" });
    expect(inferMatchKind({ verbs: ["delete"] }, BOTH)).toMatchObject({ problem: expect.stringMatching(/^match\.verbs is a kubernetes key/) as unknown });
  });

  it("refuses keys of different kinds together, and keys foreign to an explicit kind", () => {
    expect(inferMatchKind({ operations: ["drop"], commands: ["rm"] }, BOTH)).toEqual({ problem: "match.commands cannot be combined with match.operations: they belong to different kinds of target" });
    expect(inferMatchKind({ kind: "sql", commands: ["rm"] }, BOTH)).toEqual({ problem: "match.commands is not a key of a sql match (its keys: operations, relations, columns, functions, noWhere, statementRegex, cost, estimatedRows)" });
    expect(inferMatchKind({}, BOTH)).toMatchObject({ problem: expect.stringMatching(/at least one key/) as unknown });
  });

  it("takes the keys alone when the policy names no configured connection", () => {
    expect(inferMatchKind({ commands: ["rm"] }, new Set())).toEqual({ kind: "shell" });
  });

  it("builds the typed match with its kind's keys only", () => {
    expect(typedMatch({ commands: ["rm"], kind: undefined }, "shell")).toEqual({ kind: "shell", commands: ["rm"] });
  });

  it("finds the connection types a policy's globs name", () => {
    const connections = [
      { name: "orders", type: "postgres" as const },
      { name: "web1", type: "ssh" as const },
    ];
    expect([...typesNamed(["*"], connections)].sort()).toEqual(["postgres", "ssh"]);
    expect([...typesNamed(["web*"], connections)]).toEqual(["ssh"]);
    expect([...typesNamed(["nope"], connections)]).toEqual([]);
  });
});
