import type { EndpointStats } from '../admission/balancer-stats.service';
import type { TenantCount } from '../storage/capacity-store.interface';

/** Most tenant label values one pool carries in one scrape (over every per-tenant metric). */
export const MAX_TENANT_SERIES = 10;
/** Longest tenant label value, in characters (the rest is cut). */
export const MAX_TENANT_LABEL = 64;

/** The samples of the per-tenant gauges of one pool: tenant label value -> count. */
export interface TenantSeries {
  queued: Map<string, number>;
  admitted: Map<string, number>;
}

/**
 * The tenants one pool shows in the metrics, bounded whatever the store returned (tenant keys
 * come from requests): label values cut to `MAX_TENANT_LABEL` characters (keys equal once cut
 * are one series, their counts added), and at most `MAX_TENANT_SERIES` distinct tenants per
 * pool, taken alternately from the top of the queued and of the admitted ranking, so both keep
 * their leaders. A tenant that left the top lists is absent from the next scrape: the gauges
 * are reset before every collect.
 */
export function tenantSeries(e: EndpointStats): TenantSeries {
  if (!e.tenants) return { queued: new Map(), admitted: new Map() };
  const queued = byLabel(e.tenants.queued);
  const admitted = byLabel(e.tenants.admitted);
  const q = [...queued.keys()];
  const a = [...admitted.keys()];
  const chosen = new Set<string>();
  const take = (label: string | undefined): void => {
    if (label !== undefined && chosen.size < MAX_TENANT_SERIES) chosen.add(label);
  };
  for (let i = 0; chosen.size < MAX_TENANT_SERIES && (i < q.length || i < a.length); i++) {
    take(q[i]);
    take(a[i]);
  }
  const keep = (m: Map<string, number>) => new Map([...m].filter(([t]) => chosen.has(t)));
  return { queued: keep(queued), admitted: keep(admitted) };
}

/** Label value -> count, in the list's order (largest first), cut and merged. */
function byLabel(list: TenantCount[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const { tenant, count } of list) {
    if (typeof tenant !== 'string' || !Number.isFinite(count)) continue;
    const label = cut(tenant);
    out.set(label, (out.get(label) ?? 0) + count);
  }
  return out;
}

/** The first `MAX_TENANT_LABEL` characters, never half of a surrogate pair. */
function cut(tenant: string): string {
  if (tenant.length <= MAX_TENANT_LABEL) return tenant;
  const end = MAX_TENANT_LABEL;
  const code = tenant.charCodeAt(end - 1);
  return tenant.slice(0, code >= 0xd800 && code <= 0xdbff ? end - 1 : end);
}
