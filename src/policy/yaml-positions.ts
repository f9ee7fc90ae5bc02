import { isMap, isPair, isScalar, isSeq, LineCounter, type Document, type Node, type Pair } from 'yaml';
import type { PathSegment } from '../json/path';

export interface SourcePosition {
  line: number;
  column: number;
}

/**
 * Maps a field path inside one parsed YAML document to where it was written. A path that does
 * not exist (a missing required field) resolves to the deepest ancestor that does, which is
 * where the author has to add it.
 */
export class DocumentPositions {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  /**
   * Position of the value at `path`; with `key`, of the map key naming the last segment; with
   * `keys`, of the deepest map key (or list item) the path reaches, so a missing field points
   * at the key of its parent (what `envoy check` reports).
   */
  locate(path: readonly PathSegment[], options: { key?: boolean; keys?: boolean } = {}): SourcePosition {
    let node: unknown = this.doc.contents;
    let best: number = rangeStart(node) ?? this.documentStart();
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p: Pair<unknown, unknown>) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        if (options.key && i === path.length - 1) {
          best = rangeStart(pair.key) ?? best;
          break;
        }
        next = pair.value;
        // `key:` with no value has a null value node without a range; the key is the place.
        best = (options.keys ? rangeStart(pair.key) : (rangeStart(next) ?? rangeStart(pair.key))) ?? best;
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg];
        if (next === undefined) break;
        best = rangeStart(next) ?? best;
      } else break;
      node = next;
    }
    return this.position(best);
  }

  documentStart(): number {
    return this.doc.range[0];
  }

  position(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }
}

function rangeStart(node: unknown): number | undefined {
  if (node && typeof node === 'object' && !isPair(node) && 'range' in node) {
    const range = (node as Node).range;
    if (range) return range[0];
  }
  return undefined;
}
