// One GET answer kept fresh: fetched at once and every `ms`, with the last error (pages that
// show live counters: agents, budgets).
import { useEffect, useState } from "react";
import type { z } from "zod";
import { get } from "./api.js";

export function usePolled<T>(path: string, schema: z.ZodType<T>, ms: number): { data: T | undefined; error: string | undefined } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    const load = (): void => {
      get(path, schema).then(
        (d) => {
          if (!live) return;
          setData(d);
          setError(undefined);
        },
        (e: unknown) => {
          if (live) setError(e instanceof Error ? e.message : String(e));
        },
      );
    };
    load();
    const t = window.setInterval(load, ms);
    return () => {
      live = false;
      window.clearInterval(t);
    };
  }, [path, schema, ms]);
  return { data, error };
}
