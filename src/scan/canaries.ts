/**
 * Canary values: planted in rows no legitimate task reads. A result value containing one means
 * someone (or an agent steered by injected text) read where it should not. Pure: finds which
 * canary a value contains, never returns the value.
 */

export interface CanaryMatcher {
  /** The name of the first canary `value` contains, if any. */
  find(value: string): string | undefined;
}

/** Builds a matcher over `canaries` (name → values). Values are compared exactly, case-sensitively. */
export function canaryMatcher(canaries: readonly { readonly name: string; readonly values: readonly string[] }[]): CanaryMatcher {
  const entries = canaries.flatMap((c) => c.values.map((v) => ({ name: c.name, value: v })));
  // The shortest canary bounds where a match can start: values shorter than it are skipped.
  const shortest = entries.reduce((n, e) => Math.min(n, e.value.length), Number.POSITIVE_INFINITY);
  return {
    find(value: string): string | undefined {
      if (value.length < shortest) return undefined;
      for (const e of entries) if (value.includes(e.value)) return e.name;
      return undefined;
    },
  };
}
