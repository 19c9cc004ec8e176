import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Document, isMap, isScalar, LineCounter, parseDocument, YAMLMap } from 'yaml';
import { BalancerConfigError } from './balancer-config.error';
import type { BalancerOptions } from './balancer-options';

/** Keys whose values are user data: their own keys are never renamed. */
const OPAQUE_KEYS = new Set(['headers', 'body', 'redis', 'defaultLabels', 'routeMetadata']);

export function snakeToCamel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** Options read from YAML, with what is needed to point at the file in error messages. */
export interface LoadedYamlConfig {
  options: BalancerOptions;
  source: string;
  /** Maps a camelCase option path (`endpoints./predict.queueTimeout`) to the file's spelling and line. */
  locate(camelPath: string[]): string;
}

type KeyMode = 'options' | 'endpoints' | 'opaque';

/**
 * Convert the seed's snake_case keys to the TypeScript camelCase names, remembering how each
 * path was spelled in the file so errors name what the user wrote.
 */
function convertKeys(
  value: unknown,
  mode: KeyMode,
  camelPath: string[],
  filePath: string[],
  spelled: Map<string, string[]>,
): unknown {
  if (mode === 'opaque' || value === null || typeof value !== 'object' || Array.isArray(value)) {
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    // Endpoint keys are paths, kept as written; option keys are renamed.
    const name = mode === 'endpoints' ? key : snakeToCamel(key);
    const childMode: KeyMode =
      mode === 'endpoints'
        ? 'options'
        : name === 'endpoints'
          ? 'endpoints'
          : OPAQUE_KEYS.has(name)
            ? 'opaque'
            : 'options';
    const cPath = [...camelPath, name];
    const fPath = [...filePath, key];
    spelled.set(cPath.join('\u0000'), fPath);
    out[name] = convertKeys(child, childMode, cPath, fPath, spelled);
  }
  return out;
}

export function parseBalancerYaml(text: string, source: string): LoadedYamlConfig {
  const lineCounter = new LineCounter();
  const doc: Document.Parsed = parseDocument(text, { lineCounter });
  if (doc.errors.length > 0) {
    throw new BalancerConfigError(
      source,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const where = pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
        return `malformed YAML at ${where}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`;
      }),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BalancerConfigError(source, ['the top level must be a mapping of option keys']);
  }
  const spelled = new Map<string, string[]>();
  const options = convertKeys(raw, 'options', [], [], spelled) as BalancerOptions;
  const locate = (camelPath: string[]): string => {
    // Find the longest known prefix so unknown nested keys still get a line.
    for (let n = camelPath.length; n > 0; n--) {
      const file = spelled.get(camelPath.slice(0, n).join('\u0000'));
      if (!file) continue;
      const shown = [...file, ...camelPath.slice(n)].join('.');
      const line = lineOf(doc, file, lineCounter);
      return line ? `${shown} (line ${line})` : shown;
    }
    return camelPath.join('.');
  };
  return { options, source, locate };
}

function lineOf(doc: Document, path: string[], lines: LineCounter): number | undefined {
  // Point at the key of the last segment: that is where a user looks.
  const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
  if (!isMap(parent)) return undefined;
  const pair = (parent as YAMLMap).items.find(
    (p) => isScalar(p.key) && String(p.key.value) === path[path.length - 1],
  );
  const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
  return range ? lines.linePos(range[0]).line : undefined;
}

/**
 * Read a `balancer.yml` (the seed's format, snake_case keys) into options.
 * Throws `BalancerConfigError` naming the line of malformed YAML. Values are validated later,
 * by `resolveBalancerOptions()`, which also points at the line of each bad value.
 */
export function readBalancerYaml(path: string): LoadedYamlConfig {
  const full = isAbsolute(path) ? path : resolve(process.cwd(), path);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (err) {
    throw new BalancerConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parseBalancerYaml(text, path);
}
