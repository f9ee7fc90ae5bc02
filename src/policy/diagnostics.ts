/**
 * Compiler-style diagnostics: every problem names the file, the YAML document, the line and
 * column, and the field path, so `policy check` output can be clicked through in an editor.
 */
export interface Diagnostic {
  file: string;
  /** 1-based line and column. */
  line: number;
  column: number;
  /** 1-based index of the YAML document in its file; absent for file-level problems. */
  document?: number;
  /** What the document is, e.g. `L7Policy default/api`, when known. */
  subject?: string;
  /** Field path such as `spec.ingress[0].toPorts[0].rules.http[1].path`; empty for the document. */
  path: string;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  let text = `${d.file}:${d.line}:${d.column}: `;
  if (d.document !== undefined) text += `document ${d.document}${d.subject ? ` (${d.subject})` : ''}: `;
  if (d.path) text += `${d.path}: `;
  return text + d.message;
}

/** Stable order for output and tests: by file, then position. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.column - b.column || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}
