import { Injectable } from '@nestjs/common';
import { randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * A per-process secret that marks the probe's own requests so they skip admission.
 * It never leaves the process except in probe requests sent to this app over loopback.
 */
@Injectable()
export class ProbeSecret {
  readonly value = randomBytes(24).toString('hex');
  private readonly bytes = Buffer.from(this.value);

  matches(header: unknown): boolean {
    if (typeof header !== 'string' || header.length !== this.value.length) return false;
    return timingSafeEqual(Buffer.from(header), this.bytes);
  }
}
