import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { request } from 'undici';

/** Small helpers of the overload benchmark: control requests to the fixtures, binaries. */

export async function getJson<T>(url: string): Promise<T> {
  const res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
  const body = (await res.body.json()) as T;
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`);
  return body;
}

export async function post(url: string): Promise<void> {
  const res = await request(url, { method: 'POST', headersTimeout: 5000, bodyTimeout: 5000 });
  await res.body.dump();
}

/** A binary on PATH, else the first of `known` that exists. */
export function findBinary(name: string, known: string[]): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return known.find((p) => existsSync(p)) ?? null;
}

export function haproxyBinary(): string | null {
  const bin =
    process.env.HAPROXY_BIN ??
    findBinary('haproxy', ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy']);
  return bin && existsSync(bin) ? bin : null;
}

/** The reason a phase or a scenario failed, in one line. */
export function failure(err: unknown): string {
  const message = (err as Error).message ?? String(err);
  const cause = message.split('\n').find((l) => /\bError\b/.test(l));
  return `failed: ${message.split('\n')[0]}${cause ? ` (${cause.trim()})` : ''}`;
}
