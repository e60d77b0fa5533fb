/**
 * A module resolve hook (node:module register()) that lets plain Node load dt-sql-parser's ESM
 * build, which imports directories and extension-less paths (it is built for bundlers). It only
 * retries specifiers that failed to resolve from inside dt-sql-parser; everything else is left
 * to Node's own resolution.
 */
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    const fromDt = typeof context.parentURL === "string" && context.parentURL.includes("/dt-sql-parser/");
    const code = typeof e === "object" && e !== null ? e.code : undefined;
    if (fromDt && code === "ERR_UNSUPPORTED_DIR_IMPORT") return next(specifier.replace(/\/?$/, "/index.js"), context);
    if (fromDt && code === "ERR_MODULE_NOT_FOUND" && specifier.startsWith(".") && !specifier.endsWith(".js")) return next(`${specifier}.js`, context);
    throw e;
  }
}
