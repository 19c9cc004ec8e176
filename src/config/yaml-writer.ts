import { Document, isMap, isScalar, parseDocument, YAMLMap } from 'yaml';

/** Keys whose values are user data: written as given, their own keys never renamed. */
const OPAQUE_KEYS = new Set(['headers', 'body', 'redis']);

/** Keys that hold credentials: never written unless the file already has them. */
const CREDENTIAL_KEY = /pass(word)?|secret|token|authorization|cookie|api[-_]?key/i;

export function camelToSnake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** A `balancer.yml` being edited in place: comments, key order and unknown keys survive. */
export class BalancerYamlDocument {
  /** Paths (dotted, as in the file) of credentials that were not written. */
  readonly skipped: string[] = [];

  private constructor(private readonly doc: Document) {}

  static parse(text: string): BalancerYamlDocument {
    const doc = parseDocument(text);
    if (doc.errors.length > 0) throw doc.errors[0];
    if (doc.contents === null) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
    return new BalancerYamlDocument(doc);
  }

  static empty(): BalancerYamlDocument {
    return new BalancerYamlDocument(new Document({}));
  }

  toString(): string {
    return this.doc.toString();
  }

  /** Set `endpoints[<path>].capacity`, creating the entry when missing. */
  setCapacity(endpoint: string, capacity: number): void {
    // The loader would refuse the file: never write what `endpoints.<path>.capacity` rejects.
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `endpoints.${endpoint}.capacity must be a positive integer (got ${capacity})`,
      );
    }
    const endpoints = this.mapAt(this.root(), 'endpoints', true)!;
    const entry = this.mapAt(endpoints, endpoint, true, true)!;
    entry.set('capacity', capacity);
  }

  /**
   * Write options (camelCase, as given to BenchBalancer) with the file's snake_case keys.
   * Existing keys keep their spelling and position; new keys are appended. Credentials (a
   * password, a token, an Authorization header, a password in a URL) are written only when the
   * file already holds the same value; otherwise they are skipped and listed in `skipped`.
   */
  mergeOptions(options: Record<string, unknown>): void {
    this.mergeMap(this.root(), options, 'options', []);
  }

  private root(): YAMLMap {
    const root = this.doc.contents;
    if (!isMap(root)) throw new Error('the top level of the YAML file must be a mapping');
    return root;
  }

  /** The map under `key` (either spelling), created when asked. */
  private mapAt(parent: YAMLMap, key: string, create: boolean, exact = false): YAMLMap | undefined {
    const found = this.findKey(parent, key, exact);
    const existing = found === undefined ? undefined : parent.get(found, true);
    if (isMap(existing)) return existing;
    if (!create) return undefined;
    const map = this.doc.createNode({}) as YAMLMap;
    parent.set(found ?? (exact ? key : camelToSnake(key)), map);
    return map;
  }

  /** The key as spelled in the file: camelCase or snake_case (exact: only as given). */
  private findKey(map: YAMLMap, key: string, exact = false): string | undefined {
    const spellings = exact ? [key] : [camelToSnake(key), key];
    for (const item of map.items) {
      const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
      if (spellings.includes(k)) return k;
    }
    return undefined;
  }

  private mergeMap(
    target: YAMLMap,
    values: Record<string, unknown>,
    mode: 'options' | 'endpoints' | 'opaque',
    path: string[],
  ): void {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) continue;
      const exact = mode !== 'options';
      const fileKey = this.findKey(target, key, exact) ?? (exact ? key : camelToSnake(key));
      const childPath = [...path, fileKey];
      const childMode =
        mode === 'endpoints'
          ? 'options'
          : mode === 'opaque'
            ? 'opaque'
            : key === 'endpoints'
              ? 'endpoints'
              : OPAQUE_KEYS.has(key)
                ? 'opaque'
                : 'options';
      const current = jsValue(target, fileKey);
      if (key === 'body' && mode === 'options') {
        // A body is one value: replaced as a whole, never merged key by key.
        if (!sameValue(current, value)) target.set(fileKey, this.doc.createNode(value));
        continue;
      }
      if (isPlainObject(value)) {
        const child = this.mapAt(target, fileKey, true, true)!;
        this.mergeMap(child, value, childMode, childPath);
        continue;
      }
      if (CREDENTIAL_KEY.test(key) || hasUrlPassword(value)) {
        if (!sameValue(current, value)) this.skipped.push(childPath.join('.'));
        continue;
      }
      if (!sameValue(current, value)) target.set(fileKey, this.doc.createNode(value));
    }
  }
}

function jsValue(map: YAMLMap, key: string): unknown {
  const node = map.get(key, true) as unknown;
  if (node && typeof node === 'object' && 'toJSON' in node) {
    return (node as { toJSON(): unknown }).toJSON();
  }
  return node;
}

function hasUrlPassword(value: unknown): boolean {
  if (typeof value !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return false;
  try {
    return new URL(value).password !== '';
  } catch {
    return false;
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
