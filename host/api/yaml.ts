/**
 * The yaml package for one parse, then released: for the host's config files and for plugins
 * that read YAML of their own (sni_router's sni.yaml). Its code and data are about 1 MB of V8 heap that
 * a running proxy does not need, and a heap kept under V8's 8 MB incremental-marking threshold
 * relays bulk data without a mark-compact per 64 MB (README, "Memory and GC"). It is loaded as
 * CommonJS through a require function made for the call, so once the cache entries are dropped
 * nothing keeps it alive (an ESM import would stay for the process's life).
 */
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import type * as YAML from 'yaml';

export type Yaml = typeof YAML;

/** Run `fn` with the yaml module. `fn`'s result must not hold yaml objects (nodes, documents). */
export function withYaml<T>(fn: (yaml: Yaml) => T): T {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('yaml');
  try {
    return fn(require(entry) as Yaml);
  } finally {
    const root = dirname(entry) + sep;
    for (const key of Object.keys(require.cache)) if (key.startsWith(root)) delete require.cache[key];
  }
}
