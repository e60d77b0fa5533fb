/** The content detectors (one file per family under detectors/); kept as a path for importers. */
export * from "./detectors/index.js";
