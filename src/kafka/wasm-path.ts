import * as path from 'path';
import { packageRoot } from '../paths';

/** The filter module `make` builds and the package ships. */
export function kafkaFilterWasmPath(): string {
  return path.join(packageRoot(), 'wasm', 'kafka-filter', 'build', 'kafka-filter.wasm');
}
