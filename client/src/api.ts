import type { BalancerHistory, BalancerStats, ClientConfig } from './types';

/**
 * Read the config the server injected. Without one (the Vite dev server, which proxies
 * `/balancer` to a running app) use the default mount.
 */
export function readConfig(): ClientConfig {
  const fallback: ClientConfig = {
    statsUrl: import.meta.env.DEV ? '/balancer/stats' : '../stats',
    historyUrl: import.meta.env.DEV ? '/balancer/history' : '../history',
    pollMs: 2000,
    historySeconds: 300,
  };
  const el = document.getElementById('balancer-config');
  if (!el?.textContent) return fallback;
  try {
    return { ...fallback, ...(JSON.parse(el.textContent) as Partial<ClientConfig>) };
  } catch {
    return fallback;
  }
}

export type Failure =
  | { kind: 'auth'; status: number; message: string }
  | { kind: 'http'; status: number; message: string }
  | { kind: 'unreachable'; message: string };

export type Result<T> = { ok: true; data: T } | { ok: false; error: Failure };

const TIMEOUT_MS = 5000;

async function getJson<T>(url: string): Promise<Result<T>> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const res = await fetch(url, {
      cache: 'no-store',
      credentials: 'same-origin',
      headers: { accept: 'application/json' },
      signal: abort.signal,
    });
    if (res.status === 401 || res.status === 403) {
      return { ok: false, error: { kind: 'auth', status: res.status, message: res.statusText } };
    }
    if (!res.ok) {
      let message = res.statusText;
      try {
        const body = (await res.json()) as { message?: unknown };
        if (typeof body.message === 'string') message = body.message;
      } catch {
        // not JSON: keep the status text
      }
      return { ok: false, error: { kind: 'http', status: res.status, message } };
    }
    return { ok: true, data: (await res.json()) as T };
  } catch (err) {
    const message = abort.signal.aborted
      ? `no answer within ${TIMEOUT_MS / 1000} s`
      : String((err as Error).message ?? err);
    return { ok: false, error: { kind: 'unreachable', message } };
  } finally {
    clearTimeout(timer);
  }
}

/** Resolve the injected relative URLs against the page (`/api/balancer/ui/` -> `/api/balancer/stats`). */
export function absolute(url: string): string {
  return new URL(url, document.baseURI).toString();
}

export function fetchStats(config: ClientConfig): Promise<Result<BalancerStats>> {
  return getJson<BalancerStats>(absolute(config.statsUrl));
}

export function fetchHistory(
  config: ClientConfig,
  since?: number,
): Promise<Result<BalancerHistory>> {
  const url = new URL(absolute(config.historyUrl));
  if (since !== undefined) url.searchParams.set('since', String(since));
  return getJson<BalancerHistory>(url.toString());
}
