import { Injectable } from '@nestjs/common';

export type GateClosedReason = 'unhealthy' | 'shutting_down';

type Listener = (open: boolean) => void;

/**
 * Whether watched routes admit requests in this process. The health gate closes it while
 * checks fail; shutdown closes it for good. Each worker has its own (no shared flag).
 */
@Injectable()
export class AdmissionGate {
  private healthy = true;
  private stopping = false;
  private readonly listeners = new Set<Listener>();
  /** Seconds clients are told to wait (`Retry-After`) while unhealthy. */
  unhealthyRetryAfter = 10;

  get isOpen(): boolean {
    return this.healthy && !this.stopping;
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  get isShuttingDown(): boolean {
    return this.stopping;
  }

  get closedReason(): GateClosedReason | null {
    if (this.stopping) return 'shutting_down';
    return this.healthy ? null : 'unhealthy';
  }

  setHealthy(healthy: boolean): void {
    if (this.healthy === healthy) return;
    const wasOpen = this.isOpen;
    this.healthy = healthy;
    this.emit(wasOpen);
  }

  /** Stop admitting for good (application shutdown). */
  shutdown(): void {
    if (this.stopping) return;
    const wasOpen = this.isOpen;
    this.stopping = true;
    this.emit(wasOpen);
  }

  /** Called with the new state whenever the gate opens or closes. Returns an unsubscribe. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(wasOpen: boolean): void {
    const open = this.isOpen;
    if (open === wasOpen) return;
    for (const l of this.listeners) l(open);
  }
}
