/**
 * The runtime builds one masker per mask rule with the masking library (src/masking/rules.ts);
 * this path stays for the gateway and the benchmarks that import it from here.
 */
export { createMaskerFactory, detectorNames } from "../masking/rules.js";
