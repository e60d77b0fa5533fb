import { describe, expect, it } from "vitest";
import { compareNumber, describePreview, previewDrift, previewTolerance, type StatementPreview } from "./preview.js";

function previewed(tables: [string, number, number, number][]): Extract<StatementPreview, { status: "previewed" }> {
  const t = tables.map(([relation, inserted, updated, deleted]) => ({ relation, inserted, updated, deleted }));
  return { status: "previewed", affectedRows: t.reduce((n, x) => n + x.inserted + x.updated + x.deleted, 0), tables: t, plan: [] };
}

describe("previewDrift", () => {
  const none = previewTolerance(undefined);
  it("the same counts are no drift", () => {
    expect(previewDrift(previewed([["public.t", 0, 0, 3]]), previewed([["public.t", 0, 0, 3]]), none)).toBeUndefined();
  });
  it("a count that moved beyond the tolerance is drift, named by table", () => {
    expect(previewDrift(previewed([["public.t", 0, 0, 3]]), previewed([["public.t", 0, 0, 4]]), none)).toBe(
      "public.t would now have 4 deleted (approved: 3 deleted) (no tolerance)",
    );
    expect(previewDrift(previewed([["public.t", 0, 0, 3]]), previewed([["public.t", 0, 0, 4]]), previewTolerance(1))).toBeUndefined();
    expect(previewDrift(previewed([["public.t", 0, 100, 0]]), previewed([["public.t", 0, 109, 0]]), previewTolerance("10%"))).toBeUndefined();
    expect(previewDrift(previewed([["public.t", 0, 100, 0]]), previewed([["public.t", 0, 111, 0]]), previewTolerance("10%"))).toContain("tolerance 10%");
  });
  it("another table changing, or one no longer changing, is drift whatever the tolerance", () => {
    const big = previewTolerance(1000);
    expect(previewDrift(previewed([["public.t", 0, 0, 3]]), previewed([["public.t", 0, 0, 3], ["public.u", 0, 0, 1]]), big)).toContain("public.u would now change too");
    expect(previewDrift(previewed([["public.t", 0, 0, 3]]), previewed([]), big)).toContain("public.t would no longer change");
  });
  it("a preview that cannot be repeated is drift; an approval made without one has nothing to compare", () => {
    expect(previewDrift(previewed([["public.t", 0, 0, 3]]), { status: "failed", reason: "x" }, none)).toBe("the preview could not be repeated (x)");
    expect(previewDrift({ status: "unpreviewable", reason: "ddl" }, previewed([]), none)).toBeUndefined();
  });
});

describe("describePreview and compareNumber", () => {
  it("lines for people", () => {
    expect(describePreview({ status: "unpreviewable", reason: "r" })).toEqual(["cannot preview: r"]);
    const p: StatementPreview = { ...previewed([["public.t", 1, 0, 2]]), sample: { image: "before", columns: ["id"], rows: [["1"], [null]], truncated: true }, plan: ["Delete on t"] };
    expect(describePreview(p)).toEqual(["would change 3 row(s)", "  public.t: 2 deleted, 1 inserted", "sample (before, first rows): id", "  1", "  NULL", "plan:", "  Delete on t"]);
  });
  it("gt and gte", () => {
    expect(compareNumber(10, { gt: 10 })).toBe(false);
    expect(compareNumber(10, { gte: 10 })).toBe(true);
    expect(compareNumber(11, { gt: 10, gte: 12 })).toBe(false);
  });
});
