/**
 * ip_allow.yaml: ACLs for inbound clients (`apply: in`) and outbound destinations (`apply: out`).
 *
 * ```yaml
 * ip_allow:
 *   - apply: in
 *     ip_addrs: [127.0.0.1, ::1]
 *     action: set_allow
 *   - apply: out
 *     ip_addrs: 10.0.0.0/8
 *     action: set_deny
 *     methods: [CONNECT]
 * ```
 *
 * The first rule (of the same `apply`) whose addresses match wins. `in`: no match denies.
 * `out`: no match allows, except link-local addresses (169.254.0.0/16, fe80::/10: cloud metadata
 * endpoints), which tsproxy denies unless a rule matches them, with or without a file (an ATS 9
 * file with only `in` rules must not open the metadata service). With no file, loopback clients
 * may use every method and every other client is refused at accept (ATS 10.1's defaults are
 * different: see defaultIpAllow).
 *
 * `set_allow` with methods allows only those; `set_deny` with methods denies only those; without
 * methods (or with `ALL`) the action covers every method. `allow`/`deny` are the legacy spellings.
 * `ip_categories` is not supported.
 */
import type { LineCounter } from 'yaml';
import type { Node, Pair } from 'yaml';
import { withYaml, type Yaml } from '../api/yaml.js';
import { ErrorCode, ProxyError } from '../api/errors.js';
import { diags } from '../diags.js';
import { parseIp, parseIpRange, rangeContains } from './ip-range.js';
import type { IpRange } from './ip-range.js';
import type { Diagnostic, IpAllow, IpAllowDecision, Parsed } from './types.js';

type Apply = 'in' | 'out';

interface Rule {
  readonly apply: Apply;
  readonly ranges: readonly IpRange[];
  readonly allow: boolean;
  /** Upper-case methods, or null for every method. */
  readonly methods: ReadonlySet<string> | null;
  /** `file:line`. */
  readonly where: string;
}

const RULE_KEYS = new Set(['apply', 'ip_addrs', 'ip_categories', 'action', 'methods']);
const ACTIONS: Readonly<Record<string, boolean>> = { set_allow: true, allow: true, set_deny: false, deny: false };
const METHOD_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DEFAULT = 'default';
const dbg = diags.dbgCtl('ip_allow');

function range(text: string): IpRange {
  const r = parseIpRange(text);
  if (typeof r === 'string') throw new ProxyError(ErrorCode.CONFIG_INVALID, `built-in range ${text}: ${r}`);
  return r;
}

const LINK_LOCAL = [range('169.254.0.0/16'), range('fe80::/10')];
const LOOPBACK = [range('127.0.0.0/8'), range('::1')];

function methodAllowed(rule: Rule, method: string): boolean {
  if (rule.methods === null) return rule.allow;
  return rule.methods.has(method.toUpperCase()) === rule.allow;
}

function deniesEverything(rule: Rule): boolean {
  return rule.allow ? rule.methods !== null && rule.methods.size === 0 : rule.methods === null;
}

function buildIpAllow(rules: readonly Rule[], fromFile: boolean): IpAllow {
  const inRules = rules.filter((r) => r.apply === 'in');
  const outRules = rules.filter((r) => r.apply === 'out');
  /** The first rule matching `ip`; undefined if none; null if `ip` is not an address. */
  const find = (list: readonly Rule[], ip: string): Rule | undefined | null => {
    const addr = parseIp(ip);
    if (addr === null) return null;
    return list.find((r) => r.ranges.some((rg) => rangeContains(rg, addr)));
  };
  const log = (what: string, ip: string, method: string, d: IpAllowDecision): IpAllowDecision => {
    if (dbg.on) dbg('%s %s %s: %s by %s', what, ip, method, d.allow ? 'allow' : 'deny', d.by);
    return d;
  };
  const deny: IpAllowDecision = { allow: false, by: DEFAULT };
  return {
    fromFile,
    acceptIn(ip: string): IpAllowDecision {
      const rule = find(inRules, ip);
      return log('accept', ip, '-', rule ? { allow: !deniesEverything(rule), by: rule.where } : deny);
    },
    checkIn(ip: string, method: string): IpAllowDecision {
      const rule = find(inRules, ip);
      return log('in', ip, method, rule ? { allow: methodAllowed(rule, method), by: rule.where } : deny);
    },
    checkOut(ip: string, method: string): IpAllowDecision {
      const rule = find(outRules, ip);
      if (rule === null) return log('out', ip, method, deny);
      if (rule !== undefined) return log('out', ip, method, { allow: methodAllowed(rule, method), by: rule.where });
      const addr = parseIp(ip);
      const linkLocal = addr !== null && LINK_LOCAL.some((rg) => rangeContains(rg, addr));
      return log('out', ip, method, { allow: !linkLocal, by: DEFAULT });
    },
  };
}

/**
 * tsproxy's built-in ACL when ip_allow.yaml is absent (deliberately not ATS 10.1's, which lets
 * every client in and denies outbound CONNECT to private ranges): loopback clients may use every
 * method, all other clients are refused at accept; outbound is allowed except to link-local.
 */
export function defaultIpAllow(): IpAllow {
  return buildIpAllow([{ apply: 'in', ranges: LOOPBACK, allow: true, methods: null, where: DEFAULT }], false);
}

class RuleReader {
  readonly #file: string;
  readonly #lines: LineCounter;
  readonly #yaml: Yaml;
  readonly diagnostics: Diagnostic[] = [];

  constructor(file: string, lines: LineCounter, yaml: Yaml) {
    this.#file = file;
    this.#lines = lines;
    this.#yaml = yaml;
  }

  lineOf(node: Node | null | undefined): number {
    return this.#lines.linePos(node?.range?.[0] ?? 0).line;
  }

  report(node: Node | null | undefined, message: string, severity: Diagnostic['severity'] = 'error'): void {
    const { line, col } = this.#lines.linePos(node?.range?.[0] ?? 0);
    this.diagnostics.push({ file: this.#file, line, col, message, severity });
  }

  /** Scalar text, or null (reported) for a non-scalar. */
  scalar(node: Node | null | undefined, what: string): string | null {
    if (this.#yaml.isScalar(node) && node.value !== null && typeof node.value !== 'object') return String(node.value);
    this.report(node, `'${what}' must be a string`);
    return null;
  }

  /** A scalar or a sequence of scalars. */
  list(node: Node | null | undefined, what: string): { text: string; node: Node }[] | null {
    if (this.#yaml.isSeq(node)) {
      return node.items.flatMap((item) => {
        const n = item as Node;
        const text = this.scalar(n, what);
        return text === null ? [] : [{ text, node: n }];
      });
    }
    const text = this.scalar(node, what);
    return text === null || node === null || node === undefined ? null : [{ text, node }];
  }

  rule(node: Node): Rule | null {
    if (!this.#yaml.isMap(node)) {
      this.report(node, 'each ip_allow rule must be a map (apply, ip_addrs, action, methods)');
      return null;
    }
    const before = this.diagnostics.length;
    const fields = new Map<string, Pair<Node, Node>>();
    for (const pair of node.items as Pair<Node, Node>[]) {
      const key = this.scalar(pair.key, 'key');
      if (key === null) continue;
      if (!RULE_KEYS.has(key)) this.report(pair.key, `unknown key '${key}' (expected apply, ip_addrs, action, methods)`);
      else if (fields.has(key)) this.report(pair.key, `duplicate key '${key}'`);
      else fields.set(key, pair);
    }
    const apply = this.#apply(node, fields.get('apply'));
    const ranges = this.#ranges(node, fields);
    const allow = this.#action(node, fields.get('action'));
    const methods = this.#methods(fields.get('methods'));
    if (this.diagnostics.length > before || apply === null || ranges === null || allow === null) return null;
    return { apply, ranges, allow, methods, where: `${this.#file}:${this.lineOf(node)}` };
  }

  #apply(rule: Node, pair: Pair<Node, Node> | undefined): Apply | null {
    if (pair === undefined) {
      this.report(rule, `missing 'apply' (in or out)`);
      return null;
    }
    const text = this.scalar(pair.value, 'apply');
    if (text === null) return null;
    const v = text.toLowerCase();
    if (v === 'in' || v === 'out') return v;
    this.report(pair.value, `invalid 'apply' value '${text}' (expected in or out)`);
    return null;
  }

  #ranges(rule: Node, fields: ReadonlyMap<string, Pair<Node, Node>>): IpRange[] | null {
    const categories = fields.get('ip_categories');
    if (categories !== undefined) {
      this.report(categories.key, `'ip_categories' is not supported by tsproxy; list addresses in 'ip_addrs'`);
      return null;
    }
    const pair = fields.get('ip_addrs');
    if (pair === undefined) {
      this.report(rule, `missing 'ip_addrs'`);
      return null;
    }
    const items = this.list(pair.value, 'ip_addrs');
    if (items === null) return null;
    if (items.length === 0) this.report(pair.value, `'ip_addrs' is empty`);
    const ranges: IpRange[] = [];
    for (const { text, node } of items) {
      const r = parseIpRange(text);
      if (typeof r === 'string') this.report(node, `ip_addrs: ${r}`);
      else ranges.push(r);
    }
    return ranges;
  }

  #action(rule: Node, pair: Pair<Node, Node> | undefined): boolean | null {
    if (pair === undefined) {
      this.report(rule, `missing 'action' (set_allow or set_deny)`);
      return null;
    }
    const text = this.scalar(pair.value, 'action');
    if (text === null) return null;
    const allow = ACTIONS[text.toLowerCase()];
    if (allow !== undefined) return allow;
    this.report(pair.value, `invalid 'action' value '${text}' (expected set_allow, set_deny, allow or deny)`);
    return null;
  }

  #methods(pair: Pair<Node, Node> | undefined): Set<string> | null {
    if (pair === undefined) return null;
    const items = this.list(pair.value, 'methods');
    if (items === null) return null;
    const methods = new Set<string>();
    let all = false;
    for (const { text, node } of items) {
      const m = text.toUpperCase();
      if (m === 'ALL') all = true;
      else if (METHOD_RE.test(m)) methods.add(m);
      else this.report(node, `invalid method '${text}' in 'methods'`);
    }
    return all ? null : methods;
  }
}

/** Parse ip_allow.yaml. The value is usable even with errors (bad rules are dropped). */
export function parseIpAllowYaml(text: string, file: string): Parsed<IpAllow> {
  return withYaml((yaml) => {
    const lines = new yaml.LineCounter();
    const doc = yaml.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
    const reader = new RuleReader(file, lines, yaml);
    const pushYaml = (severity: Diagnostic['severity'], e: { readonly message: string; readonly pos: readonly number[] }): void => {
      const { line, col } = lines.linePos(e.pos[0] ?? 0);
      reader.diagnostics.push({ file, line, col, message: `YAML: ${e.message}`, severity });
    };
    doc.errors.forEach((e) => pushYaml('error', e));
    doc.warnings.forEach((e) => pushYaml('warning', e));
    const rules: Rule[] = [];
    const root = doc.contents;
    if (doc.errors.length === 0) {
      if (root === null) {
        reader.report(null, 'empty ip_allow.yaml: every client will be denied', 'warning');
      } else if (!yaml.isMap(root)) {
        reader.report(root, `the root must be a map with the key 'ip_allow'`);
      } else {
        for (const pair of root.items as Pair<Node, Node>[]) {
          const key = reader.scalar(pair.key, 'key');
          if (key === null) continue;
          if (key === 'ip_categories') {
            reader.report(pair.key, `'ip_categories' is not supported by tsproxy; list addresses in 'ip_addrs'`);
            continue;
          }
          if (key !== 'ip_allow') {
            reader.report(pair.key, `unknown key '${key}' (expected ip_allow)`);
            continue;
          }
          if (pair.value === null || (yaml.isScalar(pair.value) && pair.value.value === null)) {
            reader.report(pair.key, `'ip_allow' must be a list of rules`);
            continue;
          }
          const items = yaml.isSeq(pair.value) ? (pair.value.items as Node[]) : [pair.value];
          for (const item of items) {
            const rule = reader.rule(item);
            if (rule !== null) rules.push(rule);
          }
        }
        if (!rules.some((r) => r.apply === 'in') && reader.diagnostics.every((d) => d.severity !== 'error')) {
          reader.report(root, `no 'apply: in' rules: every client will be denied`, 'warning');
        }
      }
    }
    const diagnostics = reader.diagnostics.sort((a, b) => a.line - b.line || a.col - b.col);
    return { value: buildIpAllow(rules, true), diagnostics };
  });
}
