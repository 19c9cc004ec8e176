import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

// The dashboard is served by the module under any `ui.path` (and any global prefix), so every
// asset URL is relative. Output goes to client/dist, which the package ships.
export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: {
    // `vite --config client/vite.config.ts` against a demo on :3000 (`npm start`).
    proxy: { '/balancer': 'http://127.0.0.1:3000' },
  },
});
