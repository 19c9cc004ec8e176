// Public names of the health feature, re-exported by src/index.ts.
export {};
