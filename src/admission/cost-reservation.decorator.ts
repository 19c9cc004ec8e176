import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { Lease } from '../storage/capacity-store.interface';
import { checkUnits } from '../storage/cost-units';
import { admissionOf } from './admission-state';

/**
 * The units a running request holds in its pool (see docs/cost-and-deadlines.md), and the way
 * to correct them once the real size is known: `correct(units)` gives back units at once
 * (waiters that now fit are admitted) or claims more at once (never refused: the work already
 * runs; the pool admits nothing new until its units in flight fit the capacity again).
 * `units` must be a positive number (fractions round up); anything else throws
 * `InvalidCostError` and changes nothing. A correction after the slot went back does nothing.
 */
export interface CostReservation {
  /** Units held now. */
  readonly units: number;
  correct(units: number): Promise<void>;
}

/** The reservation of `lease` (a store without corrections keeps the units it admitted). */
export function reservationOf(lease: Lease | undefined): CostReservation {
  return {
    get units() {
      return lease?.units ?? 1;
    },
    correct: async (units) => {
      const whole = checkUnits(units, 'the corrected cost');
      await lease?.resize?.(whole);
    },
  };
}

/**
 * The request's `CostReservation`, as a handler parameter. A route no pool watches (or the
 * balancer's own probe request) gets one whose corrections do nothing.
 *
 * ```ts
 * @Post('generate')
 * @Balanced({ costHeader: 'x-prompt-tokens' })
 * async generate(@Body() body: Prompt, @CostReservation() reservation: CostReservation) {
 *   await reservation.correct(countTokens(body.prompt) + body.maxTokens);
 *   return this.model.generate(body);
 * }
 * ```
 */
export const CostReservation = createParamDecorator(
  (_data: unknown, context: ExecutionContext): CostReservation => {
    if (context.getType() !== 'http') return reservationOf(undefined);
    const req = context.switchToHttp().getRequest<IncomingMessage & { raw?: IncomingMessage }>();
    // Express hands over the Node request itself, Fastify a request wrapping it as `.raw`.
    return reservationOf(admissionOf(req.raw ?? req)?.lease);
  },
);
