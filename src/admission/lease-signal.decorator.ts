import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { admissionOf } from './admission-state';

/** The signal of work that holds no slot (not watched, a probe request): never aborted. */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/**
 * The `AbortSignal` of the request's slot, as a handler parameter: aborted when the slot can no
 * longer be proven while the handler still runs (Redis: its lease could not be renewed before it
 * expired, so the slot may be granted to another request), or when shutdown gives the slot back
 * after `drainTimeout`. The reason is a `LeaseLostError`. Pass it to the model client so the work
 * stops; a route no pool watches gets a signal that never fires.
 *
 * ```ts
 * @Post('predict')
 * predict(@Body() body: Prompt, @LeaseSignal() signal: AbortSignal) {
 *   return this.model.generate(body.prompt, { signal });
 * }
 * ```
 */
export const LeaseSignal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AbortSignal => {
    if (context.getType() !== 'http') return NEVER_ABORTED;
    const req = context.switchToHttp().getRequest<IncomingMessage & { raw?: IncomingMessage }>();
    // Express hands over the Node request itself, Fastify a request wrapping it as `.raw`.
    const raw = req.raw ?? req;
    return admissionOf(raw)?.lease.signal ?? NEVER_ABORTED;
  },
);
