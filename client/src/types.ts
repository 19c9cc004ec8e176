/** `/balancer/stats` as served by the module (snake_case, as the seed's JSON). */
export interface ProbeInfo {
  state: string;
  error: string | null;
  measured_at: string | null;
  duration_ms: number | null;
  max_concurrency: number | null;
  report: unknown;
  /** While probing: the cap real requests are admitted at, and where it came from. */
  interim_capacity?: number | null;
  interim_from?: 'stored' | 'minimum' | null;
  /** While probing: the level being measured (probing worker only). */
  level?: number | null;
}

/** One tenant in a top list: `tenant` comes from a request header or function (untrusted). */
export interface TenantCount {
  tenant: string;
  count: number;
}

export interface EndpointStats {
  capacity: number | null;
  active_requests: number;
  available_slots: number;
  queued: number;
  healthy: boolean;
  capacity_source: string;
  utilization: number;
  admitted: number;
  rejected: number;
  timed_out: number;
  routes: string[];
  queue_timeout: number;
  max_queue: number;
  /** Bytes of read bodies waiting (this process); absent from stats of older versions. */
  queued_bytes?: number;
  /** The pool's maxQueueBytes (0: no budget); absent from stats of older versions. */
  max_queue_bytes?: number;
  /** Absent from stats served by versions before it was added. */
  workers?: number;
  /** Of `rejected`: shed (queueTargetMs) and tenant queue full; absent from older versions. */
  shed?: number;
  /** 504 `deadline` in the serving process; absent from older versions. */
  deadline_expired?: number;
  /** 503 `deadline_unreachable` in the serving process; absent from older versions. */
  deadline_unreachable?: number;
  /** Present once a request of the pool passed a queue target (`queueTargetMs`). */
  overload?: { shedding: boolean; drain_ms: number | null };
  /** Present once a request of the pool named a tenant. Tenant keys are untrusted request text. */
  tenants?: { queued: TenantCount[]; admitted: TenantCount[] };
  /** Costed pools (capacity in units): units in flight, waiting, admitted; `maxQueueCost`. */
  units?: { active: number; queued: number; admitted: number; max_queue_cost: number | null };
  probe: ProbeInfo;
}

export interface BalancerStats {
  endpoints: Record<string, EndpointStats>;
  healthy: boolean;
  shutting_down: boolean;
  store: { type: string; reachable: boolean };
  worker: { pid: number; hostname: string };
  generated_at: string;
}

/** `/balancer/history`: columns per pool, one sample a second. */
export interface PoolHistory {
  t: number[];
  active: number[];
  queued: number[];
  capacity: Array<number | null>;
}

export interface BalancerHistory {
  interval_s: number;
  seconds: number;
  pools: Record<string, PoolHistory>;
}

/** Injected by the server into index.html (`<script id="balancer-config">`). */
export interface ClientConfig {
  statsUrl: string;
  historyUrl: string;
  pollMs: number;
  historySeconds: number;
}
