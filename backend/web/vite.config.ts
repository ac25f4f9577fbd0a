// Vite build of the Tuition web app: backend/web/src -> backend/web/dist, served by FastAPI
// (backend/web/router.py). Run from the repo root: `npm run build:web`.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root: here,
  base: "/",
  publicDir: "public",
  // Preact through the automatic JSX runtime; no framework plugin needed.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  resolve: {
    alias: {
      // WalletConnect's provider lazy-loads Reown AppKit only for its own QR modal
      // (showQrModal: true). We draw the QR code ourselves, so the modal is never used:
      // a stub keeps ~2 MB of AppKit out of the bundle.
      "@reown/appkit/core": `${here}src/vendor/appkit-stub.ts`,
    },
  },
  define: {
    // Some WalletConnect dependencies still read these Node globals.
    "process.env.NODE_ENV": JSON.stringify("production"),
    global: "globalThis",
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
    reportCompressedSize: false,
  },
  server: {
    // `vite --config backend/web/vite.config.ts` for front-end work against a running API.
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
});
