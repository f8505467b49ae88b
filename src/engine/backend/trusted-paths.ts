// Where the engine may take code from (native addons, scripts it runs): its own installed package
// folder, or a file the user names in an environment variable as an absolute path. Never the
// current directory or its parents: the engine runs with the user's workspace as its cwd, and a
// cloned repository that ships native/build/Release/bert_native.node must not get it loaded.
// The OpenBLAS addon (native.ts) and the bench's PyTorch script use this; a future dawn.node
// loader is meant to as well.
import * as fs from 'node:fs';
import * as path from 'node:path';

const SOURCE_DIR = path.join('src', 'engine', 'backend');

/**
 * The engine's package root, from this module's own folder: `<root>/dist` when bundled (every
 * bundle is one file in dist/), `<root>/src/engine/backend` when run from the sources (vitest).
 * Anywhere else: null (nothing is looked for). A fixed relative path, never a walk up.
 */
export function enginePackageRoot(
  moduleDir: string | undefined = typeof __dirname === 'string' ? __dirname : undefined,
): string | null {
  if (!moduleDir || !path.isAbsolute(moduleDir)) return null;
  const dir = path.normalize(moduleDir);
  if (path.basename(dir) === 'dist') return path.dirname(dir);
  if (dir.endsWith(path.sep + SOURCE_DIR)) return dir.slice(0, dir.length - SOURCE_DIR.length - 1);
  return null;
}

export type CodePath =
  /** from: 'env' when the user's variable named it, 'package' for the engine's own copy. */
  | { file: string; from: 'env' | 'package' }
  /**
   * Nothing to load. reason says why; warning is set when the user's setting was refused (print
   * it once); expected is the package file that was looked for (when that is why).
   */
  | { file: null; reason: string; warning?: string; expected?: string };

/**
 * The one rule for where code may come from. `rel` is the file inside the engine's package (e.g.
 * native/build/Release/bert_native.node); envName/envValue the user's override: '0' disables,
 * '' or '1' (or unset) means the package's copy, anything else must be an absolute path.
 */
export function trustedCodePath(
  rel: string,
  o: { envName?: string; envValue?: string; moduleDir?: string } = {},
): CodePath {
  const v = o.envValue;
  if (v === '0') return { file: null, reason: `disabled by ${o.envName}=0` };
  if (v && v !== '1') {
    if (path.isAbsolute(v)) return { file: v, from: 'env' };
    const why = 'relative paths would resolve in the current folder';
    const warning = `${o.envName}='${v}' is not an absolute path; ignored (${why})`;
    return { file: null, reason: warning, warning };
  }
  const root = enginePackageRoot(o.moduleDir);
  if (!root) return { file: null, reason: `the engine's package folder is unknown; ${rel} is not looked for` };
  const file = path.join(root, rel);
  return fs.existsSync(file) ? { file, from: 'package' } : { file: null, reason: `${rel} not found`, expected: file };
}
