import { BadRequestException, HttpException, HttpStatus } from '@nestjs/common';

export type UnavailableReason =
  | 'unhealthy'
  | 'shutting_down'
  | 'queue_full'
  | 'shed'
  | 'tenant_queue_full'
  | 'deadline_unreachable'
  | 'queue_cost_full';

const MESSAGES: Record<UnavailableReason, string> = {
  unhealthy: 'The service is unhealthy; try again later',
  shutting_down: 'The service is shutting down; try another instance',
  queue_full: 'Too many requests are already waiting for this endpoint',
  shed: 'The endpoint is overloaded: this request would wait longer than its queue target',
  tenant_queue_full: 'Too many requests of this client are already waiting for this endpoint',
  deadline_unreachable:
    "The queue ahead is predicted to take longer than the time left before this request's deadline",
  queue_cost_full: 'Too many units of work are already waiting for this endpoint',
};

/** Base of the balancer's rejections: carries the `Retry-After` seconds. */
export abstract class BalancerRejection extends HttpException {
  constructor(
    message: string,
    status: number,
    readonly reason: string,
    readonly retryAfter: number,
  ) {
    super(
      {
        statusCode: status,
        error: status === 504 ? 'Gateway Timeout' : 'Service Unavailable',
        message,
        reason,
      },
      status,
    );
  }
}

/** 503: unhealthy, shutting down, the queue is full (for everyone or the tenant), or shed. */
export class BalancerUnavailableException extends BalancerRejection {
  constructor(reason: UnavailableReason, retryAfter: number) {
    super(MESSAGES[reason], HttpStatus.SERVICE_UNAVAILABLE, reason, retryAfter);
  }
}

/** 504: the request waited in the queue longer than the queue timeout. */
export class BalancerQueueTimeoutException extends BalancerRejection {
  constructor(waitedSeconds: number, retryAfter: number) {
    super(
      `Waited ${waitedSeconds.toFixed(1)} s in the queue without a free slot`,
      HttpStatus.GATEWAY_TIMEOUT,
      'queue_timeout',
      retryAfter,
    );
  }
}

/** 504: the request's deadline passed while it waited in the queue (or before it arrived). */
export class BalancerDeadlineException extends BalancerRejection {
  constructor(waitedSeconds: number, retryAfter: number) {
    super(
      `The request's deadline passed after ${waitedSeconds.toFixed(1)} s in the queue`,
      HttpStatus.GATEWAY_TIMEOUT,
      'deadline',
      retryAfter,
    );
  }
}

/** The client went away while queued; nothing reaches it, the status only shows in logs. */
export class ClientClosedRequestException extends HttpException {
  constructor() {
    super('Client closed the request while it was queued', 499);
  }
}

/**
 * 400: the request's cost could not be read (`costHeader` missing or not a positive number, the
 * `cost` function threw or returned one that is not): no units are reserved, nothing runs.
 */
export class BalancerInvalidCostException extends BadRequestException {
  readonly reason = 'invalid_cost';

  constructor(detail: string) {
    super({ statusCode: 400, error: 'Bad Request', message: detail, reason: 'invalid_cost' });
  }
}
