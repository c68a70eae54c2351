// The app (index.html) and the node's GraphiQL (graphiql.html), built into dist/ with no external URL: the node
// embeds dist/ and serves it on the API's address, so both work in a browser with no internet access.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  // One copy of each library the SDK (clients/ts, linked by file:) shares with the app: the app's.
  resolve: { dedupe: ['viem', 'graphql', 'graphql-ws'] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Stable names without a content hash would let a stale cache serve old code; hashed assets are cached forever
    // by the node and the two HTML pages are not.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      // React libraries mark their modules "use client" for server components; a client bundle has nothing to do.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
      input: {
        app: resolve(__dirname, 'index.html'),
        graphiql: resolve(__dirname, 'graphiql.html'),
      },
    },
  },
  server: {
    // `npm run dev` against a running `beatstream dev`: the API, the studio, the audio and the dev routes on :8080.
    proxy: {
      '/graphql': { target: 'http://127.0.0.1:8080', ws: true },
      '/studio': 'http://127.0.0.1:8080',
      '/audio': 'http://127.0.0.1:8080',
      '/app': 'http://127.0.0.1:8080',
      '/dev': 'http://127.0.0.1:8080',
    },
  },
});
