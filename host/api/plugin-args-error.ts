import { ErrorCode, ProxyError } from './errors.js';
import type { PluginDiagnostic } from './types.js';

/** Thrown by a plugin's `init` when its arguments or files are invalid; carries every problem found. */
export class PluginArgsError extends ProxyError {
  readonly diagnostics: readonly PluginDiagnostic[];
  constructor(diagnostics: readonly PluginDiagnostic[]) {
    super(
      ErrorCode.PLUGIN_ARGS,
      diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`).join('\n'),
    );
    this.diagnostics = diagnostics;
  }
}
