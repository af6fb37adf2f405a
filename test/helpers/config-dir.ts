/** A throwaway tsproxy config directory (records.yaml in the ATS 10 nested form, plus the other files). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';

export interface ConfigDirSpec {
  /**
   * Records, nested (`{ http: { server_ports: '0' } }`) or dotted (`'proxy.config.http.server_ports': '0'`,
   * `'http.server_ports': '0'`), mixed freely. The `proxy.config.` / `proxy.local.` prefix is dropped.
   */
  records?: Record<string, unknown>;
  pluginConfig?: string;
  remap?: string;
  ipAllow?: string;
  sslMulticert?: string;
  /** Written to `hosts`; `hostdb.host_file.path` points at it unless the records set it. */
  hosts?: string;
  sniYaml?: string;
  /** Any other files, by path relative to the dir (sub-directories are created). */
  files?: Record<string, string>;
}

export interface ConfigDir {
  dir: string;
  cleanup(): void;
}

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets `value` at `path` in `tree`, merging maps; a name that is both a value and a parent is an error. */
function put(tree: Tree, path: readonly string[], value: unknown, full: string): void {
  const [head, ...rest] = path;
  if (head === undefined || head === '') throw new Error(`makeConfigDir: bad record name '${full}'`);
  if (rest.length === 0) {
    if (isTree(value)) {
      for (const [k, v] of Object.entries(value)) put(tree, [head, ...k.split('.')], v, `${full}.${k}`);
      return;
    }
    if (head in tree) throw new Error(`makeConfigDir: record '${full}' given twice or both a value and a parent`);
    tree[head] = value;
    return;
  }
  const child = tree[head] ?? {};
  if (!isTree(child)) throw new Error(`makeConfigDir: record '${full}' is under a name that already has a value`);
  tree[head] = child;
  put(child, rest, value, full);
}

/** Nests dotted ATS record names below the `proxy.config.` prefix. */
export function nestRecords(records: Record<string, unknown>): Tree {
  const tree: Tree = {};
  for (const [name, value] of Object.entries(records)) {
    const short = name.replace(/^proxy\.(config|local)\./, '');
    put(tree, short.split('.'), value, name);
  }
  return tree;
}

function hasPath(tree: Tree, path: readonly string[]): boolean {
  let node: unknown = tree;
  for (const p of path) {
    if (!isTree(node) || !(p in node)) return false;
    node = node[p];
  }
  return true;
}

/** Writes the files into a fresh temp dir; `cleanup()` removes it. */
export async function makeConfigDir(spec: ConfigDirSpec = {}): Promise<ConfigDir> {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-config-'));
  try {
    const records = nestRecords(spec.records ?? {});
    const files: Record<string, string> = {};
    if (spec.hosts !== undefined) {
      files['hosts'] = spec.hosts;
      if (!hasPath(records, ['hostdb', 'host_file', 'path'])) put(records, ['hostdb', 'host_file', 'path'], join(dir, 'hosts'), 'hosts');
    }
    files['records.yaml'] = stringify({ records });
    if (spec.pluginConfig !== undefined) files['plugin.config'] = spec.pluginConfig;
    if (spec.remap !== undefined) files['remap.config'] = spec.remap;
    if (spec.ipAllow !== undefined) files['ip_allow.yaml'] = spec.ipAllow;
    if (spec.sslMulticert !== undefined) files['ssl_multicert.config'] = spec.sslMulticert;
    if (spec.sniYaml !== undefined) files['sni.yaml'] = spec.sniYaml;
    Object.assign(files, spec.files ?? {});
    for (const [name, text] of Object.entries(files)) {
      const file = join(dir, name);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
