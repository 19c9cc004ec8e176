/**
 * The flapping guard: health flips to unhealthy only after `failureThreshold` failed checks
 * in a row, and back to healthy only after `recoveryThreshold` good checks in a row, so one
 * slow answer does not close admission and one good answer does not reopen a sick app.
 */
export class HealthFlapGuard {
  private failures = 0;
  private successes = 0;
  private state = true;

  constructor(
    private readonly failureThreshold: number,
    private readonly recoveryThreshold: number,
  ) {}

  get healthy(): boolean {
    return this.state;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  get consecutiveSuccesses(): number {
    return this.successes;
  }

  /** Record one check. Returns the new state when this check flips it, else `null`. */
  record(ok: boolean): boolean | null {
    if (ok) {
      this.failures = 0;
      this.successes++;
      if (!this.state && this.successes >= this.recoveryThreshold) {
        this.state = true;
        return true;
      }
    } else {
      this.successes = 0;
      this.failures++;
      if (this.state && this.failures >= this.failureThreshold) {
        this.state = false;
        return false;
      }
    }
    return null;
  }
}
