import { Injectable } from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The byte budget of waiting bodies (`maxQueueBytes`): bytes of request bodies that were read
 * into memory before admission (routes admitted after body parsing) and now wait in a pool's
 * queue. Counted per process, by the declared `Content-Length`: each process's memory is its
 * own, so a shared (Redis) number would bound nothing.
 */
@Injectable()
export class QueuedBodyBytes {
  private readonly waiting = new Map<string, number>();

  /**
   * Count `bytes` as waiting in `pool`, or `false` when that would pass `max` (`0`: no budget).
   * A body that alone is larger than the budget is refused too: the budget is a hard bound.
   */
  reserve(pool: string, bytes: number, max: number): boolean {
    if (bytes <= 0) return true;
    const now = this.waiting.get(pool) ?? 0;
    if (max > 0 && now + bytes > max) return false;
    this.waiting.set(pool, now + bytes);
    return true;
  }

  /** The request stopped waiting (admitted, rejected or gone). */
  release(pool: string, bytes: number): void {
    if (bytes <= 0) return;
    const left = (this.waiting.get(pool) ?? 0) - bytes;
    if (left > 0) this.waiting.set(pool, left);
    else this.waiting.delete(pool);
  }

  /** Bytes of read bodies waiting in `pool` in this process. */
  queued(pool: string): number {
    return this.waiting.get(pool) ?? 0;
  }
}

/** The declared body size of a request (`Content-Length`), 0 when absent or not a number. */
export function declaredBodyBytes(headers: IncomingHttpHeaders | RawHeaders): number {
  const value = headers['content-length'];
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

type RawHeaders = Record<string, string | string[] | undefined>;

/** Whether a request carries a body at all (a length above 0, or chunked). */
export function hasBody(headers: RawHeaders): boolean {
  return declaredBodyBytes(headers) > 0 || headers['transfer-encoding'] !== undefined;
}
