import { Injectable } from '@nestjs/common';

export type AdmissionOutcome =
  | 'admitted'
  | 'queue_full'
  | 'tenant_queue_full'
  | 'queue_cost_full'
  | 'invalid_cost'
  | 'shed'
  | 'timeout'
  /** The request's deadline passed while it waited, or before it arrived (504 `deadline`). */
  | 'deadline'
  /** Its predicted wait already exceeded the time left before its deadline (503). */
  | 'deadline_unreachable'
  | 'aborted'
  | 'unhealthy'
  | 'shutting_down';

export interface AdmissionEvent {
  pool: string;
  outcome: AdmissionOutcome;
  /** Milliseconds spent waiting for a slot (0 when admitted at once or rejected before queueing). */
  waitedMs: number;
}

type Listener = (event: AdmissionEvent) => void;

/** Admission decisions, for metrics and history. Costs nothing while nobody listens. */
@Injectable()
export class AdmissionEvents {
  private listeners: Listener[] = [];

  subscribe(listener: Listener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(pool: string, outcome: AdmissionOutcome, waitedMs: number): void {
    const ls = this.listeners;
    if (ls.length === 0) return;
    const event = { pool, outcome, waitedMs };
    for (const l of ls) l(event);
  }
}
