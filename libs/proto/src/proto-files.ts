import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';

/** Where the wire contract lives on disk, for proto-loader and server reflection. */
export interface ProtoFiles {
  /** Absolute path of the repository's `proto/` directory: the root every import is relative to. */
  readonly root: string;
  /** The configuration API's file relative to {@link ProtoFiles.root}, as descriptors name it. */
  readonly config: string;
  /** Absolute path of the configuration API's file. */
  readonly configPath: string;
  /** Every `.proto` file of the contract relative to {@link ProtoFiles.root}, sorted. */
  readonly all: readonly string[];
}

/** The configuration API's file, relative to the `proto/` directory. */
export const CONFIG_PROTO = 'wsmon/v1/config.proto';

/**
 * Locates the `.proto` files from the `@wsmon/proto` package, whatever the working directory.
 *
 * The package is found by module resolution rather than from this file's directory because the apps
 * are bundled (esbuild, CommonJS): there this code runs from the bundle, while npm workspaces still
 * link `node_modules/@wsmon/proto` to `libs/proto`, two levels below the repository root.
 *
 * @throws Error when the package or the files cannot be found (for example an image built without
 *   the `proto/` directory).
 */
export function protoFiles(): ProtoFiles {
  // Every way this repository runs TypeScript provides __filename: the CommonJS bundles, tsx (the
  // root package is not "type": "module") and vitest. import.meta would make esbuild warn in every
  // CommonJS bundle.
  if (typeof __filename !== 'string') {
    throw new Error('@wsmon/proto: protoFiles() needs CommonJS, tsx or vitest (no __filename here)');
  }
  let packageJson: string;
  try {
    packageJson = createRequire(__filename).resolve('@wsmon/proto/package.json');
  } catch (error) {
    throw new Error(`@wsmon/proto: cannot resolve the package from ${__filename}`, { cause: error });
  }
  const root = join(dirname(packageJson), '..', '..', 'proto');
  const configPath = join(root, CONFIG_PROTO);
  if (!existsSync(configPath)) {
    throw new Error(`@wsmon/proto: ${CONFIG_PROTO} not found under ${root}; the proto/ directory must ship`);
  }
  return { root, config: CONFIG_PROTO, configPath, all: listProtoFiles(root) };
}

function listProtoFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.proto'))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}
