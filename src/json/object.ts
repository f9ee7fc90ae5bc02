/** A JSON object (not null, not a list, not the bytes protobufjs decodes into a Buffer). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}
