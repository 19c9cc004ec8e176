import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NEVER_ABORTED } from './lease-signal.decorator';
import { requestDeadlineSignal } from './request-deadline';

/**
 * The `AbortSignal` of the request's deadline, as a handler parameter: aborted with a
 * `DeadlineExceededError` when the deadline the request told (`deadlineHeader` / `deadline` of
 * its pool) passes while the handler still runs, so the model call can stop for a client that
 * has given up. A request without a deadline, or on a route no pool watches, gets a signal that
 * never fires. For the slot's own signal as well, combine the two:
 * `AbortSignal.any([deadline, lease])` (see `@LeaseSignal()`).
 *
 * ```ts
 * @Post('generate')
 * @Balanced({ deadlineHeader: 'x-request-timeout-ms' })
 * generate(@Body() body: Prompt, @DeadlineSignal() signal: AbortSignal) {
 *   return this.model.generate(body.prompt, { signal });
 * }
 * ```
 */
export const DeadlineSignal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AbortSignal => {
    if (context.getType() !== 'http') return NEVER_ABORTED;
    const http = context.switchToHttp();
    const req = http.getRequest<IncomingMessage & { raw?: IncomingMessage }>();
    const res = http.getResponse<ServerResponse | { raw: ServerResponse }>();
    // Express hands over the Node objects themselves, Fastify wraps them as `.raw`.
    const raw = req.raw ?? req;
    const rawRes = 'raw' in res ? res.raw : res;
    return requestDeadlineSignal(raw, rawRes) ?? NEVER_ABORTED;
  },
);
