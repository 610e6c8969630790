// Two pages (the trading page and the operations console), built to dist/ and served by the
// gateway (gateway/webui.py) under /web/. No inline scripts: the CSP forbids them, so the
// module preload polyfill (an inline script) is off.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  base: "/web/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, "index.html"),
        console: resolve(import.meta.dirname, "console.html"),
      },
      // Chunk names the gateway's asset route accepts (gateway/webui.py ASSET_NAME: no dots
      // inside the name, e.g. the charts library's "lightweight-charts.production").
      output: {
        chunkFileNames: (chunk) => `assets/${chunk.name.replace(/[^A-Za-z0-9_-]/g, "-")}-[hash].js`,
      },
    },
  },
});
