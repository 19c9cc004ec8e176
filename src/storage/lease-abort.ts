/** Why a lease's `signal` fired: its slot can no longer be proven, or shutdown gave it back. */
export class LeaseLostError extends Error {
  constructor(
    readonly pool: string,
    /**
     * `lost`: the lease could not be renewed before it expired (Redis unreachable, the process
     * stalled, Redis lost it), so the slot may be someone else's now. `shutdown`: the store
     * closed while the work still ran (the drain timeout passed) and gave the slot back.
     */
    readonly reason: 'lost' | 'shutdown',
  ) {
    super(
      reason === 'lost'
        ? `the slot of pool "${pool}" can no longer be proven (its lease was lost)`
        : `the slot of pool "${pool}" was given back at shutdown`,
    );
    this.name = 'LeaseLostError';
  }
}

/**
 * The `signal` of a lease. The AbortController is created on first read: most handlers never
 * ask, and admission runs on every request.
 */
export class LeaseAbort {
  private controller?: AbortController;
  private error?: LeaseLostError;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.error) this.controller.abort(this.error);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.error !== undefined;
  }

  abort(error: LeaseLostError): void {
    if (this.error) return;
    this.error = error;
    this.controller?.abort(error);
  }
}
