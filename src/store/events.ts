/**
 * What policy sources send the store: resource events tagged with their source and the identity
 * of the object they concern (a file path, a Kubernetes `kind/namespace/name`, a Redis key), in
 * the manner of Cilium's policy importer. An object's content is text (YAML or JSON, one or more
 * documents); the store parses and validates it, so every source gets the same checks and the
 * same file:line diagnostics. Unreadable content is sent as such: the object keeps its last good
 * state and the reason is reported.
 */
export type ObjectContent = { readonly text: string } | { readonly unreadable: string };

export type PolicyObject = { readonly id: string } & ObjectContent;

export type ResourceEvent =
  /** The object is new or changed. */
  | ({ readonly type: 'upsert'; readonly source: string; readonly id: string } & ObjectContent)
  /** The object is gone. */
  | { readonly type: 'remove'; readonly source: string; readonly id: string }
  /** The source's complete set of objects: every other object of this source is gone. */
  | { readonly type: 'replace-all'; readonly source: string; readonly objects: readonly PolicyObject[] };
