import type { ResolvedPool } from '../admission/pool-registry';
import type { CapacityStore } from '../storage/capacity-store.interface';

/** Stop reasons of a probe that did not finish its search (`ProbeResult.stopReason`). */
export const CUT_SHORT = new Set(['budget', 'deadline']);

/**
 * Why the adaptive controller should take over `pool` although its options leave adaptive off:
 * its startup probe failed (this process saw it), or the stored result says the probe stopped
 * early (request or time budget). `null`: the probe finished its search (or never ran).
 */
export async function cutShortReason(
  store: CapacityStore,
  pool: ResolvedPool,
): Promise<string | null> {
  const status = pool.probeStatus;
  if (status.state === 'failed') {
    return status.error?.startsWith('aborted') ? null : `the probe failed (${status.error})`;
  }
  if (status.state !== 'done' && status.state !== 'reused') return null;
  const stored = await store.getProbeResult(pool.key).catch(() => null);
  const stop = (stored?.report as { stopReason?: unknown } | null)?.stopReason;
  return typeof stop === 'string' && CUT_SHORT.has(stop)
    ? `the probe stopped early (${stop})`
    : null;
}
