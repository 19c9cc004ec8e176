// Public names of the probe feature, re-exported by src/index.ts.
export {};
