// Public names of the dashboard feature, re-exported by src/index.ts.
export {};
