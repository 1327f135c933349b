// Bundles each app's entry point with its workspace libraries inlined; npm dependencies stay external
// so the built output runs with production dependencies only.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const apps = [
  { project: 'apps/cli', entry: 'src/main.ts', outfile: 'dist/main.js' },
  { project: 'apps/control-plane', entry: 'src/main.ts', outfile: 'dist/main.js', decorators: true },
  { project: 'apps/agent', entry: 'src/main.ts', outfile: 'dist/main.js' },
];

/**
 * esbuild does not emit decorator metadata, which Nest's dependency injection reads; files that
 * use decorators go through TypeScript's own transpiler first (types are checked by `tsc` anyway).
 */
const decoratorMetadata = {
  name: 'decorator-metadata',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!/^\s*@[A-Za-z]/m.test(source)) return undefined;
      const { outputText } = ts.transpileModule(source, {
        fileName: args.path,
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.ESNext,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          useDefineForClassFields: false,
          sourceMap: false,
          inlineSourceMap: true,
          inlineSources: true,
        },
      });
      return { contents: outputText, loader: 'js' };
    });
  },
};

/**
 * npm packages are never bundled. Every one the bundle imports (through its libraries too) must
 * be declared by the app, so a production install of the app has it.
 */
function externalPackages(imported) {
  return {
    name: 'external-packages',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /^[^./]/ }, (args) => {
        if (
          args.path.startsWith('@wsmon/') ||
          args.path.startsWith('node:') ||
          builtinModules.includes(args.path)
        ) {
          return undefined;
        }
        const parts = args.path.split('/');
        imported.add(args.path.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
        return { path: args.path, external: true };
      });
    },
  };
}

const started = performance.now();
for (const app of apps) {
  const imported = new Set();
  await build({
    absWorkingDir: root,
    entryPoints: [join(app.project, app.entry)],
    outfile: join(app.project, app.outfile),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: true,
    // Nest names providers and controllers by their class names in logs and errors.
    keepNames: true,
    tsconfig: 'tsconfig.base.json',
    plugins: [externalPackages(imported), ...(app.decorators ? [decoratorMetadata] : [])],
    logLevel: 'warning',
  });
  const pkg = JSON.parse(readFileSync(join(root, app.project, 'package.json'), 'utf8'));
  const undeclared = [...imported].filter((name) => !(name in (pkg.dependencies ?? {})));
  if (undeclared.length) {
    console.error(
      `${app.project}/package.json must declare what its bundle imports: ${undeclared.join(', ')}`,
    );
    process.exit(1);
  }
}
console.log(
  `built ${apps.map((a) => a.project).join(', ')} in ${Math.round(performance.now() - started)} ms`,
);
