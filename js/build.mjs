// Bundle the widget ES modules into src/motif_widgets/static/ (esbuild, ESM, minified).
//
//   node build.mjs                 build into ../src/motif_widgets/static
//   node build.mjs --outdir DIR    build into DIR (the bundle check compares DIR with static/)
//   node build.mjs --watch         rebuild on every change (development; add --dev for readable output)
//   node build.mjs --dev           unminified, with inline source maps (debugging; never commit it)
//
// Every view is its own self-contained bundle (anywidget loads one ES module per widget and
// each widget instance carries it, so no code splitting): grid.js, cloud.js, similar.js,
// explorer.js (all three views + head card), and standalone.js, the small loader the offline
// HTML export inlines. The output is deterministic for a given esbuild version (pinned in
// package-lock.json), so CI can rebuild and compare byte for byte.
import * as esbuild from "esbuild";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf("--outdir");
const outdir = outIndex >= 0 ? resolve(args[outIndex + 1]) : resolve(here, "../src/motif_widgets/static");
const watch = args.includes("--watch");
const dev = args.includes("--dev");

export const ENTRIES = ["grid", "cloud", "similar", "explorer", "standalone"];

// CSS is imported as text (injected by js/src/dom.js) and minified like the code.
const minifiedCss = {
  name: "minified-css-text",
  setup(build) {
    build.onLoad({ filter: /\.css$/ }, async (args) => {
      const source = readFileSync(args.path, "utf8");
      const { code } = await esbuild.transform(source, { loader: "css", minify: !dev });
      return { contents: code.trim(), loader: "text" };
    });
  },
};

const options = {
  entryPoints: Object.fromEntries(ENTRIES.map((name) => [name, join(here, "src", "entries", `${name}.js`)])),
  outdir,
  bundle: true,
  format: "esm",
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  plugins: [minifiedCss],
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log(`watching js/src, writing ${outdir}`);
} else {
  await esbuild.build(options);
  for (const name of readdirSync(outdir).filter((f) => f.endsWith(".js")).sort()) {
    console.log(`${name.padEnd(16)} ${(statSync(join(outdir, name)).size / 1024).toFixed(1).padStart(6)} KiB`);
  }
}
