import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// Element Plus's package entry (element-plus/es) drags the whole library into the bundle, so
// each component is imported from its own module instead: this maps every name the
// components' index.mjs files export to that file.
function elementPlusModules() {
  const dir = fileURLToPath(new URL('./node_modules/element-plus/es/components/', import.meta.url))
  const byName = {}
  if (!existsSync(dir)) return byName
  for (const comp of readdirSync(dir)) {
    const file = `${dir}${comp}/index.mjs`
    if (!existsSync(file)) continue
    const src = readFileSync(file, 'utf8')
    for (const m of src.matchAll(/export\s*{([^}]*)}/g)) {
      for (const part of m[1].split(',')) {
        const name = part.trim().split(/\s+as\s+/).pop()
        if (name && !(name in byName)) byName[name] = `element-plus/es/components/${comp}/index.mjs`
      }
    }
  }
  return byName
}

function elementPlusPerComponent() {
  const modules = elementPlusModules()
  return ElementPlusResolver({ importStyle: 'css', directives: true }).map((base) => ({
    type: base.type,
    resolve: async (name) => {
      const r = await base.resolve(name)
      if (r && typeof r === 'object' && r.from === 'element-plus/es' && modules[r.name]) {
        return { ...r, from: modules[r.name] }
      }
      return r
    },
  }))
}

// The API server `npm run dev` proxies to; `fabu up` listens on 127.0.0.1:8080 by default.
const apiTarget = process.env.FABU_API || 'http://127.0.0.1:8080'

export default defineConfig({
  base: '/',
  plugins: [
    vue(),
    // Element Plus components (and their CSS) are imported on demand as templates use them,
    // so the bundle embedded into the Go binary carries only what the app shows.
    Components({
      resolvers: elementPlusPerComponent(),
      dts: false,
    }),
  ],
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: {
      '/api': { target: apiTarget, changeOrigin: true, ws: true },
      '/healthz': { target: apiTarget },
    },
  },
  build: {
    outDir: 'dist',
    // Emptying dist/ removes dist/.keep; the build script writes it back (see package.json).
    emptyOutDir: true,
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      output: {
        manualChunks(id) {
          if (id.includes('node_modules/element-plus') || id.includes('node_modules/@element-plus')) return 'element-plus'
          if (id.includes('node_modules/')) return 'vendor'
        },
      },
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.js'],
  },
})
