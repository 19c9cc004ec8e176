import { checkUnits } from '../cost-units';
import type { StoreContext } from './context';
import type { PoolState, Slot } from './pool-state';

/**
 * A correction of a running request's units (`Lease.resize`), in one RESIZE script: fewer units
 * are given back at once (the script grants the waiters that now fit), more are taken at once.
 * While Redis is unreachable (`online` false) the correction is not made: the lease keeps the
 * units it was admitted with (a cut-off worker reuses only what Redis holds for it). A bad value
 * rejects with `InvalidCostError` and changes nothing.
 */
export async function resizeSlot(
  ctx: StoreContext,
  p: PoolState,
  slot: Slot,
  units: number,
  online: boolean,
): Promise<void> {
  const to = checkUnits(units, 'the corrected cost');
  if (slot.released || slot.lost || to === slot.units || !online) return;
  try {
    const held = await ctx
      .runner()
      .script<number>('balancerResize', p.keys.script, [...ctx.common(), slot.id, to]);
    if (held === 1 && !slot.released) slot.units = to;
  } catch (err) {
    ctx.degrade(err);
  }
}
