/** Where things are, whatever outDir the tests were compiled to. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The compiled tree's root (the outDir: `dist/` when run by `npm test`). */
export const BUILD_ROOT = resolve(here, '..', '..');

function findRepoRoot(start: string): string {
  let d = start;
  for (;;) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tsproxy') return d;
    const up = dirname(d);
    if (up === d) throw new Error(`no tsproxy package.json above ${start}`);
    d = up;
  }
}

/** The repository root (source files, fixtures, examples). */
export const REPO_ROOT = findRepoRoot(here);

/** The compiled `tsproxy` entry point. */
export const MAIN_JS = join(BUILD_ROOT, 'host', 'main.js');
