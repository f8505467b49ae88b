// The TypeScript files below a folder, for tests that check rules over the source tree.
import * as fs from 'node:fs';
import * as path from 'node:path';

export function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}
