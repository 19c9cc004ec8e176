import 'reflect-metadata';
import { IsBoolean, IsInt, IsNumber, IsOptional, Max, Min } from 'class-validator';

/**
 * Adaptive capacity: after the probe (or from a manual capacity) a controller watches the
 * pool's own latency and throughput and moves its capacity within `[min, max]`.
 */
export class AdaptiveOptions {
  /** Turn the controller on or off (an `adaptive:` mapping alone turns it on). @default true */
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  /** Lowest capacity the controller may set. @default max(1, floor(base / 4)) */
  @IsOptional()
  @IsInt({ message: '$property must be a positive integer' })
  @Min(1, { message: '$property must be a positive integer' })
  min?: number;

  /** Highest capacity the controller may set. @default 2 x base (the probed or manual capacity) */
  @IsOptional()
  @IsInt({ message: '$property must be a positive integer' })
  @Min(1, { message: '$property must be a positive integer' })
  max?: number;

  /** Seconds between decisions (one observation of the pool each). @default 2 */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0.1)
  @Max(3600)
  interval?: number;

  /**
   * Seconds between live re-probes: the controller tries a step up on the pool's own traffic
   * even while a failed try backs it off. 0 = off. @default 0
   */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  reprobeInterval?: number;

  /** Latency above `reference x (1 + this)` counts as slower. @default 0.5 */
  @IsOptional()
  @IsNumber()
  @Min(0.05)
  @Max(10)
  latencyTolerance?: number;
}

export const ADAPTIVE_TYPE = '$property must be true, false or a mapping (min, max, interval, …)';
